"""SRT listener (UDP, default 9000): callers publish MPEG-TS with the stream key in their stream id.

In the handshake (libsrt's listen callback, on libsrt's thread), before any media flows:
- the stream id is parsed (`streamid`): malformed → reject 1400, not `m=publish` → 1405;
- the key is looked up (`AdmissionHandler.check_key`, two reads, nothing written): unknown, revoked or
  deleted → 1401; the stream already has a live publisher here → 1409;
- the stream's passphrase, if it has one, is set on the new socket: a caller without it (or with
  another) fails the handshake's key exchange (SRT's own rejection, "bad secret").
Once the handshake completes (`srt_accept`), the session layer's `admit` takes the lease and starts the
session as for RTMP; a refusal there (another task holds the lease, a race) closes the connection at
once. A reader thread per caller receives the TS, demuxes it into access units (`demux`) and hands them
to the session's `MediaSink` in order. A caller gone silent is dropped by libsrt after
`peer_idle_ms`, or by the session's no-media rule; either way `on_unpublish` follows, and grace applies.

libsrt is only ever called from its own threads, the accept thread, the reader threads and worker
threads, never from the asyncio loop: its callback waits on the loop, so a libsrt lock held by the
loop's thread could deadlock it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from streamforge_media.ingest.srt import libsrt
from streamforge_media.ingest.srt.demux import demux
from streamforge_media.ingest.srt.streamid import StreamIdError, parse_stream_id
from streamforge_media.media import AccessUnit
from streamforge_media.ports import AdmissionHandler, MediaSink, Refusal, TransportStats

log = logging.getLogger(__name__)

_LIVE_MESSAGE = 1500  # > SRT live mode's 1316-byte payload
_STATS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class SrtSettings:
    """`latency_ms`: the receiver's TSBPD latency (SRT's default 120 ms); `peer_idle_ms`: a silent caller is
    dropped after this; `check_timeout_s`: the longest the handshake waits for the key check (then 1503)."""

    latency_ms: int = 120
    peer_idle_ms: int = 5000
    check_timeout_s: float = 2.5
    backlog: int = 16


_PENDING_TTL_S = 30.0  # a handshake admitted by the callback but never accepted (bad passphrase) is forgotten


@dataclass(frozen=True)
class _Pending:
    stream_key: str
    stream_id: str
    peer: str
    at: float


class SrtServer:
    """`start` binds and listens; `close` stops listening and disconnects every caller."""

    def __init__(self, handler: AdmissionHandler, settings: SrtSettings | None = None) -> None:
        self.handler = handler
        self.settings = settings or SrtSettings()
        self.connections: set[SrtConnection] = set()
        self.port = 0
        self._lib: libsrt.LibSrt | None = None
        self._listener = libsrt.SRT_INVALID_SOCK
        self._callback: object = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None
        self._closing = False

    async def start(self, host: str, port: int) -> None:
        """Listen on `host:port` (UDP); raises SrtError (port in use) or OSError (no libsrt)."""
        self._loop = asyncio.get_running_loop()
        self._lib = lib = await asyncio.to_thread(libsrt.LibSrt.load)
        self._listener, self.port, self._callback = await asyncio.to_thread(
            lib.listen, host, port, self.settings.backlog, self._on_handshake,
            latency_ms=self.settings.latency_ms, peer_idle_ms=self.settings.peer_idle_ms)
        self._accept_thread = threading.Thread(target=self._accept_loop, name="srt-accept", daemon=True)
        self._accept_thread.start()

    async def close(self) -> None:
        self._closing = True
        if self._lib is not None and self._listener != libsrt.SRT_INVALID_SOCK:
            await asyncio.to_thread(self._lib.close, self._listener)
        if self._accept_thread is not None:
            await asyncio.to_thread(self._accept_thread.join, 5)
        await asyncio.gather(*(c.close("server shutting down") for c in list(self.connections)))

    # --- libsrt's thread -----------------------------------------------------------------------------
    def _on_handshake(self, sock: int, peer: str, stream_id: str) -> int:
        """The listen callback: 0 to go on with the handshake, or the SRT_REJX code to reject it with."""
        if self._closing:
            return libsrt.REJECT_UNAVAILABLE
        try:
            request = parse_stream_id(stream_id)
        except StreamIdError as exc:
            log.info("SRT caller %s rejected: %s", peer, exc)
            return libsrt.REJECT_BAD_MODE if exc.bad_mode else libsrt.REJECT_BAD_REQUEST
        check = self._on_loop(self.handler.check_key(request.stream_key))
        try:
            result = check.result(self.settings.check_timeout_s)
        except concurrent.futures.TimeoutError:
            check.cancel()
            log.warning("SRT caller %s rejected: the key check took over %g s", peer, self.settings.check_timeout_s)
            return libsrt.REJECT_UNAVAILABLE
        except Exception:
            log.exception("SRT caller %s rejected: the key check failed", peer)
            return libsrt.REJECT_UNAVAILABLE
        if result is None:
            log.info("SRT caller %s rejected: unknown or revoked stream key", peer)
            return libsrt.REJECT_UNAUTHORIZED
        if result.busy:
            log.info("SRT caller %s rejected: stream %s has a live publisher", peer, result.stream_id)
            return libsrt.REJECT_CONFLICT
        assert self._lib is not None
        if result.srt_passphrase:
            try:
                self._lib.set_string(sock, libsrt.SRTO_PASSPHRASE, result.srt_passphrase)
            except libsrt.SrtError:
                log.exception("SRT caller %s rejected: could not set the stream's passphrase", peer)
                return libsrt.REJECT_UNAVAILABLE
        now = time.monotonic()
        with self._pending_lock:
            for stale in [s for s, p in self._pending.items() if now - p.at > _PENDING_TTL_S]:
                del self._pending[stale]
            self._pending[sock] = _Pending(request.stream_key, result.stream_id, peer, now)
        return 0

    def _on_loop(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # --- the accept thread ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._lib is not None
        while not self._closing:
            try:
                sock = self._lib.accept(self._listener)
            except libsrt.SrtError as exc:
                if not self._closing:
                    log.warning("SRT accept failed: %s", exc)
                    continue
                return
            with self._pending_lock:
                pending = self._pending.pop(sock, None)
            if pending is None:  # accepted without passing the callback: cannot happen; never serve it
                self._lib.close(sock)
                continue
            self._on_loop(self._admit(sock, pending))

    async def _admit(self, sock: int, pending: _Pending) -> None:
        assert self._lib is not None
        connection = SrtConnection(self, sock, pending.peer)
        admission = await self.handler.admit(pending.stream_key, connection, stream_id=pending.stream_id)
        if admission.sink is None:
            log.info("SRT caller %s closed after the handshake: %s", pending.peer,
                     "stream busy (lease)" if admission.refusal is Refusal.BUSY else "key no longer valid")
            await asyncio.to_thread(self._lib.close, sock)
            return
        log.info("SRT caller %s publishing to %s", pending.peer, pending.stream_id)
        self.connections.add(connection)
        connection.start(admission.sink)


class SrtConnection:
    """One publishing caller: its reader thread, and the session layer's `Disconnector` and
    `TransportStatsSource`. `on_unpublish` is called exactly once, after the last `on_unit`."""

    def __init__(self, server: SrtServer, sock: int, peer: str) -> None:
        assert server._lib is not None and server._loop is not None
        self.server = server
        self.lib = server._lib
        self.loop = server._loop
        self.sock = sock
        self.peer = peer
        self.sink: MediaSink | None = None
        self.ended = asyncio.Event()
        self._closed = threading.Event()
        self._stats: TransportStats | None = None
        self._stats_lock = threading.Lock()
        self._window_reset = False
        self._thread: threading.Thread | None = None

    def start(self, sink: MediaSink) -> None:
        self.sink = sink
        self._thread = threading.Thread(target=self._run, name=f"srt-{self.sock}", daemon=True)
        self._thread.start()

    def disconnect(self, reason: str) -> None:
        """`Disconnector`: close the socket now (from a worker thread); the reader ends and unpublishes."""
        if self._closed.is_set():
            return
        log.info("closing SRT caller %s: %s", self.peer, reason)
        self._closed.set()
        self.loop.run_in_executor(None, self.lib.close, self.sock)

    async def close(self, reason: str) -> None:
        self.disconnect(reason)
        await self.ended.wait()

    def transport_stats(self) -> TransportStats | None:
        """`TransportStatsSource`: the worst loss of the one-second intervals since the previous call, and
        the newest RTT, as the reader thread read them from libsrt."""
        with self._stats_lock:
            stats = self._stats
            self._window_reset = True
        return stats

    # --- the reader thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        buffer = ctypes.create_string_buffer(_LIVE_MESSAGE)
        stats_due = time.monotonic()

        def read(_size: int) -> bytes:
            nonlocal stats_due
            if self._closed.is_set():
                return b""
            size = self.lib.recv(self.sock, buffer)
            if size <= 0:
                return b""
            if (now := time.monotonic()) >= stats_due:  # once a second, off the loop's thread
                stats_due = now + _STATS_INTERVAL_S
                self._read_stats()
            return buffer.raw[:size]

        try:
            for unit in demux(read):
                if self._closed.is_set():
                    break
                self._deliver(unit)
        except Exception as exc:  # not MPEG-TS, or the session layer failed: the publish ends either way
            log.info("SRT caller %s: %s", self.peer, exc)
        finally:
            self._closed.set()
            self.lib.close(self.sock)
            asyncio.run_coroutine_threadsafe(self._unpublish(), self.loop)

    def _read_stats(self) -> None:
        try:
            link = self.lib.stats(self.sock)
        except libsrt.SrtError:
            return
        with self._stats_lock:
            previous = None if self._window_reset else self._stats
            self._window_reset = False
            expected = link.received + link.lost
            loss = 100.0 * link.lost / expected if expected else 0.0
            if previous is not None:  # keep the worst loss of the reporting window
                loss = max(loss, previous.packet_loss_pct)
            self._stats = TransportStats(loss, link.rtt_ms)

    def _deliver(self, unit: AccessUnit) -> None:
        assert self.sink is not None
        # Waits for the session to take the unit: SRT's receive buffer absorbs a slow transcoder.
        asyncio.run_coroutine_threadsafe(self.sink.on_unit(unit), self.loop).result()

    async def _unpublish(self) -> None:
        self.server.connections.discard(self)
        try:
            if self.sink is not None:
                await self.sink.on_unpublish()
        finally:
            self.ended.set()
