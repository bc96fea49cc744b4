"""The RTMP publish command flow, sans I/O: bytes in, events and bytes to send out.

After the handshake, the connection's bytes go to `RtmpProtocol.receive_data`; it parses chunks
(`ChunkParser`), answers commands (Adobe RTMP spec 1.0 §7.2: connect, releaseStream/FCPublish,
createStream, publish, FCUnpublish/deleteStream), turns media into access units (`flv.TagConverter`)
and metadata into hints, and queues:
- events, taken with `events_received()`: `PublishRequested`, `HintsReceived`, `MediaReceived`,
  `Unpublished`, `Closed`;
- bytes for the peer, taken with `data_to_send()`: replies, statuses, acknowledgements (§5.4.3).

A `PublishRequested` suspends parsing until the caller answers `accept_publish()` or `refuse_publish()`:
what the publisher sent right behind its publish (metadata, sequence headers) is then handled under
the answer, and media before a granted publish never becomes an event. After `Closed` the caller
sends what is queued and closes the connection gracefully; the protocol ignores further bytes.
The caller owns the socket, the timers and the decision on a key; this module owns no I/O.
"""

from __future__ import annotations

import enum
import logging
import struct
from dataclasses import dataclass
from typing import Any

from streamforge_media.ingest.rtmp import amf0, flv
from streamforge_media.ingest.rtmp.amf3 import Amf3Error
from streamforge_media.ingest.rtmp.chunk import (
    ACKNOWLEDGEMENT,
    AUDIO,
    COMMAND_AMF0,
    COMMAND_AMF3,
    DATA_AMF0,
    DATA_AMF3,
    SET_CHUNK_SIZE,
    SET_PEER_BANDWIDTH,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkParser,
    ChunkWriter,
    Message,
    ProtocolError,
    control_message,
    user_control,
)
from streamforge_media.media import AccessUnit, PublisherHints

log = logging.getLogger(__name__)

APP_NAME = "live"
OUT_CHUNK_SIZE = 4096
SERVER_WINDOW = 2_500_000
PUBLISH_STREAM_ID = 1
STREAM_BEGIN = 0
_AMF_ERRORS = (amf0.Amf0Error, Amf3Error)


@dataclass(frozen=True)
class PublishRequested:
    """The publisher asks to publish with `key` (query string stripped); answer accept or refuse."""

    key: str


@dataclass(frozen=True)
class HintsReceived:
    hints: PublisherHints


@dataclass(frozen=True)
class MediaReceived:
    unit: AccessUnit


@dataclass(frozen=True)
class Unpublished:
    """The publisher ended its publish (FCUnpublish, deleteStream, closeStream); the connection stays."""


@dataclass(frozen=True)
class Closed:
    """The protocol refused something and queued its status: send it, then close. `reason` is for logs."""

    reason: str


Event = PublishRequested | HintsReceived | MediaReceived | Unpublished | Closed


class _State(enum.Enum):
    CONNECTING = enum.auto()  # before a successful connect
    CONNECTED = enum.auto()
    AWAITING_DECISION = enum.auto()  # PublishRequested out, no answer yet
    PUBLISHING = enum.auto()
    CLOSED = enum.auto()


class RtmpProtocol:
    """One RTMP connection's state after the handshake. `max_message_size` is in bytes; `label` names
    the peer in log lines. `receive_data` raises `ProtocolError` when the peer breaks the protocol:
    the caller drops the connection without a reply."""

    def __init__(self, *, max_message_size: int, label: str = "") -> None:
        self.label = label
        self._parser = ChunkParser(max_message_size=max_message_size)
        self._writer = ChunkWriter()
        self._converter = flv.TagConverter()
        self._state = _State.CONNECTING
        self._app_key = ""
        self._stream_id = PUBLISH_STREAM_ID
        self._events: list[Event] = []
        self._out = bytearray()
        self._held = bytearray()  # bytes that arrived while a publish decision was pending
        self._received = self._acked = self._peer_window = 0

    @property
    def publishing(self) -> bool:
        return self._state is _State.PUBLISHING

    @property
    def ack_room(self) -> int | None:
        """Bytes the peer may still send before we owe it an acknowledgement; None before it set a window."""
        if not self._peer_window:
            return None
        return self._peer_window - (self._received - self._acked)

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the peer. Raises ProtocolError (a malformed chunk or command, a limit broken)."""
        if self._state is _State.CLOSED:
            return
        self._received += len(data)
        if self._peer_window and self._received - self._acked >= self._peer_window:
            self._acked = self._received
            self._send(control_message(ACKNOWLEDGEMENT, self._received & 0xFFFFFFFF))
        if self._state is _State.AWAITING_DECISION:
            self._held += data
            return
        self._process(data)

    def events_received(self) -> list[Event]:
        """The events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def accept_publish(self) -> None:
        """Grant the pending publish: NetStream.Publish.Start, then handle what followed the publish command."""
        self._expect_decision()
        self._state = _State.PUBLISHING
        self._send(user_control(STREAM_BEGIN, self._stream_id))
        self._status("status", "NetStream.Publish.Start", "Publishing.")
        held, self._held = bytes(self._held), bytearray()
        self._process(held)

    def refuse_publish(self) -> None:
        """Refuse the pending publish (bad key, stream busy): NetStream.Publish.BadName, then `Closed`."""
        self._expect_decision()
        self._refuse_publish()

    def _expect_decision(self) -> None:
        if self._state is not _State.AWAITING_DECISION:
            raise RuntimeError(f"no publish awaits a decision (state {self._state.name})")

    def _process(self, data: bytes) -> None:
        for message in self._parser.feed(data):
            self._handle(message)
            if self._state in (_State.AWAITING_DECISION, _State.CLOSED):
                return  # the rest stays in the parser, unparsed, until the answer

    def _handle(self, message: Message) -> None:
        kind = message.type_id
        if kind in (AUDIO, VIDEO):
            # Media before a granted publish is dropped: nothing unauthenticated goes downstream.
            if self._state is _State.PUBLISHING and message.stream_id == self._stream_id:
                self._on_media(message)
        elif kind in (COMMAND_AMF0, COMMAND_AMF3):
            # A type 17 payload starts with a format byte (0: AMF0 values, which may switch to AMF3).
            payload = message.payload[1:] if kind == COMMAND_AMF3 else message.payload
            try:
                values = amf0.decode(payload)
            except _AMF_ERRORS as exc:
                raise ProtocolError(f"undecodable command: {exc}") from exc
            self._on_command(message.stream_id, values)
        elif kind in (DATA_AMF0, DATA_AMF3):
            self._on_data(message.payload[1:] if kind == DATA_AMF3 else message.payload)
        elif kind == WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self._peer_window = struct.unpack(">I", message.payload[:4])[0]
        # Set Chunk Size and Abort are applied by the parser; acks, pings and bandwidth need no reply.

    def _on_media(self, message: Message) -> None:
        convert = self._converter.video if message.type_id == VIDEO else self._converter.audio
        try:
            unit = convert(message.timestamp, message.payload)
        except flv.UnsupportedMedia as exc:
            self._status("error", "NetStream.Publish.Rejected", str(exc))
            self._close(f"unsupported media: {exc}")
            return
        if unit is not None:
            self._events.append(MediaReceived(unit))

    def _on_data(self, payload: bytes) -> None:
        """onMetaData (FLV spec E.5, sent as @setDataFrame) → hints; anything undecodable is skipped."""
        if self._state is not _State.PUBLISHING:
            return
        try:
            values = amf0.decode(payload)
        except _AMF_ERRORS as exc:
            # One line, never the payload: it may hold anything the encoder chose to put there.
            log.info("skipping an undecodable data message from %s: %s", self.label, exc)
            return
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            self._events.append(HintsReceived(flv.hints_from_metadata(values[1])))

    def _on_command(self, stream_id: int, values: list[Any]) -> None:
        if len(values) < 2 or not isinstance(values[0], str):
            raise ProtocolError("malformed command")
        name, txid = values[0], values[1]
        if name == "connect":
            self._on_connect(txid, values[2] if len(values) > 2 else None)
        elif self._state is _State.CONNECTING:
            raise ProtocolError(f"{name} before connect")
        elif name in ("releaseStream", "FCPublish"):
            self._reply(txid, None)
        elif name == "createStream":
            self._reply(txid, None, float(PUBLISH_STREAM_ID))
        elif name == "publish":
            self._on_publish(stream_id or PUBLISH_STREAM_ID, values[3:])
        elif name in ("FCUnpublish", "deleteStream", "closeStream") and self._state is _State.PUBLISHING:
            self._state = _State.CONNECTED
            self._events.append(Unpublished())
        # Anything else (getStreamLength, _checkbw, ...) is harmless to ignore.

    def _on_connect(self, txid: Any, command: Any) -> None:
        command = command if isinstance(command, dict) else {}
        # OBS with the whole URL as "Server" and no stream key sends app "live/<key>" (and maybe "?...").
        app, _, key = str(command.get("app", "")).split("?", 1)[0].strip("/").partition("/")
        if app != APP_NAME:
            self._send_command("_error", txid, None, {
                "level": "error", "code": "NetConnection.Connect.Rejected",
                "description": f"unknown application; use /{APP_NAME}"})
            self._close("wrong app")
            return
        self._app_key = key
        self._state = _State.CONNECTED
        self._send(control_message(WINDOW_ACK_SIZE, SERVER_WINDOW))
        self._send(control_message(SET_PEER_BANDWIDTH, SERVER_WINDOW, b"\x02"))
        self._send(control_message(SET_CHUNK_SIZE, OUT_CHUNK_SIZE))
        self._writer.chunk_size = OUT_CHUNK_SIZE
        properties: dict[str, Any] = {"fmsVer": "FMS/3,5,7,7009", "capabilities": 31.0}
        offered = command.get("fourCcList")
        if isinstance(offered, list):
            # Enhanced RTMP negotiation: answer with the FourCCs we take among those offered ("*": any).
            properties["fourCcList"] = [f for f in flv.SUPPORTED_FOURCCS if "*" in offered or f in offered]
        self._send_command("_result", txid, properties, {
            "level": "status", "code": "NetConnection.Connect.Success",
            "description": "Connection succeeded.", "objectEncoding": 0.0})

    def _on_publish(self, stream_id: int, args: list[Any]) -> None:
        if self._state is _State.PUBLISHING:
            raise ProtocolError("publish while already publishing")
        self._stream_id = stream_id
        name = args[0] if args and isinstance(args[0], str) else ""
        key = name.split("?", 1)[0] or self._app_key
        if not key:
            self._refuse_publish()
            return
        self._state = _State.AWAITING_DECISION
        self._events.append(PublishRequested(key))

    def _refuse_publish(self) -> None:
        self._status("error", "NetStream.Publish.BadName", "Stream key rejected or stream busy.")
        self._close("publish refused")

    def _close(self, reason: str) -> None:
        self._state = _State.CLOSED
        self._events.append(Closed(reason))

    def _reply(self, txid: Any, *values: Any) -> None:
        if txid:  # transaction 0 means the client expects no answer
            self._send_command("_result", txid, *values)

    def _status(self, level: str, code: str, description: str) -> None:
        self._send(Message(COMMAND_AMF0, self._stream_id, 0, amf0.encode(
            "onStatus", 0.0, None, {"level": level, "code": code, "description": description}), csid=5))

    def _send_command(self, name: str, *values: Any) -> None:
        self._send(Message(COMMAND_AMF0, 0, 0, amf0.encode(name, *values), csid=3))

    def _send(self, message: Message) -> None:
        self._out += self._writer.encode(message)
