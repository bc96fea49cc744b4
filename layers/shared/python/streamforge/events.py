"""The stream event catalog: one frozen type per event on the EventBridge bus `streamforge`, and its publisher.

Each event type declares, once:
- `DETAIL_TYPE`: its EventBridge detail-type;
- `MESSAGE_TYPE`: the WebSocket message type the notifications fan-out pushes it as, or None (not pushed);
- its fields: the dataclass fields after the envelope's `stream_id` and `session_id`.

A detail on the bus is the envelope `{stream_id, session_id, seq, at}` (ARCHITECTURE §5; the publisher adds
`seq` and `at`) plus the event's declared fields, every one of them present (None as null). A WebSocket
message is `{type, stream_id, session_id, seq, at}` plus the same declared fields, nothing else.

The CDK rules (infra/events.py) and the notifications fan-out's mapping are derived from `CATALOG`,
so an event pushed to clients is added here, in its emitter and in the web client. Frozen, keyword-only dataclass
types (`_Frozen`), not pydantic: the media task, the analytics consumer and the CDK app import this module, and none
of them should pay for pydantic, or for code generated per class, on a cold start.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self, dataclass_transform

from streamforge.aws import client
from streamforge.streams import EVENT_SEQ, stream_key

SOURCE_MEDIA = "streamforge.media"
SOURCE_API = "streamforge.api"
SOURCES = (SOURCE_MEDIA, SOURCE_API)

# The envelope every detail carries; `seq` rises by one per event of a stream, `at` is ISO 8601 UTC (ms).
ENVELOPE = ("stream_id", "session_id", "seq", "at")


class EventPublishError(RuntimeError):
    """EventBridge refused an entry."""


class MalformedEvent(ValueError):
    """A detail that lacks an envelope or declared field, or whose envelope has the wrong type."""


@dataclass_transform(frozen_default=True, kw_only_default=True)
class _Frozen:
    """What `@dataclass(frozen=True, kw_only=True)` gives, without generating code per class.

    The dataclass decorator compiles five methods for each frozen class (`exec`), which made this module the costliest
    import of the shared layer: about 5 ms of every cold start that publishes or reads events. Here the methods are
    written once; type checkers see each subclass as a frozen, keyword-only dataclass (PEP 681).
    """

    _field_names: ClassVar[tuple[str, ...]] = ()
    _required: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Annotations are strings here (postponed evaluation); a class constant is annotated ClassVar[...].
        own = [name for name, hint in vars(cls).get("__annotations__", {}).items()
               if not str(hint).startswith("ClassVar")]
        cls._field_names = (*cls._field_names, *own)
        cls._required = cls._required | {name for name in own if name not in vars(cls)}

    def __init__(self, **values: Any) -> None:
        unknown = values.keys() - set(self._field_names)
        missing = self._required - values.keys()
        if unknown or missing:
            raise TypeError(f"{type(self).__name__}: unknown {sorted(unknown)}, missing {sorted(missing)}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._field_names)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, _Frozen) and other._values() == self._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._field_names)})"

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied, as `dataclasses.replace` makes one."""
        return type(self)(**{**{name: getattr(self, name) for name in self._field_names}, **changes})


class StreamEvent(_Frozen):
    """The envelope's own fields; subclasses add their declared fields and set the two class constants."""

    DETAIL_TYPE: ClassVar[str]
    MESSAGE_TYPE: ClassVar[str | None] = None

    stream_id: str
    session_id: str | None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The declared fields, without the envelope."""
        return tuple(name for name in cls._field_names if name not in ENVELOPE)

    def fields(self) -> dict[str, Any]:
        """The declared fields and their values (JSON-ready: str, numbers, bool, None, lists and dicts of them)."""
        return {name: getattr(self, name) for name in self.field_names()}

    def message(self, *, seq: int, at: str) -> dict[str, Any]:
        """The WebSocket message clients get: `type`, the envelope and the declared fields only."""
        if self.MESSAGE_TYPE is None:
            raise TypeError(f"{self.DETAIL_TYPE} is not pushed to WebSocket clients")
        return {**self.fields(), "type": self.MESSAGE_TYPE, "stream_id": self.stream_id,
                "session_id": self.session_id, "seq": seq, "at": at}


class StreamLive(StreamEvent):
    """The stream's first manifests are stored and it is `live` (media task)."""

    DETAIL_TYPE = "Stream Live"
    MESSAGE_TYPE = "stream.live"

    started_at: str
    playback_url: str
    thumbnail_url: str
    dash_url: str | None = None  # None when the segment format has no DASH manifest (MPEG-TS)


class StreamOffline(StreamEvent):
    """A session that went live has ended, after grace or explicitly (media task)."""

    DETAIL_TYPE = "Stream Offline"
    MESSAGE_TYPE = "stream.offline"

    ended_at: str
    reason: str


class StreamUpdated(StreamEvent):
    """The owner changed public fields of the stream (`{field: new value}`), or deleted it (`{"deleted": true}`)."""

    DETAIL_TYPE = "Stream Updated"
    MESSAGE_TYPE = "stream.updated"

    changes: dict[str, Any]


class ViewerCountChanged(StreamEvent):
    """A heartbeat batch changed the stream's live viewer count (analytics consumer)."""

    DETAIL_TYPE = "Viewer Count Changed"
    MESSAGE_TYPE = "viewers"

    viewer_count: int


class SessionRecorded(StreamEvent):
    """A session ended and its VOD, if recorded, is written (media task); durations in seconds."""

    DETAIL_TYPE = "Session Recorded"

    started_at: str
    ended_at: str
    duration_s: float
    vod_url: str | None
    vod_dash_url: str | None = None


class IngestHealth(StreamEvent):
    """The publisher's figures over the last health interval (media task, every 10 s; analytics stores them).

    Sizes in pixels, keyframe interval in seconds; loss and round trip only from transports that measure them
    (SRT, WebRTC); codecs as ffmpeg names them (`h264`, `aac`).
    """

    DETAIL_TYPE = "Ingest Health"

    bitrate_kbps: float
    fps: float
    width: int
    height: int
    keyframe_interval_s: float
    video_codec: str | None = None
    audio_codec: str | None = None
    packet_loss_pct: float | None = None
    rtt_ms: float | None = None


CATALOG: tuple[type[StreamEvent], ...] = (
    StreamLive, StreamOffline, StreamUpdated, ViewerCountChanged, SessionRecorded, IngestHealth)
BY_DETAIL_TYPE: dict[str, type[StreamEvent]] = {event.DETAIL_TYPE: event for event in CATALOG}


def pushed_detail_types() -> list[str]:
    """The detail-types of the events WebSocket clients are sent, in catalog order."""
    return [event.DETAIL_TYPE for event in CATALOG if event.MESSAGE_TYPE is not None]


class Received(_Frozen):
    """An event as read back from the bus: the typed event and the envelope the publisher added."""

    event: StreamEvent
    seq: int
    at: str


def read(detail_type: str, detail: Mapping[str, Any]) -> Received | None:
    """The catalog event of `detail`; None for a detail-type the catalog does not know.

    Undeclared fields are dropped. Raises MalformedEvent when the envelope or a declared field without a
    default is missing, or the envelope has the wrong type.
    """
    kind = BY_DETAIL_TYPE.get(detail_type)
    if kind is None:
        return None
    stream_id, session_id, seq, at = (detail.get(name) for name in ENVELOPE)
    if not isinstance(stream_id, str) or not isinstance(at, str) or isinstance(seq, bool) \
            or not isinstance(seq, int) or not (session_id is None or isinstance(session_id, str)):
        raise MalformedEvent(f"{detail_type}: bad or missing envelope")
    try:
        event = kind(stream_id=stream_id, session_id=session_id,
                     **{name: detail[name] for name in kind.field_names() if name in detail})
    except TypeError as exc:  # a declared field without a default is missing
        raise MalformedEvent(f"{detail_type}: {exc}") from exc
    return Received(event=event, seq=seq, at=at)


class EventPublisher(Protocol):
    def publish(self, event: StreamEvent) -> dict[str, Any]:
        """Puts the event on the bus; returns the detail as sent. Raises EventPublishError when refused."""
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
        """The stream item's next event number (1, 2, ...); the item must exist (a deleted one's tombstone does)."""
        result = self._dynamodb.update_item(
            TableName=self._streams_table,
            Key=stream_key(stream_id),
            UpdateExpression=f"ADD {EVENT_SEQ} :one",
            ConditionExpression="attribute_exists(stream_id)",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(result["Attributes"][EVENT_SEQ]["N"])

    def publish(self, event: StreamEvent) -> dict[str, Any]:
        detail = {**event.fields(), "stream_id": event.stream_id, "session_id": event.session_id,
                  "seq": self.next_seq(event.stream_id), "at": utc_now_iso()}
        response = self._events.put_events(Entries=[{
            "Source": self._source,
            "DetailType": event.DETAIL_TYPE,
            "Detail": json.dumps(detail, default=str),
            "EventBusName": self._bus_name,
        }])
        if response.get("FailedEntryCount"):
            raise EventPublishError(str(response["Entries"]))
        return detail
