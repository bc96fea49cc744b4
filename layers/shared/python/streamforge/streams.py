"""Reading stream items, shared by every function that needs a stream (metadata, users, analytics).

Stream items are soft-deleted (`deleted_at`, see docs/contracts.md "Deletion"): readers here treat
them as absent.
"""

from __future__ import annotations

import time
from typing import Any

from streamforge.ddb import from_item

# A viewer is concurrent while heartbeats arrive at least every 60 s; a count older than that is stale.
VIEWER_COUNT_FRESH_S = 60
LIVE_STATUSES = ("live", "reconnecting")


def effective_viewer_count(stream: dict[str, Any], now: float | None = None) -> int:
    """The consumer refreshes `viewer_count` on every heartbeat batch; once none arrive, nobody is watching."""
    at = stream.get("viewer_count_at")
    if at is None:
        return 0
    now = time.time() if now is None else now
    return int(stream.get("viewer_count", 0)) if now - float(at) <= VIEWER_COUNT_FRESH_S else 0


class StreamsReader:
    def __init__(self, table: str, dynamodb: Any) -> None:
        self._table = table
        self._ddb = dynamodb

    def get(self, stream_id: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"stream_id": {"S": stream_id}}).get("Item")
        if not item or "deleted_at" in item:
            return None
        return from_item(item)

    def live_stream_of(self, owner_id: str) -> dict[str, Any] | None:
        """The owner's newest live (or reconnecting) stream, if any."""
        start: dict[str, Any] | None = None
        for _ in range(10):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "by_owner",
                "KeyConditionExpression": "owner_id = :o",
                "FilterExpression": "#s IN (:live, :rec) AND attribute_not_exists(deleted_at)",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":o": {"S": owner_id}, ":live": {"S": "live"}, ":rec": {"S": "reconnecting"},
                },
                "ScanIndexForward": False,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._ddb.query(**kwargs)
            if page.get("Items"):
                return from_item(page["Items"][0])
            start = page.get("LastEvaluatedKey")
            if not start:
                return None
        return None
