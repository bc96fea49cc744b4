"""Broadcast sessions: who may publish, live → reconnecting → offline, health, key revocation, takeover.

`SessionManager` is every ingest adapter's `PublishHandler`. Each live stream has one `BroadcastSession`
(surviving reconnects within grace) and at most one `PublisherConnection` (the current publisher). A
connection normalises its units' timestamps, lets the track rules decide the transcoder generations,
and feeds each generation's transcoder, whose segments go to the broadcast's `Publisher` (the packaging
seam: HLS and, for CMAF, DASH packagers over one set of segments).

Going live: a new session claims the stream (lease, current session) but leaves it `offline` until its
first manifests are stored and, when the stream was broadcast before, the previous session's cached copies have
expired (`MANIFEST_MAX_AGE_S`); only then do the status turn `live` and `Stream Live` go out, so whoever follows
either gets this session.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from streamforge import media_layout, urls
from streamforge.events import EventPublisher, SessionRecorded, StreamEvent, StreamLive, StreamOffline
from streamforge.keys import hash_stream_key, key_matches

from streamforge_media.config import MAX_RECONNECT_GRACE_S, MediaConfig
from streamforge_media.health import IngestStats
from streamforge_media.ladder import AUDIO_ONLY, Rendition, select_renditions
from streamforge_media.llorigin import LowLatencyOrigin, LowLatencyStream
from streamforge_media.media import AccessUnit, PublisherHints
from streamforge_media.packaging.packagers import DashPackager, HlsPackager, Packager, Windows
from streamforge_media.ports import (
    Admission,
    Disconnector,
    KeyCheck,
    MediaSink,
    Refusal,
    TransportStatsSource,
)
from streamforge_media.publisher import MANIFEST_MAX_AGE_S, ObjectStore, Publisher
from streamforge_media.store import LIVE, RECONNECTING, IngestLease, StreamStore
from streamforge_media.timestamps import MediaClock, TimestampNormaliser
from streamforge_media.tracks import Generation, TrackSet
from streamforge_media.transcode.pipeline import EncoderSettings, FfmpegPipeline, SegmentSink, TranscodePlan

FIRST_HEALTH_REPORT_S = 4.5

log = logging.getLogger(__name__)
T = TypeVar("T")

_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class Transcoder(Protocol):
    """One transcoder generation: started once, fed the generation's units, closed once."""

    async def start(self) -> None: ...

    async def feed(self, unit: AccessUnit) -> None: ...

    async def close(self, timeout_s: float = 10.0) -> None: ...


TranscoderFactory = Callable[[TranscodePlan, Path, SegmentSink], Transcoder]


def ffmpeg_transcoder_factory(settings: EncoderSettings, ffmpeg_bin: str) -> TranscoderFactory:
    def create(plan: TranscodePlan, workdir: Path, sink: SegmentSink) -> Transcoder:
        return FfmpegPipeline(plan, workdir, sink, settings=settings, ffmpeg_bin=ffmpeg_bin)
    return create


def utc_iso(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_session_id(now: datetime | None = None) -> str:
    """`ses_` + UTC `YYYYMMDDTHHMMSS` + 6 random chars: sorts by start time (contracts.md)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return media_layout.SESSION_ID_PREFIX + stamp + "".join(secrets.choice(_BASE32) for _ in range(6))


def plan_for(config: MediaConfig, generation: Generation, clock: MediaClock | None = None) -> TranscodePlan:
    """The ladder for a generation's source: rungs up to the video's short side, plus the audio rendition when
    the segment format encodes audio once; or the audio rendition alone, without video."""
    video = generation.video
    if video is None:
        return TranscodePlan((AUDIO_ONLY,), generation, clock)
    rungs = tuple(select_renditions(config.ladder, video.width, video.height))
    if generation.audio is not None and config.encoder.segment_format.audio_rendition:
        rungs += (AUDIO_ONLY,)
    return TranscodePlan(rungs, generation, clock)


class SessionManager:
    def __init__(self, config: MediaConfig, store: StreamStore, events: EventPublisher, objects: ObjectStore,
                 upload_executor: Executor, transcoder_factory: TranscoderFactory | None = None) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.objects = objects
        self.upload_executor = upload_executor
        self.transcoder_factory = transcoder_factory or ffmpeg_transcoder_factory(config.encoder, config.ffmpeg_bin)
        self.streams: dict[str, BroadcastSession] = {}
        self.low_latency = LowLatencyOrigin(config.ll_origin_secret, self.locate_ingest)
        """The LL-HLS state of the streams this task ingests, served on its HTTP port."""
        self.address = ""
        """This task's HTTP base URL as other tasks reach it (set once the HTTP server listens), in its leases."""
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking boto3 call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def emit(self, event: StreamEvent) -> None:
        try:
            await self.call(self.events.publish, event)
        except Exception:  # an event lost must not take the stream down
            log.exception("could not publish %s for %s", event.DETAIL_TYPE, event.stream_id)

    async def locate_ingest(self, stream_id: str) -> str | None:
        """The HTTP base URL of the other task whose lease on `stream_id` runs now, else None."""
        record = await self.call(self.store.get_stream, stream_id)
        if record is None or not record.ingest_address or record.ingest_lease_until < time.time() \
                or record.ingest_address == self.address:
            return None
        return record.ingest_address

    async def start_publish(self, stream_key: str, control: Disconnector) -> MediaSink | None:
        return (await self.admit(stream_key, control)).sink

    async def check_key(self, stream_key: str) -> KeyCheck | None:
        """`AdmissionHandler.check_key`: two reads (the key's hash, its stream); nothing is written."""
        key = await self.call(self.store.get_key, hash_stream_key(stream_key))
        if key is None or not key_matches(stream_key, key.key_hash):
            return None
        stream = await self.call(self.store.get_stream, key.stream_id)
        if stream is None:
            return None
        broadcast = self.streams.get(stream.stream_id)
        busy = broadcast is not None and (broadcast.ending or (
            broadcast.connection is not None and broadcast.connection.silent_s() < self.config.takeover_silence_s))
        return KeyCheck(stream.stream_id, stream.srt_passphrase, busy)

    async def admit(self, stream_key: str, control: Disconnector, *, stream_id: str | None = None) -> Admission:
        key_hash = hash_stream_key(stream_key)
        key = await self.call(self.store.get_key, key_hash)
        if key is None or not key_matches(stream_key, key.key_hash):
            return Admission(None, Refusal.UNAUTHORIZED)
        if stream_id is not None and not secrets.compare_digest(stream_id.encode(), key.stream_id.encode()):
            return Admission(None, Refusal.UNAUTHORIZED)
        stream = await self.call(self.store.get_stream, key.stream_id)
        if stream is None:
            return Admission(None, Refusal.UNAUTHORIZED)
        async with self._lock:
            broadcast = self.streams.get(stream.stream_id)
            replaced: PublisherConnection | None = None
            if broadcast is not None and broadcast.ending:
                log.info("refusing a publisher for %s: its session is ending", stream.stream_id)
                return Admission(None, Refusal.BUSY)
            if broadcast is not None and broadcast.connection is not None:
                current = broadcast.connection
                silent = current.silent_s()
                if silent < self.config.takeover_silence_s:
                    log.info("refusing a second publisher for %s: the first sent media %.1f s ago",
                             stream.stream_id, silent)
                    return Admission(None, Refusal.BUSY)
                # A publisher whose network dropped without a FIN looks connected until its socket times out;
                # the encoder reconnecting with the right key takes over at once, as within grace.
                log.info("stream %s: publisher silent for %.1f s; a new publisher takes over", stream.stream_id, silent)
                replaced = current
                replaced.replace("replaced by a new publisher")
            elif broadcast is None:
                grace = self.config.reconnect_grace_s if stream.reconnect_grace_s is None else stream.reconnect_grace_s
                dvr = self.config.dvr_window_s if stream.dvr_window_s is None else stream.dvr_window_s
                broadcast = BroadcastSession(self, stream.stream_id, max(0, min(grace, MAX_RECONNECT_GRACE_S)),
                                             stream.record, dvr_window_s=max(0, dvr),
                                             broadcast_before=stream.broadcast_before)
                if not await broadcast.begin():
                    log.info("refusing publisher for %s: another media task is ingesting it", stream.stream_id)
                    return Admission(None, Refusal.BUSY)
                self.streams[stream.stream_id] = broadcast
            else:
                await broadcast.resume()
            connection = PublisherConnection(broadcast, key_hash, control, after=replaced)
            broadcast.connection = connection
        self.spawn(self._mark_key_used(key_hash))
        return Admission(connection)

    async def _mark_key_used(self, key_hash: str) -> None:
        try:
            await self.call(self.store.mark_key_used, key_hash, utc_iso())
        except Exception:
            log.exception("could not update last_used_at of a key")

    async def shutdown(self) -> None:
        """End every session now (task stopping): VODs are written, streams go offline."""
        for broadcast in list(self.streams.values()):
            if broadcast.connection is not None:
                broadcast.connection.control.disconnect("server shutting down")
            broadcast.request_end("shutdown")
        while self.streams:
            await asyncio.sleep(0.05)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


class BroadcastSession:
    """One broadcast of one stream, from publish to offline; survives reconnects within grace."""

    def __init__(self, manager: SessionManager, stream_id: str, grace_s: int, record: bool, *,
                 dvr_window_s: int = 0, broadcast_before: bool = True) -> None:
        self.manager = manager
        self.config = manager.config
        self.stream_id = stream_id
        self.grace_s = grace_s
        self.record = record
        self.dvr_window_s = dvr_window_s
        # False only for a stream's first broadcast: no earlier manifests at its URLs can be cached anywhere.
        self.broadcast_before = broadcast_before
        self.went_live = False
        self.session_id = new_session_id()
        self.started_at = utc_iso()
        self.packager: Publisher | None = None
        self.connection: PublisherConnection | None = None
        self.ending = False
        self.connection_count = 0
        self.last_key_hash: str | None = None
        self._renditions: tuple[Rendition, ...] = ()
        self._grace_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._live_task: asyncio.Task[None] | None = None
        self.workdir = self.config.work_dir / stream_id / self.session_id

    def _lease(self) -> IngestLease:
        return IngestLease(self.config.task_id, time.time(), self.config.ingest_lease_s, self.manager.address)

    async def begin(self) -> bool:
        """Start the session; False (nothing written) when another media task is ingesting this stream."""
        m = self.manager
        if not await m.call(m.store.start_session, self.stream_id, self.session_id, self.started_at,
                            lease=self._lease()):
            return False
        self._lease_task = m.spawn(self._hold_lease())
        log.info("stream %s: session %s started; live once its first manifests are stored",
                 self.stream_id, self.session_id)
        return True

    async def _go_live(self, publisher: Publisher) -> None:
        """Status `live` and `Stream Live`, once this session's entry manifests are stored and every cached copy
        of the previous session's (CDN, players: max-age) has expired."""
        await publisher.ready.wait()
        if self.broadcast_before:
            await asyncio.sleep(MANIFEST_MAX_AGE_S)
        if self.ending:
            return
        m = self.manager
        self.went_live = True
        # A publisher may have dropped meanwhile: the stream is then live and waiting for it.
        status = LIVE if self.connection is not None else RECONNECTING
        try:
            await m.call(m.store.set_status, self.stream_id, self.session_id, status, utc_iso())
        except Exception:
            log.exception("could not mark %s %s", self.stream_id, status)
        log.info("stream %s live, session %s", self.stream_id, self.session_id)
        base = self.config.cdn_base_url
        await m.emit(StreamLive(
            stream_id=self.stream_id, session_id=self.session_id, started_at=self.started_at,
            playback_url=urls.playback_url(base, self.stream_id),
            thumbnail_url=urls.thumbnail_url(base, self.stream_id),
            dash_url=urls.dash_url(base, self.stream_id) if self.config.encoder.segment_format.dash else None))

    async def _hold_lease(self) -> None:
        """Renew the ingest lease at a third of its term, through reconnect grace, until the session ends.

        A refused renewal means another task took the stream over after our lease ran out (this task was cut
        off from DynamoDB for a whole term), so this task stops ingesting it.
        """
        m = self.manager
        while not self.ending:
            await asyncio.sleep(self.config.ingest_lease_s / 3)
            try:
                renewed = await m.call(m.store.renew_lease, self.stream_id, self.session_id, self._lease())
            except Exception:
                log.exception("could not renew the ingest lease of %s; retrying", self.stream_id)
                continue
            if not renewed and not self.ending:
                log.warning("stream %s: ingest lease lost to another task", self.stream_id)
                self.request_end("ingest lease lost to another media task")
                return

    async def resume(self) -> None:
        if self._grace_task is not None:
            self._grace_task.cancel()
            self._grace_task = None
        m = self.manager
        if self.went_live:
            await m.call(m.store.set_status, self.stream_id, self.session_id, LIVE, utc_iso())
        log.info("stream %s reconnected within grace, session %s continues", self.stream_id, self.session_id)

    def packager_for(self, plan: TranscodePlan) -> Publisher:
        """The session's publisher (the packaging seam), set to this plan's ladder (renditions change with the
        source's shape and tracks)."""
        if self.packager is None:
            fmt = self.config.encoder.segment_format
            windows = Windows(dvr_s=self.dvr_window_s, segment_s=self.config.encoder.segment_s)
            packagers: list[Packager] = [HlsPackager(fmt, windows)]
            if fmt.dash:
                packagers.append(DashPackager(fmt, windows, cdn_base_url=self.config.cdn_base_url))
            encoder = self.config.encoder
            low_latency = None
            if encoder.parts:
                low_latency = LowLatencyStream(self.stream_id, fmt, encoder.part_target_s, encoder.segment_s)
                self.manager.low_latency.streams[self.stream_id] = low_latency
            self.packager = Publisher(
                self.manager.objects, self.manager.upload_executor, stream_id=self.stream_id,
                session_id=self.session_id, fmt=fmt, packagers=packagers, renditions=plan.renditions, fps=plan.fps,
                has_audio=plan.has_audio, low_latency=low_latency)
            self._live_task = self.manager.spawn(self._go_live(self.packager))
        else:
            self.packager.use_ladder(plan.renditions, fps=plan.fps, has_audio=plan.has_audio)
        if plan.renditions != self._renditions:
            self._renditions = plan.renditions
            self.manager.spawn(self._write_renditions(plan))
        return self.packager

    async def _write_renditions(self, plan: TranscodePlan) -> None:
        m = self.manager
        try:
            await m.call(m.store.update_live_info, self.stream_id, self.session_id,
                         {"renditions": [r.as_item() for r in plan.renditions]}, utc_iso())
        except Exception:
            log.exception("could not store renditions of %s", self.stream_id)

    def connection_ended(self, connection: PublisherConnection, *, end_now: str | None) -> None:
        if self.connection is connection:
            self.connection = None
        self.last_key_hash = connection.key_hash
        if connection.replaced:
            return  # its successor is already this session's publisher
        if end_now is not None or self.grace_s == 0:
            self.request_end(end_now or "publisher left (no grace)")
        elif not self.ending:
            self._grace_task = self.manager.spawn(self._grace())

    async def _grace(self) -> None:
        m = self.manager
        try:
            if self.went_live:
                await m.call(m.store.set_status, self.stream_id, self.session_id, RECONNECTING, utc_iso())
        except Exception:
            log.exception("could not mark %s reconnecting", self.stream_id)
        log.info("stream %s reconnecting; grace %d s", self.stream_id, self.grace_s)
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline:
            await asyncio.sleep(min(self.config.key_poll_s, max(0.0, deadline - time.monotonic())))
            if await self._revoked():
                self.request_end("key revoked or stream deleted during grace")
                return
        self.request_end("grace expired")

    async def _revoked(self) -> bool:
        m = self.manager
        try:
            if self.last_key_hash is not None and await m.call(m.store.get_key, self.last_key_hash) is None:
                return True
            return await m.call(m.store.get_stream, self.stream_id) is None
        except Exception:
            log.exception("could not check key/stream of %s", self.stream_id)
            return False

    def request_end(self, reason: str) -> None:
        if self.ending:
            return
        self.ending = True
        for task in (self._grace_task, self._lease_task, self._live_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self.manager.spawn(self._end(reason))

    async def _end(self, reason: str) -> None:
        m = self.manager
        log.info("ending session %s of %s: %s", self.session_id, self.stream_id, reason)
        try:
            if self.connection is not None:
                self.connection.control.disconnect(reason)
                await self.connection.closed.wait()
            recorded: dict[str, str] | None = None
            duration = 0.0
            if self.packager is not None:
                recorded = await self.packager.finalize(record=self.record, timeout_s=self.config.finalize_timeout_s)
                duration = round(self.packager.published_duration_s(), 3)
            ended_at = utc_iso()
            base = self.config.cdn_base_url
            vod_url = urls.vod_url(base, self.stream_id, self.session_id) if recorded else None
            vod_dash_url = urls.vod_dash_url(base, self.stream_id, self.session_id) \
                if recorded and "dash" in recorded else None
            await m.call(m.store.end_session, self.stream_id, self.session_id, ended_at=ended_at,
                         duration_s=duration, vod_url=vod_url, vod_dash_url=vod_dash_url)
            if self.went_live:
                await m.emit(StreamOffline(stream_id=self.stream_id, session_id=self.session_id, ended_at=ended_at,
                                           reason=reason))
            await m.emit(SessionRecorded(stream_id=self.stream_id, session_id=self.session_id,
                                         started_at=self.started_at, ended_at=ended_at, duration_s=duration,
                                         vod_url=vod_url, vod_dash_url=vod_dash_url))
            log.info("session %s ended (%.1f s, vod %s)", self.session_id, duration, vod_url or "none")
        except Exception:
            log.exception("finalizing session %s of %s failed", self.session_id, self.stream_id)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
            if self.packager is not None and m.low_latency.streams.get(self.stream_id) is self.packager.low_latency:
                del m.low_latency.streams[self.stream_id]  # the player falls back to the plain playlists
            if m.streams.get(self.stream_id) is self:
                del m.streams[self.stream_id]


class PublisherConnection:
    """One accepted publisher connection: its units, its transcoder generations, its health and key checks.

    `after` is the silent connection this one took over from: units wait for it to have closed, so the
    packager never sees two generations at once.
    """

    def __init__(self, broadcast: BroadcastSession, key_hash: str, control: Disconnector, *,
                 after: PublisherConnection | None = None) -> None:
        self.broadcast = broadcast
        self.key_hash = key_hash
        self.control = control
        self.stats = IngestStats()
        self.timestamps = TimestampNormaliser()
        self.clock = MediaClock()
        self.tracks = TrackSet()
        self.transcoder: Transcoder | None = None
        self.closed = asyncio.Event()
        self.replaced = False
        self._after = after
        self._generations = 0
        self._last_unit_at = time.monotonic()
        self._revoked: str | None = None
        broadcast.connection_count += 1
        self._workdir = broadcast.workdir / f"connection{broadcast.connection_count:03d}"
        manager = broadcast.manager
        self._tasks = [manager.spawn(self._report_health()), manager.spawn(self._watch_key()),
                       manager.spawn(self._watch_media())]

    def silent_s(self) -> float:
        """Seconds since this publisher's last access unit (or since it was accepted)."""
        return time.monotonic() - self._last_unit_at

    def replace(self, reason: str) -> None:
        """Close this connection for a successor that continues the broadcast (no grace, no end)."""
        self.replaced = True
        self.control.disconnect(reason)

    async def on_hints(self, hints: PublisherHints) -> None:
        self.tracks.hints = hints

    async def on_unit(self, unit: AccessUnit) -> None:
        self._last_unit_at = time.monotonic()
        unit = self.timestamps.normalise(unit)
        self.clock.observe(unit.dts_ms)
        self.stats.on_unit(unit)
        step = self.tracks.push(unit)
        if step.start is not None:
            await self._start_generation(step.start)
        if self.transcoder is not None:
            for queued in step.units:
                await self.transcoder.feed(queued)

    async def _start_generation(self, generation: Generation) -> None:
        if self._after is not None:
            await self._after.closed.wait()
            self._after = None
        if self.transcoder is not None:
            await self.transcoder.close()
        broadcast = self.broadcast
        plan = plan_for(broadcast.config, generation, self.clock)
        log.info("stream %s: transcoder generation for %s, ladder %s", broadcast.stream_id, generation.describe(),
                 ", ".join(r.name for r in plan.renditions))
        packager = broadcast.packager_for(plan)
        self._generations += 1
        self.transcoder = broadcast.manager.transcoder_factory(
            plan, self._workdir / f"generation{self._generations:03d}", packager)
        try:
            await self.transcoder.start()
        except ValueError as exc:  # tracks no transcoder input carries together (each alone is supported)
            log.warning("stream %s: cannot transcode %s: %s", broadcast.stream_id, generation.describe(), exc)
            self.transcoder = None
            self.control.disconnect("unsupported combination of codecs")

    async def on_unpublish(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.transcoder is not None:
            await self.transcoder.close()
        self.closed.set()
        self.broadcast.connection_ended(self, end_now=self._revoked)

    async def _watch_media(self) -> None:
        """The "no media for N s" rule, the same for every protocol: such a publisher is dropped."""
        limit = self.broadcast.config.no_media_timeout_s
        while True:
            await asyncio.sleep(max(0.05, limit - self.silent_s()))
            if self.silent_s() >= limit:
                log.info("stream %s: no media for %g s; dropping the publisher", self.broadcast.stream_id, limit)
                self.control.disconnect(f"no media for {limit:g} s")
                return

    async def _report_health(self) -> None:
        broadcast, m = self.broadcast, self.broadcast.manager
        # The first report comes as soon as two keyframe intervals are seen, so a console opened right after
        # going live shows the ingest at once; then one every interval.
        delay = min(broadcast.config.health_interval_s, FIRST_HEALTH_REPORT_S)
        while True:
            await asyncio.sleep(delay)
            delay = broadcast.config.health_interval_s
            health = self.stats.snapshot(broadcast.stream_id, broadcast.session_id)
            if isinstance(self.control, TransportStatsSource) and (transport := self.control.transport_stats()):
                health = health.replace(packet_loss_pct=round(transport.packet_loss_pct, 2),
                                        rtt_ms=round(transport.rtt_ms, 1))
            at = utc_iso()
            figures = {name: value for name, value in health.fields().items() if value is not None}
            try:
                await m.call(m.store.update_live_info, broadcast.stream_id, broadcast.session_id,
                             {"ingest_health": {**figures, "at": at}}, at)
            except Exception:
                log.exception("could not store ingest health of %s", broadcast.stream_id)
            await m.emit(health)

    async def _watch_key(self) -> None:
        broadcast, m = self.broadcast, self.broadcast.manager
        while True:
            await asyncio.sleep(broadcast.config.key_poll_s)
            try:
                key = await m.call(m.store.get_key, self.key_hash)
                stream = await m.call(m.store.get_stream, broadcast.stream_id) if key is not None else None
            except Exception:
                log.exception("key check for %s failed; will retry", broadcast.stream_id)
                continue
            if key is None or stream is None:
                self._revoked = "stream key revoked" if key is None else "stream deleted"
                log.info("stream %s: %s; disconnecting publisher", broadcast.stream_id, self._revoked)
                self.control.disconnect(self._revoked)
                return
