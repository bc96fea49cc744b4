"""Stream events on the EventBridge bus, each with a per-stream sequence number."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any, Protocol

from streamforge.aws import client

SOURCE_MEDIA = "streamforge.media"
SOURCE_API = "streamforge.api"

STREAM_LIVE = "Stream Live"
STREAM_OFFLINE = "Stream Offline"
STREAM_UPDATED = "Stream Updated"
SESSION_RECORDED = "Session Recorded"
INGEST_HEALTH = "Ingest Health"


class EventPublishError(RuntimeError):
    """EventBridge refused an entry."""


class EventPublisher(Protocol):
    def publish(self, detail_type: str, *, stream_id: str, session_id: str | None, **fields: Any) -> dict[str, Any]:
        ...


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class EventBridgePublisher:
    """Takes `seq` from the stream item's atomic counter, then puts the event on the bus."""

    def __init__(
        self,
        *,
        source: str,
        bus_name: str | None = None,
        streams_table: str | None = None,
        events_client: Any = None,
        dynamodb_client: Any = None,
    ) -> None:
        self._source = source
        self._bus_name = bus_name or os.environ["EVENT_BUS_NAME"]
        self._streams_table = streams_table or os.environ["STREAMS_TABLE"]
        self._events = events_client or client("events")
        self._dynamodb = dynamodb_client or client("dynamodb")

    def next_seq(self, stream_id: str) -> int:
        result = self._dynamodb.update_item(
            TableName=self._streams_table,
            Key={"stream_id": {"S": stream_id}},
            UpdateExpression="ADD event_seq :one",
            ConditionExpression="attribute_exists(stream_id)",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(result["Attributes"]["event_seq"]["N"])

    def publish(self, detail_type: str, *, stream_id: str, session_id: str | None, **fields: Any) -> dict[str, Any]:
        detail = {"stream_id": stream_id, "session_id": session_id, "seq": self.next_seq(stream_id),
                  "at": utc_now_iso(), **fields}
        response = self._events.put_events(Entries=[{
            "Source": self._source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=str),
            "EventBusName": self._bus_name,
        }])
        if response.get("FailedEntryCount"):
            raise EventPublishError(str(response["Entries"]))
        return detail
