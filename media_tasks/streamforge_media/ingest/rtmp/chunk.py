"""RTMP chunk stream (Adobe RTMP spec 1.0 §5.3): an incremental parser (bytes in, whole messages out) and a writer.

The parser only commits state after a complete chunk (header and payload piece) is buffered,
so it can be fed arbitrary splits of the byte stream, which is what makes it fuzzable.

Memory is bounded by the message size limit, not by the peer's chunk size (which may be anything in
1..2^31-1, §5.4.1): a chunk never carries more than the rest of its message, a message longer than
`max_message_size` is refused at its header, and half-assembled messages together may not exceed
twice that limit. So the parser holds at most about three messages' worth, plus what one `feed` adds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

DEFAULT_CHUNK_SIZE = 128
EXTENDED_TIMESTAMP = 0xFFFFFF
MAX_CHUNK_SIZE = 0x7FFFFFFF  # §5.4.1: the high bit must be zero

# Message type ids (RTMP spec §5.4 and §7.1).
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
COMMAND_AMF3 = 17
DATA_AMF0 = 18
COMMAND_AMF0 = 20


class ProtocolError(ValueError):
    """The peer broke the protocol or a configured limit; the connection must be closed."""


@dataclass(frozen=True)
class Message:
    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes
    csid: int = 3


@dataclass
class _ChunkStream:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    buffer: bytearray = field(default_factory=bytearray)


class ChunkParser:
    """Bytes in, `Message`s out; applies Set Chunk Size and Abort itself (they change how chunks are read).

    `max_message_size` is in bytes; `max_chunk_streams` caps the chunk stream ids a peer may open.
    """

    def __init__(self, *, max_message_size: int, max_chunk_streams: int = 64) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self._streams: dict[int, _ChunkStream] = {}
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Message]:
        """Buffer `data` and yield every message it completes. Raises ProtocolError.

        Each chunk is consumed before its message is yielded, so a caller may stop iterating after any
        message and resume later with `feed(b"")`: the rest stays buffered, unparsed.
        """
        self._buf += data
        while True:
            result = self._parse_chunk()
            if result is None:
                return
            consumed, message = result
            del self._buf[:consumed]
            if message is not None:
                if message.type_id == SET_CHUNK_SIZE:
                    self._apply_chunk_size(message.payload)
                elif message.type_id == ABORT and len(message.payload) >= 4:
                    aborted = self._streams.get(struct.unpack(">I", message.payload[:4])[0])
                    if aborted is not None:
                        aborted.buffer.clear()
                yield message

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _apply_chunk_size(self, payload: bytes) -> None:
        if len(payload) < 4:
            raise ProtocolError("short Set Chunk Size")
        size = struct.unpack(">I", payload[:4])[0] & MAX_CHUNK_SIZE
        if size < 1:
            raise ProtocolError("chunk size 0")
        self.chunk_size = size

    def _parse_chunk(self) -> tuple[int, Message | None] | None:
        buf = self._buf
        if not buf:
            return None
        fmt = buf[0] >> 6
        csid = buf[0] & 0x3F
        pos = 1
        if csid == 0:
            if len(buf) < 2:
                return None
            csid = 64 + buf[1]
            pos = 2
        elif csid == 1:
            if len(buf) < 3:
                return None
            csid = 64 + buf[1] + buf[2] * 256
            pos = 3
        header_len = (11, 7, 3, 0)[fmt]
        if len(buf) < pos + header_len:
            return None
        known = self._streams.get(csid)
        if known is None:
            if fmt != 0:
                raise ProtocolError(f"chunk stream {csid} starts with fmt {fmt}")
            if len(self._streams) >= self.max_chunk_streams:
                raise ProtocolError("too many chunk streams")
        state = known or _ChunkStream()
        # Work on copies so an incomplete chunk leaves the state untouched.
        timestamp, delta, length = state.timestamp, state.delta, state.length
        type_id, stream_id, extended = state.type_id, state.stream_id, state.extended
        ts_field = ext_value = 0
        if fmt <= 2:
            ts_field = int.from_bytes(buf[pos:pos + 3], "big")
            extended = ts_field == EXTENDED_TIMESTAMP
        if fmt <= 1:
            length = int.from_bytes(buf[pos + 3:pos + 6], "big")
            type_id = buf[pos + 6]
            if length > self.max_message_size:
                raise ProtocolError(f"message length {length} over limit {self.max_message_size}")
        if fmt == 0:
            stream_id = struct.unpack("<I", buf[pos + 7:pos + 11])[0]
        pos += header_len
        if extended:
            if len(buf) < pos + 4:
                return None
            ext_value = struct.unpack(">I", buf[pos:pos + 4])[0]
            pos += 4
        starting = not state.buffer
        if fmt <= 2:
            raw = ext_value if extended else ts_field
            if fmt == 0:
                timestamp, delta = raw, raw
            else:
                delta = raw
                timestamp = (timestamp + delta) & 0xFFFFFFFF
        elif starting and known is not None:
            # fmt 3 opening a new message repeats the previous delta.
            timestamp = (timestamp + delta) & 0xFFFFFFFF
        if not starting and fmt != 3:
            raise ProtocolError(f"new header on chunk stream {csid} mid-message")
        piece = min(self.chunk_size, length - len(state.buffer))
        # Interleaved half-built messages must not add up to more than a couple of big ones; checked
        # before waiting for the piece, so a peer cannot make us buffer it first.
        if sum(len(s.buffer) for s in self._streams.values()) + piece > 2 * self.max_message_size:
            raise ProtocolError("too much partially assembled data")
        if len(buf) < pos + piece:
            return None
        state.timestamp, state.delta, state.length = timestamp, delta, length
        state.type_id, state.stream_id, state.extended = type_id, stream_id, extended
        self._streams[csid] = state
        # Copy out of the receive buffer once, through a view released before the buffer is trimmed.
        with memoryview(buf) as view:
            if starting and piece == length:  # a whole message in one chunk (most audio): no assembly
                return pos + piece, Message(type_id, stream_id, timestamp, bytes(view[pos:pos + piece]), csid)
            state.buffer += view[pos:pos + piece]
        if len(state.buffer) < length:
            return pos + piece, None
        payload = bytes(state.buffer)
        state.buffer.clear()
        return pos + piece, Message(type_id, stream_id, timestamp, payload, csid)


class ChunkWriter:
    """Serialises messages as one fmt 0 chunk followed by fmt 3 continuations."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size

    def encode(self, message: Message) -> bytes:
        out = bytearray()
        ts = message.timestamp & 0xFFFFFFFF
        extended = ts >= EXTENDED_TIMESTAMP
        out += _basic_header(0, message.csid)
        out += (EXTENDED_TIMESTAMP if extended else ts).to_bytes(3, "big")
        out += len(message.payload).to_bytes(3, "big")
        out.append(message.type_id)
        out += struct.pack("<I", message.stream_id)
        if extended:
            out += struct.pack(">I", ts)
        payload = message.payload
        for offset in range(0, max(len(payload), 1), self.chunk_size):
            if offset:
                out += _basic_header(3, message.csid)
                if extended:
                    out += struct.pack(">I", ts)
            out += payload[offset:offset + self.chunk_size]
        return bytes(out)


def _basic_header(fmt: int, csid: int) -> bytes:
    if 2 <= csid <= 63:
        return bytes([(fmt << 6) | csid])
    if 64 <= csid <= 319:
        return bytes([fmt << 6, csid - 64])
    if 320 <= csid <= 65599:
        rest = csid - 64
        return bytes([(fmt << 6) | 1, rest & 0xFF, rest >> 8])
    raise ValueError(f"invalid chunk stream id {csid}")


def control_message(type_id: int, value: int, extra: bytes = b"") -> Message:
    """A protocol control message (chunk stream 2, message stream 0)."""
    return Message(type_id, 0, 0, struct.pack(">I", value) + extra, csid=2)


def user_control(event: int, stream_id: int) -> Message:
    return Message(USER_CONTROL, 0, 0, struct.pack(">HI", event, stream_id), csid=2)
