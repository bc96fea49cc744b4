"""The stream item (StreamsTable) and the session item (SessionsTable): the one owner of their statuses, key,
shared attribute names and marshalling (docs/contracts.md "Items the media task and the API share").

Every context's repository goes through here: metadata (streams CRUD), analytics (the live viewer count), the
media task (status, session, lease), notifications and users (readers), and the event publisher (`event_seq`).
Plain Python, no pydantic, so the media task and the analytics consumer stay cheap to import.

Stream items are soft-deleted (`deleted_at`, see docs/contracts.md "Deletion"): readers here treat them as absent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from streamforge.ddb import from_item, to_attr


class StreamStatus(StrEnum):
    """A stream's status; `reconnecting`: its publisher dropped and the broadcast waits for it (reconnect grace)."""

    # Written by the media task only; the API reads it.

    OFFLINE = "offline"
    LIVE = "live"
    RECONNECTING = "reconnecting"  # the publisher dropped; the session waits for it within reconnect grace

    @property
    def on_air(self) -> bool:
        """Whether a session is current: live, or waiting for its publisher to come back."""
        return self is not StreamStatus.OFFLINE


class SessionStatus(StrEnum):
    """A session's `status`: the stream's while the session is current, then `ended`."""

    LIVE = StreamStatus.LIVE.value
    RECONNECTING = StreamStatus.RECONNECTING.value
    ENDED = "ended"


# Attribute names of the stream item that more than one context reads or writes.
STREAM_ID = "stream_id"
STATUS = "status"
DELETED_AT = "deleted_at"
EVENT_SEQ = "event_seq"  # the per-stream event counter (streamforge.events)
VIEWER_COUNT = "viewer_count"  # written by the analytics consumer, read by every API and socket reader
VIEWER_COUNT_AT = "viewer_count_at"  # epoch seconds of the batch that wrote the count

# A viewer is concurrent while heartbeats arrive at least every 60 s; a count older than that is stale.
VIEWER_COUNT_FRESH_S = 60


def stream_key(stream_id: str) -> dict[str, Any]:
    """The stream item's DynamoDB key, as the low-level client takes it."""
    return {STREAM_ID: {"S": stream_id}}


def attribute_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`{":name": value}` → ExpressionAttributeValues (`streamforge.ddb.to_attr`: numbers as N, None as NULL)."""
    return {name: to_attr(value) for name, value in values.items()}


def decode_stream(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored stream item as plain Python values (numbers as int or float); None when absent or deleted."""
    if not item or DELETED_AT in item:
        return None
    return from_item(dict(item))


def status_of(stream: Mapping[str, Any]) -> StreamStatus:
    """The stream's status; an item written before its first session has none and is offline."""
    return StreamStatus(stream.get(STATUS, StreamStatus.OFFLINE))


def effective_viewer_count(stream: Mapping[str, Any], now: float | None = None) -> int:
    """The consumer refreshes `viewer_count` on every heartbeat batch; once none arrive, nobody is watching."""
    at = stream.get(VIEWER_COUNT_AT)
    if at is None:
        return 0
    now = time.time() if now is None else now
    return int(stream.get(VIEWER_COUNT, 0)) if now - float(at) <= VIEWER_COUNT_FRESH_S else 0


class StreamsReader:
    """Reads stream items for the contexts that only read them (users, analytics, notifications) and metadata."""

    def __init__(self, table: str, dynamodb: Any) -> None:
        self._table = table
        self._ddb = dynamodb

    def get(self, stream_id: str) -> dict[str, Any] | None:
        return decode_stream(self._ddb.get_item(TableName=self._table, Key=stream_key(stream_id)).get("Item"))

    def live_stream_of(self, owner_id: str) -> dict[str, Any] | None:
        """The owner's newest on-air (live or reconnecting) stream, if any."""
        start: dict[str, Any] | None = None
        for _ in range(10):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "by_owner",
                "KeyConditionExpression": "owner_id = :o",
                "FilterExpression": f"#s IN (:live, :rec) AND attribute_not_exists({DELETED_AT})",
                "ExpressionAttributeNames": {"#s": STATUS},
                "ExpressionAttributeValues": attribute_values({
                    ":o": owner_id, ":live": StreamStatus.LIVE, ":rec": StreamStatus.RECONNECTING}),
                "ScanIndexForward": False,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._ddb.query(**kwargs)
            if page.get("Items"):
                return decode_stream(page["Items"][0])
            start = page.get("LastEvaluatedKey")
            if not start:
                return None
        return None
