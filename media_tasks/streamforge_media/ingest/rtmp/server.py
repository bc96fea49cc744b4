"""Asyncio RTMP server: sockets, limits and the handshake around the sans-I/O `RtmpProtocol`.

The server knows nothing about DynamoDB or ffmpeg, nor about FLV: the protocol turns bytes into events,
and the server asks the session layer's `PublishHandler` whether a key may publish, then hands the
publisher's hints and access units to the `MediaSink` it got back (streamforge_media.ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass

from streamforge.keys import redact

from streamforge_media.ingest.rtmp.chunk import ProtocolError
from streamforge_media.ingest.rtmp.handshake import HandshakeError, server_handshake
from streamforge_media.ingest.rtmp.protocol import (
    Closed,
    Event,
    HintsReceived,
    MediaReceived,
    PublishRequested,
    RtmpProtocol,
    Unpublished,
)
from streamforge_media.ports import MediaSink, PublishHandler

log = logging.getLogger(__name__)

READ_SIZE = 65536
MAX_LOW_WATER = 65536
LOW_WATER_BATCH_S = 0.025
LOW_WATER_MIN_RATE = 32_000  # bytes/s: 256 kb/s
LOW_WATER_GUARD_S = 0.1


@dataclass(frozen=True)
class RtmpLimits:
    """Per-connection limits: sizes in bytes, times in seconds.

    `idle_timeout_s` counts from the last bytes received, whatever they carry (whether media keeps
    coming is the session layer's rule); `refuse_close_s` bounds each step of a graceful close after a
    refusal (flushing the status, then the FIN).
    """

    max_message_size: int = 16 * 1024 * 1024
    handshake_timeout_s: float = 5.0
    idle_timeout_s: float = 30.0
    max_connections_per_ip: int = 16
    refuse_close_s: float = 0.5


class RtmpServer:
    """Listens for publishers; `start` binds, `close` disconnects every publisher and stops listening."""

    def __init__(self, handler: PublishHandler, limits: RtmpLimits | None = None) -> None:
        self.handler = handler
        self.limits = limits or RtmpLimits()
        self._server: asyncio.Server | None = None
        self._per_ip: Counter[str] = Counter()
        self._connections: set[RtmpConnection] = set()

    async def start(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> None:
        """Listen on `host:port`; with `tls`, every connection is TLS first (RTMPS)."""
        timeout = self.limits.handshake_timeout_s if tls else None
        self._server = await asyncio.start_server(self._accept, host, port, limit=READ_SIZE, ssl=tls,
                                                  ssl_handshake_timeout=timeout)

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
    """One publisher's socket: reads into the protocol, acts on its events, writes what it queues.

    The sink's `on_hints` and `on_unit` are awaited in arrival order while publishing, and `on_unpublish`
    exactly once after a granted publish ends: on FCUnpublish/deleteStream, a refusal, a protocol error,
    a timeout, the peer going away or `disconnect`.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: PublishHandler,
                 limits: RtmpLimits, label: str) -> None:
        self.reader = reader
        self.writer = writer
        self.handler = handler
        self.limits = limits
        self.label = label
        self.protocol = RtmpProtocol(max_message_size=limits.max_message_size, label=label)
        self.sink: MediaSink | None = None
        self._closing = False
        self._socket = writer.get_extra_info("socket")
        self._low_water = 1
        self._reads = self._reads_at_guard = 0
        self._rate_bytes, self._rate_since, self._rate = 0, time.monotonic(), 0.0
        self._guard: asyncio.TimerHandle | None = None

    def disconnect(self, reason: str) -> None:
        """`Disconnector`: abort the connection now; the sink's `on_unpublish` follows from `run`."""
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
                    self.protocol.receive_data(data)
                    await self._handle_events()
                    self._batch_reads(len(data))
                    now = loop.time()
                    if (deadline.when() or 0.0) - now < idle:
                        deadline.reschedule(now + idle + slack)
        except (ProtocolError, HandshakeError) as exc:
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

    async def _handle_events(self) -> None:
        # An answer to a publish request may release more events (what followed the publish command).
        wrote = False
        while True:
            wrote = self._write(self.protocol.data_to_send()) or wrote
            events = self.protocol.events_received()
            if not events:
                break
            for event in events:
                if self._closing:
                    return
                await self._on_event(event)
        if wrote and not self._closing:
            await self.writer.drain()

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, MediaReceived):
            if self.sink is not None:
                await self.sink.on_unit(event.unit)
        elif isinstance(event, HintsReceived):
            if self.sink is not None:
                await self.sink.on_hints(event.hints)
        elif isinstance(event, PublishRequested):
            await self._on_publish(event.key)
        elif isinstance(event, Unpublished):
            await self._end_publish()
        elif isinstance(event, Closed):
            await self._flush_and_close(event.reason)

    async def _on_publish(self, key: str) -> None:
        sink = await self.handler.start_publish(key, self)
        if self._closing:  # disconnected while the handler decided
            if sink is not None:
                await sink.on_unpublish()
            return
        if sink is None:
            log.info("refused publish from %s with key %s", self.label, redact(key))
            self.protocol.refuse_publish()
            return
        self.sink = sink
        self.protocol.accept_publish()

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
            if (room := self.protocol.ack_room) is not None:
                wanted = min(wanted, room)
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

    def _write(self, data: bytes) -> bool:
        if not data or self.writer.is_closing():
            return False
        self.writer.write(data)
        return True
