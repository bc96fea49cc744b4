"""Session lifecycle: who may publish, live → reconnecting → offline, health reports, key revocation.

`SessionManager` is the RTMP server's `PublishHandler`. Each live stream has one `LiveStream`
(a session, surviving reconnects within grace) and at most one `IngestSession` (the current
publisher connection) feeding a pipeline whose segments go to the session's `HlsPublisher`.
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

from streamforge.events import INGEST_HEALTH, SESSION_RECORDED, STREAM_LIVE, STREAM_OFFLINE, EventPublisher
from streamforge.keys import hash_stream_key, key_matches

from streamforge_media import flv, h264
from streamforge_media.config import MAX_RECONNECT_GRACE_S, MediaConfig
from streamforge_media.health import IngestStats
from streamforge_media.ladder import select_renditions
from streamforge_media.pipeline import EncoderSettings, FfmpegPipeline, SegmentSink, TranscodePlan
from streamforge_media.publisher import HlsPublisher, ObjectStore
from streamforge_media.rtmp.server import Disconnector, MediaSink
from streamforge_media.store import LIVE, RECONNECTING, IngestLease, StreamStore

FIRST_HEALTH_REPORT_S = 4.5

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_SOURCE_SIZE = (1280, 720)
DEFAULT_FPS = 30.0
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class Pipeline(Protocol):
    async def start(self) -> None: ...

    async def feed(self, type_id: int, timestamp: int, payload: bytes) -> None: ...

    async def close(self, timeout_s: float = 10.0) -> None: ...


PipelineFactory = Callable[[TranscodePlan, Path, SegmentSink], Pipeline]


def ffmpeg_pipeline_factory(settings: EncoderSettings, ffmpeg_bin: str) -> PipelineFactory:
    def create(plan: TranscodePlan, workdir: Path, sink: SegmentSink) -> Pipeline:
        return FfmpegPipeline(plan, workdir, sink, settings=settings, ffmpeg_bin=ffmpeg_bin)
    return create


def utc_iso(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_session_id(now: datetime | None = None) -> str:
    """`ses_` + UTC `YYYYMMDDTHHMMSS` + 6 random chars: sorts by start time (contracts.md)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return "ses_" + stamp + "".join(secrets.choice(_BASE32) for _ in range(6))


def plan_from_metadata(config: MediaConfig, metadata: dict[str, Any], has_audio: bool,
                       sps_size: tuple[int, int] | None = None) -> TranscodePlan:
    """The transcode plan; the source size is the SPS's (`sps_size`) when known, else the metadata's.

    The SPS wins over onMetaData when both are present and disagree: it is what the decoder will actually
    output, while metadata is only what the publisher declares (and may be stale or wrong).
    """
    def number(*names: str) -> float:
        for name in names:
            value = metadata.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
        return 0.0

    width, height = int(number("width")), int(number("height"))
    if sps_size is not None:
        if width and height and (width, height) != sps_size:
            log.warning("onMetaData says %dx%d but the H.264 SPS says %dx%d; using the SPS",
                        width, height, *sps_size)
        width, height = sps_size
    elif not width or not height:
        log.warning("no usable SPS and no width/height metadata; assuming %dx%d", *DEFAULT_SOURCE_SIZE)
        width, height = DEFAULT_SOURCE_SIZE
    fps = number("framerate", "videoframerate", "fps") or DEFAULT_FPS
    return TranscodePlan(tuple(select_renditions(config.ladder, width, height)), min(fps, 120.0), has_audio)


class SessionManager:
    def __init__(self, config: MediaConfig, store: StreamStore, events: EventPublisher, objects: ObjectStore,
                 upload_executor: Executor, pipeline_factory: PipelineFactory | None = None) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.objects = objects
        self.upload_executor = upload_executor
        self.pipeline_factory = pipeline_factory or ffmpeg_pipeline_factory(config.encoder, config.ffmpeg_bin)
        self.streams: dict[str, LiveStream] = {}
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

    async def emit(self, detail_type: str, stream_id: str, session_id: str, **fields: Any) -> None:
        try:
            await self.call(self.events.publish, detail_type, stream_id=stream_id, session_id=session_id, **fields)
        except Exception:  # an event lost must not take the stream down
            log.exception("could not publish %s for %s", detail_type, stream_id)

    async def start_publish(self, stream_key: str, control: Disconnector) -> MediaSink | None:
        key_hash = hash_stream_key(stream_key)
        key = await self.call(self.store.get_key, key_hash)
        if key is None or not key_matches(stream_key, key.key_hash):
            return None
        stream = await self.call(self.store.get_stream, key.stream_id)
        if stream is None:
            return None
        async with self._lock:
            live = self.streams.get(stream.stream_id)
            if live is not None and (live.ingest is not None or live.ending):
                log.info("refusing second publisher for %s", stream.stream_id)
                return None
            if live is None:
                grace = self.config.reconnect_grace_s if stream.reconnect_grace_s is None else stream.reconnect_grace_s
                live = LiveStream(self, stream.stream_id, max(0, min(grace, MAX_RECONNECT_GRACE_S)), stream.record)
                if not await live.begin():
                    log.info("refusing publisher for %s: another media task is ingesting it", stream.stream_id)
                    return None
                self.streams[stream.stream_id] = live
            else:
                await live.resume()
            ingest = IngestSession(live, key_hash, control)
            live.ingest = ingest
        self.spawn(self._mark_key_used(key_hash))
        return ingest

    async def _mark_key_used(self, key_hash: str) -> None:
        try:
            await self.call(self.store.mark_key_used, key_hash, utc_iso())
        except Exception:
            log.exception("could not update last_used_at of a key")

    async def shutdown(self) -> None:
        """End every session now (task stopping): VODs are written, streams go offline."""
        for live in list(self.streams.values()):
            if live.ingest is not None:
                live.ingest.control.disconnect("server shutting down")
            live.request_end("shutdown")
        while self.streams:
            await asyncio.sleep(0.05)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


class LiveStream:
    """One session of one stream, from publish to offline; survives reconnects within grace."""

    def __init__(self, manager: SessionManager, stream_id: str, grace_s: int, record: bool) -> None:
        self.manager = manager
        self.config = manager.config
        self.stream_id = stream_id
        self.grace_s = grace_s
        self.record = record
        self.session_id = new_session_id()
        self.started_at = utc_iso()
        self.plan: TranscodePlan | None = None
        self.publisher: HlsPublisher | None = None
        self.ingest: IngestSession | None = None
        self.ending = False
        self.ingest_count = 0
        self.last_key_hash: str | None = None
        self._grace_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self.workdir = self.config.work_dir / stream_id / self.session_id

    def _lease(self) -> IngestLease:
        return IngestLease(self.config.task_id, time.time(), self.config.ingest_lease_s)

    async def begin(self) -> bool:
        """Start the session; False (nothing written) when another media task is ingesting this stream."""
        m = self.manager
        if not await m.call(m.store.start_session, self.stream_id, self.session_id, self.started_at,
                            lease=self._lease()):
            return False
        self._lease_task = m.spawn(self._hold_lease())
        log.info("stream %s live, session %s", self.stream_id, self.session_id)
        base = self.config.cdn_base_url
        m.spawn(m.emit(STREAM_LIVE, self.stream_id, self.session_id, started_at=self.started_at,
                       playback_url=f"{base}/live/{self.stream_id}/master.m3u8",
                       thumbnail_url=f"{base}/thumbs/{self.stream_id}/latest.jpg"))
        return True

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
        await m.call(m.store.set_status, self.stream_id, self.session_id, LIVE, utc_iso())
        log.info("stream %s reconnected within grace, session %s continues", self.stream_id, self.session_id)

    def ensure_publisher(self, metadata: dict[str, Any], has_audio: bool,
                         sps_size: tuple[int, int] | None = None) -> tuple[TranscodePlan, HlsPublisher]:
        if self.plan is None or self.publisher is None:
            # The ladder is fixed for the session, so a reconnect keeps the same renditions.
            self.plan = plan_from_metadata(self.config, metadata, has_audio, sps_size)
            self.publisher = HlsPublisher(
                self.manager.objects, self.manager.upload_executor, stream_id=self.stream_id,
                session_id=self.session_id, renditions=self.plan.renditions, fps=self.plan.fps,
                has_audio=self.plan.has_audio)
            m = self.manager
            m.spawn(self._write_renditions())
        return self.plan, self.publisher

    async def _write_renditions(self) -> None:
        assert self.plan is not None
        m = self.manager
        try:
            await m.call(m.store.update_live_info, self.stream_id, self.session_id,
                         {"renditions": [r.as_item() for r in self.plan.renditions]}, utc_iso())
        except Exception:
            log.exception("could not store renditions of %s", self.stream_id)

    def ingest_ended(self, ingest: IngestSession, *, end_now: str | None) -> None:
        if self.ingest is ingest:
            self.ingest = None
        self.last_key_hash = ingest.key_hash
        if end_now is not None or self.grace_s == 0:
            self.request_end(end_now or "publisher left (no grace)")
        elif not self.ending:
            self._grace_task = self.manager.spawn(self._grace())

    async def _grace(self) -> None:
        m = self.manager
        try:
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
        for task in (self._grace_task, self._lease_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self.manager.spawn(self._end(reason))

    async def _end(self, reason: str) -> None:
        m = self.manager
        log.info("ending session %s of %s: %s", self.session_id, self.stream_id, reason)
        try:
            if self.ingest is not None:
                self.ingest.control.disconnect(reason)
                await self.ingest.closed.wait()
            vod_key = None
            duration = 0.0
            if self.publisher is not None:
                vod_key = await self.publisher.finalize(record=self.record, timeout_s=self.config.finalize_timeout_s)
                duration = round(self.publisher.published_duration_s(), 3)
            ended_at = utc_iso()
            vod_url = self.config.vod_url(self.stream_id, self.session_id) if vod_key else None
            await m.call(m.store.end_session, self.stream_id, self.session_id, ended_at=ended_at,
                         duration_s=duration, vod_url=vod_url)
            await m.emit(STREAM_OFFLINE, self.stream_id, self.session_id, ended_at=ended_at, reason=reason)
            await m.emit(SESSION_RECORDED, self.stream_id, self.session_id, started_at=self.started_at,
                         ended_at=ended_at, duration_s=duration, vod_url=vod_url)
            log.info("session %s ended (%.1f s, vod %s)", self.session_id, duration, vod_url or "none")
        except Exception:
            log.exception("finalizing session %s of %s failed", self.session_id, self.stream_id)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
            if m.streams.get(self.stream_id) is self:
                del m.streams[self.stream_id]


class IngestSession:
    """One accepted publisher connection: its tags, its pipeline, its health and key checks."""

    def __init__(self, live: LiveStream, key_hash: str, control: Disconnector) -> None:
        self.live = live
        self.key_hash = key_hash
        self.control = control
        self.metadata: dict[str, Any] = {}
        self.stats = IngestStats()
        self.pipeline: Pipeline | None = None
        self.closed = asyncio.Event()
        self._audio_seen = False
        self._headers: dict[int, bytes] = {}
        self._revoked: str | None = None
        live.ingest_count += 1
        self._workdir = live.workdir / f"ingest{live.ingest_count:03d}"
        manager = live.manager
        self._tasks = [manager.spawn(self._report_health()), manager.spawn(self._watch_key())]

    async def on_metadata(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata
        for name in ("width", "height"):
            value = metadata.get(name)
            if isinstance(value, int | float) and value > 0:
                setattr(self.stats, name, int(value))

    async def on_media(self, type_id: int, timestamp: int, payload: bytes) -> None:
        self.stats.on_media(type_id, timestamp, payload)
        if type_id == flv.AUDIO_TAG:
            self._audio_seen = True
        if self.pipeline is None:
            if flv.is_avc_sequence_header(payload) or flv.is_aac_sequence_header(payload):
                self._headers[type_id] = payload
            if type_id != flv.VIDEO_TAG or not flv.is_video_keyframe(payload) or flv.is_avc_sequence_header(payload):
                return
            if flv.is_avc(payload) and flv.VIDEO_TAG not in self._headers:
                # The source size comes from the SPS, which AVC cannot be decoded without anyway: every
                # encoder sends the sequence header as its first video tag, so wait for it, don't guess.
                return
            await self._start_pipeline(timestamp)
        assert self.pipeline is not None
        await self.pipeline.feed(type_id, timestamp, payload)

    async def _start_pipeline(self, timestamp: int) -> None:
        has_audio = self._audio_seen or any(k in self.metadata for k in ("audiocodecid", "audiodatarate"))
        sps_size = None
        if (video_header := self._headers.get(flv.VIDEO_TAG)) is not None:
            try:
                sps_size = h264.sequence_header_size(video_header)
            except h264.H264Error as exc:
                log.warning("stream %s: could not read the picture size from the SPS: %s", self.live.stream_id, exc)
        if sps_size is not None and not (self.stats.width and self.stats.height):
            self.stats.width, self.stats.height = sps_size
        plan, publisher = self.live.ensure_publisher(self.metadata, has_audio, sps_size)
        self.pipeline = self.live.manager.pipeline_factory(plan, self._workdir, publisher)
        await self.pipeline.start()
        for type_id, header in self._headers.items():
            await self.pipeline.feed(type_id, timestamp, header)

    async def on_unpublish(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pipeline is not None:
            await self.pipeline.close()
        self.closed.set()
        self.live.ingest_ended(self, end_now=self._revoked)

    async def _report_health(self) -> None:
        live, m = self.live, self.live.manager
        # The first report comes as soon as two keyframe intervals are seen, so a console opened right after
        # going live shows the ingest at once; then one every interval.
        delay = min(live.config.health_interval_s, FIRST_HEALTH_REPORT_S)
        while True:
            await asyncio.sleep(delay)
            delay = live.config.health_interval_s
            figures = self.stats.snapshot()
            at = utc_iso()
            try:
                await m.call(m.store.update_live_info, live.stream_id, live.session_id,
                             {"ingest_health": {**figures, "at": at}}, at)
            except Exception:
                log.exception("could not store ingest health of %s", live.stream_id)
            await m.emit(INGEST_HEALTH, live.stream_id, live.session_id, **figures)

    async def _watch_key(self) -> None:
        live, m = self.live, self.live.manager
        while True:
            await asyncio.sleep(live.config.key_poll_s)
            try:
                key = await m.call(m.store.get_key, self.key_hash)
                stream = await m.call(m.store.get_stream, live.stream_id) if key is not None else None
            except Exception:
                log.exception("key check for %s failed; will retry", live.stream_id)
                continue
            if key is None or stream is None:
                self._revoked = "stream key revoked" if key is None else "stream deleted"
                log.info("stream %s: %s; disconnecting publisher", live.stream_id, self._revoked)
                self.control.disconnect(self._revoked)
                return
