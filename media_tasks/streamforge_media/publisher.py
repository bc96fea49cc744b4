"""The publisher: a session's segments and manifests into S3, in a safe order, whatever the segment format.

It is the transcoder's `SegmentSink`. It numbers each `EncodedSegment`, uploads it (and its generation's init
segment) and records it in the session's `Timeline`; each packager's manifests are then rendered from the
timeline and stored by one writer per manifest key.

Invariants:
- a segment (and its init segment) is stored before any manifest naming it: manifests render only the
  stored prefix of each rendition, and a master only once the playlists it names are stored;
- every upload is retried until stored (backoff with full jitter); a newer body of a manifest supersedes
  an older one still being retried, and an unchanged body is not stored again;
- segment numbers continue across transcoder generations (ffmpeg restarts, reconnects, new tracks),
  behind a discontinuity (HLS) and a new Period (DASH);
- `ready` is set once every entry manifest (masters, MPD) of this session is stored: from then on, a viewer
  opening the stream's URLs gets this session, never the previous one's ended manifests.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from streamforge import media_layout

from streamforge_media.ladder import Rendition
from streamforge_media.llorigin import LowLatencyStream
from streamforge_media.packaging.llhls import Fragment
from streamforge_media.packaging.packagers import Manifest, Packager
from streamforge_media.packaging.timeline import EncodedSegment, GenerationInfo, RenditionTimeline, Segment, Timeline
from streamforge_media.segment_format import SegmentFormat

log = logging.getLogger(__name__)

MANIFEST_MAX_AGE_S = 1
"""How long a CDN or a player may keep a manifest (Cache-Control max-age, seconds)."""
MANIFEST_CACHE_CONTROL = f"max-age={MANIFEST_MAX_AGE_S}"
SEGMENT_CACHE_CONTROL = "public, max-age=31536000, immutable"
JPEG_CONTENT_TYPE = "image/jpeg"
THUMBNAIL_CACHE_CONTROL = "max-age=5"
_THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded",
                             "TooManyRequestsException", "RequestTimeout", "RequestTimeTooSkewed"})


class ObjectStore(Protocol):
    def put_object(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None: ...


class S3ObjectStore:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._s3 = client or boto3.client("s3")

    def put_object(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                            CacheControl=cache_control)


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and connection trouble: worth retrying quietly."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in _THROTTLE_CODES or status >= 500 or status == 429
    return isinstance(exc, BotoCoreError | ConnectionError | TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 0.1
    cap_s: float = 2.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** min(attempt, 20)))


@dataclass
class _Slot:
    """One manifest key: the latest definition, its writer, and the body last stored."""

    manifest: Manifest
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    stored: bytes | None = None
    task: asyncio.Task[None] | None = None


class Publisher:
    def __init__(self, store: ObjectStore, executor: Executor, *, stream_id: str, session_id: str,
                 fmt: SegmentFormat, packagers: Sequence[Packager], renditions: tuple[Rendition, ...], fps: float,
                 has_audio: bool, retry: RetryPolicy | None = None, upload_concurrency: int = 4,
                 low_latency: LowLatencyStream | None = None) -> None:
        self.store = store
        self.executor = executor
        self.stream_id = stream_id
        self.session_id = session_id
        self.fmt = fmt
        self.packagers = list(packagers)
        self.retry = retry or RetryPolicy()
        self.timeline = Timeline(stream_id, session_id, fmt)
        self.ready = asyncio.Event()
        self._slots: dict[str, _Slot] = {}
        self._stored: set[str] = set()
        self._next_seq = 0
        self._pending_discontinuity: set[str] = set()
        self._uploads: set[asyncio.Task[None]] = set()
        self._inits: dict[tuple[str, int], asyncio.Task[bool]] = {}
        self._slots_free = asyncio.Semaphore(upload_concurrency)
        self._thumb_pending: Path | None = None
        self._thumb_task: asyncio.Task[None] | None = None
        self._thumb_count = 0
        self._finalized = False
        self.low_latency = low_latency
        """Where LL-HLS parts go (the task's LL origin), None when they are not served."""
        self.use_ladder(renditions, fps=fps, has_audio=has_audio)

    @property
    def renditions(self) -> tuple[Rendition, ...]:
        return self.timeline.ladder

    def use_ladder(self, renditions: tuple[Rendition, ...], *, fps: float, has_audio: bool) -> None:
        """The ladder of the generations from now on (a new source shape or new tracks mid-session).

        A rendition that stays keeps its playlists, continued behind a discontinuity; a new one starts its
        own; one no longer produced gets its live playlists ended. The masters are rewritten once every
        rendition of the new ladder has a stored segment.
        """
        t = self.timeline
        if (renditions, fps, has_audio) == (t.ladder, t.fps, t.has_audio):
            return
        if self.low_latency is not None:
            self.low_latency.use_ladder(renditions, fps=fps, has_audio=has_audio)
        kept = {r.name for r in renditions}
        for track in t.renditions.values():
            track.retired = track.rendition.name not in kept
        for r in renditions:
            track = t.renditions.setdefault(r.name, RenditionTimeline(r))
            track.rendition = r
        t.ladder, t.fps, t.has_audio = renditions, fps, has_audio
        self._refresh_manifests()

    def _refresh_manifests(self) -> None:
        if self._finalized:
            return
        for manifest in (m for p in self.packagers for m in p.live_manifests(self.timeline)):
            slot = self._slots.get(manifest.key)
            if slot is None:
                slot = self._slots[manifest.key] = _Slot(manifest)
                slot.task = asyncio.create_task(self._manifest_writer(slot))
            slot.manifest = manifest
            slot.dirty.set()

    # -- SegmentSink ---------------------------------------------------------------------------

    def generation_started(self) -> None:
        """A new transcoder run begins: its segments follow a discontinuity, in a new Period."""
        t = self.timeline
        if self.low_latency is not None:
            self.low_latency.generation_started()
        # Re-align numbering: a dying ffmpeg may have finished more segments in one rung than another.
        self._next_seq = max([self._next_seq, *(r.segments[-1].seq + 1 for r in t.renditions.values() if r.segments)])
        self._pending_discontinuity = {name for name, r in t.renditions.items() if r.segments}
        t.generations.append(GenerationInfo(len(t.generations), t.ladder, t.fps, t.has_audio))

    def segment_ready(self, encoded: EncodedSegment) -> None:
        t = self.timeline
        if not t.generations:
            self.generation_started()
        generation = t.generations[-1]
        if generation.origin_s is None:
            generation.origin_s = encoded.origin_s
        track = t.renditions[encoded.rendition]
        seq = max(self._next_seq, track.segments[-1].seq + 1 if track.segments else 0)
        init = None
        if encoded.init is not None:
            init = media_layout.init_name(self.session_id, generation.index)
            self._upload_init(track.rendition.name, generation.index, init, encoded.init)
        segment = Segment(seq, media_layout.segment_name(self.session_id, seq, self.fmt.extension), generation.index,
                          init, encoded.start, encoded.duration, encoded.timescale, encoded.wall_clock_s,
                          discontinuity=encoded.rendition in self._pending_discontinuity)
        self._pending_discontinuity.discard(encoded.rendition)
        track.segments.append(segment)
        task = asyncio.create_task(self._upload_segment(track, segment, encoded.path))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)

    def part_ready(self, rendition: str, init: bytes, fragment: Fragment, origin_s: float) -> None:
        """An LL-HLS part: held in memory by the LL origin, never stored (its segment is, by `segment_ready`)."""
        if self.low_latency is not None and not self._finalized:
            self.low_latency.add_fragment(rendition, init, fragment, origin_s)

    def thumbnail_ready(self, path: Path) -> None:
        if self._finalized:
            return
        self._thumb_pending = path
        if self._thumb_task is None or self._thumb_task.done():
            self._thumb_task = asyncio.create_task(self._upload_thumbnails())

    # -- figures -------------------------------------------------------------------------------

    def published_duration_s(self) -> float:
        """Seconds of media stored, in the rendition that has the most (renditions may change mid-session)."""
        return max((sum(s.duration_s for s in t.segments if s.uploaded) for t in self.timeline.renditions.values()),
                   default=0.0)

    # -- uploads -------------------------------------------------------------------------------

    async def _put(self, key: str, body: bytes | Path, content_type: str, cache_control: str,
                   superseded: Callable[[], bool] = lambda: False) -> bool:
        """Retry until stored; False if a newer body superseded this one first."""
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.executor, self._put_sync, key, body, content_type, cache_control)
                return True
            except Exception as exc:  # every failure is retried; only the log level differs
                delay = self.retry.delay(attempt)
                attempt += 1
                level = logging.INFO if is_transient(exc) else logging.ERROR
                log.log(level, "upload of %s failed (attempt %d, retry in %.2fs): %s", key, attempt, delay, exc)
                await asyncio.sleep(delay)
                if superseded():
                    return False

    def _put_sync(self, key: str, body: bytes | Path, content_type: str, cache_control: str) -> None:
        data = body.read_bytes() if isinstance(body, Path) else body
        self.store.put_object(key, data, content_type=content_type, cache_control=cache_control)

    def _upload_init(self, rendition: str, generation: int, name: str, path: Path) -> None:
        if (rendition, generation) in self._inits:
            return
        assert self.fmt.init_content_type is not None
        body = path.read_bytes()  # small, and written once per run before its first segment is listed
        key = self.timeline.segment_key(rendition, name)
        self._inits[(rendition, generation)] = asyncio.create_task(
            self._put(key, body, self.fmt.init_content_type, SEGMENT_CACHE_CONTROL))

    async def _upload_segment(self, track: RenditionTimeline, segment: Segment, path: Path) -> None:
        key = self.timeline.segment_key(track.rendition.name, segment.name)
        async with self._slots_free:
            await self._put(key, path, self.fmt.content_type, SEGMENT_CACHE_CONTROL)
        if segment.init is not None:
            await asyncio.shield(self._inits[(track.rendition.name, segment.generation)])
        segment.uploaded = True
        path.unlink(missing_ok=True)
        self._changed(track.rendition.name)

    def _changed(self, rendition: str) -> None:
        for slot in self._slots.values():
            names = slot.manifest.renditions
            if names is None or rendition in names:
                slot.dirty.set()

    async def _manifest_writer(self, slot: _Slot) -> None:
        while True:
            await slot.dirty.wait()
            slot.dirty.clear()
            manifest = slot.manifest
            if not all(key in self._stored for key in manifest.after):
                continue  # written when the last of them is stored
            text = manifest.render(self.timeline)
            if text is None:
                continue
            body = text.encode()
            if body == slot.stored:
                continue
            if not await self._put(manifest.key, body, manifest.content_type, MANIFEST_CACHE_CONTROL,
                                   superseded=slot.dirty.is_set):
                continue
            slot.stored = body
            self._on_stored(manifest.key)

    def _on_stored(self, key: str) -> None:
        self._stored.add(key)
        for slot in self._slots.values():
            if key in slot.manifest.after:
                slot.dirty.set()
        if not self.ready.is_set() and all(s.manifest.key in self._stored for s in self._slots.values()
                                           if s.manifest.entry):
            self.ready.set()

    async def _upload_thumbnails(self) -> None:
        while self._thumb_pending is not None:
            path, self._thumb_pending = self._thumb_pending, None
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            numbered = media_layout.thumbnail_key(self.stream_id, self.session_id, self._thumb_count)
            if await self._put(numbered, body, JPEG_CONTENT_TYPE, SEGMENT_CACHE_CONTROL,
                               superseded=lambda: self._thumb_pending is not None):
                self._thumb_count += 1
                await self._put(media_layout.latest_thumbnail_key(self.stream_id), body, JPEG_CONTENT_TYPE,
                                THUMBNAIL_CACHE_CONTROL, superseded=lambda: self._thumb_pending is not None)
            path.unlink(missing_ok=True)

    # -- end of session ------------------------------------------------------------------------

    async def drain(self, timeout_s: float) -> bool:
        """Wait for queued segment uploads; True if none is left."""
        if self._uploads:
            await asyncio.wait(set(self._uploads), timeout=timeout_s)
        return not self._uploads

    async def finalize(self, *, record: bool, timeout_s: float) -> dict[str, str] | None:
        """End the live manifests and, if recording, write the VOD's.

        Returns the stored entry manifests of the VOD, by kind (`hls`, and `dash` for CMAF), or None when
        nothing was recorded (no VOD asked for, no segment stored, or its master could not be stored).
        """
        self._finalized = True
        if self.low_latency is not None:
            self.low_latency.end()
        if not await self.drain(timeout_s):
            log.error("session %s: %d segment uploads still failing at finalize; VOD skips them",
                      self.session_id, len(self._uploads))
        pending = [*self._uploads, *self._inits.values(),
                   *(s.task for s in self._slots.values() if s.task is not None),
                   *([self._thumb_task] if self._thumb_task else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if not any(t.published() for t in self.timeline.renditions.values()):
            return None
        self.timeline.ended = True
        stored: set[str] = set(self._stored)
        for manifest in (m for p in self.packagers for m in p.final_manifests(self.timeline, record=record)):
            if not all(key in stored for key in manifest.after):
                log.error("not storing %s: %s could not be stored", manifest.key, ", ".join(manifest.after))
                continue
            text = manifest.render(self.timeline)
            if text is None:
                continue
            try:
                # Final puts get a bounded retry budget too, through the same deadline.
                await asyncio.wait_for(self._put(manifest.key, text.encode(), manifest.content_type,
                                                 MANIFEST_CACHE_CONTROL), timeout_s)
                stored.add(manifest.key)
            except TimeoutError:
                log.error("could not store %s before the finalize deadline", manifest.key)
        if not record:
            return None
        vod = {"hls": media_layout.vod_master_key(self.stream_id, self.session_id),
               "dash": media_layout.vod_manifest_key(self.stream_id, self.session_id)}
        recorded = {kind: key for kind, key in vod.items() if key in stored}
        return recorded if "hls" in recorded else None
