"""Asyncio RTMP server: accepts publishers, checks their key through a PublishHandler, forwards media.

The server knows nothing about DynamoDB or ffmpeg: it talks to the session layer through
`PublishHandler` (may this key publish?) and `MediaSink` (where the publisher's tags go).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from streamforge.keys import redact

from streamforge_media.rtmp import amf0
from streamforge_media.rtmp.chunk import (
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
from streamforge_media.rtmp.handshake import HandshakeError, server_handshake

log = logging.getLogger(__name__)

APP_NAME = "live"
OUT_CHUNK_SIZE = 4096
SERVER_WINDOW = 2_500_000
PUBLISH_STREAM_ID = 1
STREAM_BEGIN = 0
READ_SIZE = 65536
MAX_LOW_WATER = 65536
LOW_WATER_BATCH_S = 0.025
LOW_WATER_MIN_RATE = 32_000  # bytes/s: 256 kb/s
LOW_WATER_GUARD_S = 0.1


@dataclass(frozen=True)
class RtmpLimits:
    max_chunk_size: int = 65536
    max_message_size: int = 16 * 1024 * 1024
    handshake_timeout_s: float = 5.0
    idle_timeout_s: float = 30.0
    max_connections_per_ip: int = 16
    refuse_close_s: float = 0.5


class MediaSink(Protocol):
    """Receives one publisher's stream; `on_unpublish` is called exactly once at the end."""

    async def on_metadata(self, metadata: dict[str, Any]) -> None: ...

    async def on_media(self, type_id: int, timestamp: int, payload: bytes) -> None: ...

    async def on_unpublish(self) -> None: ...


class Disconnector(Protocol):
    def disconnect(self, reason: str) -> None: ...


class PublishHandler(Protocol):
    async def start_publish(self, stream_key: str, control: Disconnector) -> MediaSink | None:
        """Return a sink to accept the publisher, or None to refuse it (bad key, already live)."""
        ...


class RtmpServer:
    def __init__(self, handler: PublishHandler, limits: RtmpLimits | None = None) -> None:
        self.handler = handler
        self.limits = limits or RtmpLimits()
        self._server: asyncio.Server | None = None
        self._per_ip: Counter[str] = Counter()
        self._connections: set[RtmpConnection] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port, limit=READ_SIZE)

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.disconnect("server shutting down")
        while self._connections:
            await asyncio.sleep(0.01)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if peer else "?"
        if self._per_ip[ip] >= self.limits.max_connections_per_ip:
            log.warning("refusing connection from %s: per-IP limit %d", ip, self.limits.max_connections_per_ip)
            writer.transport.abort()
            return
        self._per_ip[ip] += 1
        conn = RtmpConnection(reader, writer, self.handler, self.limits, f"{ip}:{peer[1] if peer else 0}")
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)
            self._per_ip[ip] -= 1
            if self._per_ip[ip] <= 0:
                del self._per_ip[ip]


class RtmpConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: PublishHandler,
                 limits: RtmpLimits, label: str) -> None:
        self.reader = reader
        self.writer = writer
        self.handler = handler
        self.limits = limits
        self.label = label
        self.parser = ChunkParser(max_message_size=limits.max_message_size, max_chunk_size=limits.max_chunk_size)
        self.chunks = ChunkWriter()
        self.sink: MediaSink | None = None
        self._closing = False
        self._connected = False
        self._received = 0
        self._acked = 0
        self._peer_window = 0
        self._last_activity = time.monotonic()
        self._socket = writer.get_extra_info("socket")
        self._low_water = 1
        self._reads = self._reads_at_guard = 0
        self._rate_bytes, self._rate_since, self._rate = 0, time.monotonic(), 0.0
        self._guard: asyncio.TimerHandle | None = None

    def disconnect(self, reason: str) -> None:
        if not self._closing:
            log.info("closing %s: %s", self.label, reason)
        self._closing = True
        self.writer.transport.abort()

    async def run(self) -> None:
        try:
            await asyncio.wait_for(server_handshake(self.reader, self.writer), self.limits.handshake_timeout_s)
            # One idle deadline for the connection, pushed back at most every `slack` seconds rather than a
            # timer per read (a publisher sends ~100 reads a second): a silent peer is dropped between
            # idle_timeout_s and idle_timeout_s + slack after its last bytes were handled.
            idle = self.limits.idle_timeout_s
            slack = min(1.0, idle / 4)
            loop = asyncio.get_running_loop()
            async with asyncio.timeout_at(loop.time() + idle + slack) as deadline:
                while not self._closing:
                    data = await self.reader.read(READ_SIZE)
                    if not data:
                        break
                    await self._on_bytes(data)
                    self._batch_reads(len(data))
                    now = loop.time()
                    if (deadline.when() or 0.0) - now < idle:
                        deadline.reschedule(now + idle + slack)
                    if time.monotonic() - self._last_activity > idle:
                        raise ProtocolError(f"no media for {idle:g} s")
        except (ProtocolError, HandshakeError, amf0.Amf0Error) as exc:
            log.info("dropping %s: %s", self.label, exc)
        except TimeoutError:
            log.info("dropping %s: timed out", self.label)
        except (asyncio.IncompleteReadError, ConnectionError):
            log.debug("%s went away", self.label)
        finally:
            self._closing = True
            if self._guard is not None:
                self._guard.cancel()
            await self._end_publish()
            self.writer.transport.abort()

    def _batch_reads(self, size: int) -> None:
        """Let a publisher's media arrive in ~25 ms batches (SO_RCVLOWAT) instead of one wake-up per message.

        Only while publishing faster than LOW_WATER_MIN_RATE, never past an acknowledgement we owe, and a
        guard timer drops back to byte-by-byte wake-ups when nothing was read for LOW_WATER_GUARD_S, so a
        trailing small message (deleteStream, say) waits at most that long.
        """
        self._reads += 1
        now = time.monotonic()
        self._rate_bytes += size
        if now - self._rate_since >= 1.0:
            self._rate = self._rate_bytes / (now - self._rate_since)
            self._rate_bytes, self._rate_since = 0, now
        wanted = 1
        if self.sink is not None and self._rate >= LOW_WATER_MIN_RATE:
            wanted = int(self._rate * LOW_WATER_BATCH_S)
            if self._peer_window:
                wanted = min(wanted, self._peer_window - (self._received - self._acked))
            wanted = max(1, min(wanted, MAX_LOW_WATER))
        self._set_low_water(wanted)

    def _set_low_water(self, wanted: int) -> None:
        if wanted == self._low_water or self._socket is None or self._closing:
            return
        with contextlib.suppress(OSError):
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, wanted)
            self._low_water = wanted
        if self._low_water > 1 and self._guard is None:
            self._reads_at_guard = self._reads
            self._guard = asyncio.get_running_loop().call_later(LOW_WATER_GUARD_S, self._guard_stall)

    def _guard_stall(self) -> None:
        self._guard = None
        if self._reads == self._reads_at_guard:
            self._set_low_water(1)  # nothing handled for a guard period: take whatever is there
        elif self._low_water > 1 and not self._closing:  # still flowing: keep batching, watch again
            self._reads_at_guard = self._reads
            self._guard = asyncio.get_running_loop().call_later(LOW_WATER_GUARD_S, self._guard_stall)

    async def _on_bytes(self, data: bytes) -> None:
        self._received += len(data)
        if self._peer_window and self._received - self._acked >= self._peer_window:
            self._acked = self._received
            self._send(control_message(ACKNOWLEDGEMENT, self._received & 0xFFFFFFFF))
        for message in self.parser.feed(data):
            if self._closing:
                return
            await self._dispatch(message)

    async def _dispatch(self, message: Message) -> None:
        kind = message.type_id
        if kind in (AUDIO, VIDEO):
            if self.sink is not None and message.stream_id == PUBLISH_STREAM_ID:
                self._last_activity = time.monotonic()
                await self.sink.on_media(kind, message.timestamp, message.payload)
            # Media before a granted publish is dropped: nothing unauthenticated goes downstream.
        elif kind in (COMMAND_AMF0, COMMAND_AMF3):
            payload = message.payload[1:] if kind == COMMAND_AMF3 else message.payload
            await self._on_command(message.stream_id, amf0.decode(payload))
        elif kind in (DATA_AMF0, DATA_AMF3):
            payload = message.payload[1:] if kind == DATA_AMF3 else message.payload
            await self._on_data(amf0.decode(payload))
        elif kind == WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self._peer_window = struct.unpack(">I", message.payload[:4])[0]
        # Set Chunk Size and Abort are applied by the parser; acks, pings and bandwidth need no reply.

    async def _on_data(self, values: list[Any]) -> None:
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict) and self.sink:
            await self.sink.on_metadata(dict(values[1]))

    async def _on_command(self, stream_id: int, values: list[Any]) -> None:
        if len(values) < 2 or not isinstance(values[0], str):
            raise ProtocolError("malformed command")
        name, txid = values[0], values[1]
        args = values[3:]
        if name == "connect":
            await self._on_connect(txid, values[2] if len(values) > 2 else None)
        elif not self._connected:
            raise ProtocolError(f"{name} before connect")
        elif name in ("releaseStream", "FCPublish"):
            self._reply(txid, None)
        elif name == "createStream":
            self._reply(txid, None, float(PUBLISH_STREAM_ID))
        elif name == "publish":
            await self._on_publish(stream_id or PUBLISH_STREAM_ID, args)
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            await self._end_publish()
        # Anything else (getStreamLength, _checkbw, ...) is harmless to ignore.
        if not self._closing:
            await self.writer.drain()

    async def _on_connect(self, txid: Any, command: Any) -> None:
        app = str(command.get("app", "")) if isinstance(command, dict) else ""
        if app.split("?", 1)[0].strip("/") != APP_NAME:
            self._send_command("_error", txid, None, {
                "level": "error", "code": "NetConnection.Connect.Rejected",
                "description": f"unknown application; use /{APP_NAME}"})
            await self._flush_and_close("wrong app")
            return
        self._connected = True
        self._send(control_message(WINDOW_ACK_SIZE, SERVER_WINDOW))
        self._send(control_message(SET_PEER_BANDWIDTH, SERVER_WINDOW, b"\x02"))
        self._send(control_message(SET_CHUNK_SIZE, OUT_CHUNK_SIZE))
        self.chunks.chunk_size = OUT_CHUNK_SIZE
        self._send_command("_result", txid, {"fmsVer": "FMS/3,5,7,7009", "capabilities": 31.0}, {
            "level": "status", "code": "NetConnection.Connect.Success",
            "description": "Connection succeeded.", "objectEncoding": 0.0})

    async def _on_publish(self, stream_id: int, args: list[Any]) -> None:
        if self.sink is not None:
            raise ProtocolError("publish while already publishing")
        key = args[0] if args and isinstance(args[0], str) else ""
        key = key.split("?", 1)[0]
        sink = await self.handler.start_publish(key, self) if key else None
        if self._closing:
            if sink is not None:
                await sink.on_unpublish()
            return
        if sink is None:
            log.info("refused publish from %s with key %s", self.label, redact(key))
            self._status(stream_id, "error", "NetStream.Publish.BadName", "Stream key rejected or stream busy.")
            await self._flush_and_close("publish refused")
            return
        self.sink = sink
        self._last_activity = time.monotonic()
        self._send(user_control(STREAM_BEGIN, stream_id))
        self._status(stream_id, "status", "NetStream.Publish.Start", "Publishing.")

    async def _end_publish(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            await sink.on_unpublish()

    async def _flush_and_close(self, reason: str) -> None:
        # A graceful close, so the error status reaches the client before the FIN.
        log.info("closing %s: %s", self.label, reason)
        self._closing = True
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self.writer.drain(), self.limits.refuse_close_s)
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), self.limits.refuse_close_s)

    def _reply(self, txid: Any, *values: Any) -> None:
        if txid:  # transaction 0 means the client expects no answer
            self._send_command("_result", txid, *values)

    def _status(self, stream_id: int, level: str, code: str, description: str) -> None:
        self._send(Message(COMMAND_AMF0, stream_id, 0, amf0.encode(
            "onStatus", 0.0, None, {"level": level, "code": code, "description": description}), csid=5))

    def _send_command(self, name: str, *values: Any) -> None:
        self._send(Message(COMMAND_AMF0, 0, 0, amf0.encode(name, *values), csid=3))

    def _send(self, message: Message) -> None:
        if not self.writer.is_closing():
            self.writer.write(self.chunks.encode(message))
