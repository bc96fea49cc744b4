"""Uploads a session's HLS output to S3 in a safe order and keeps its playlists.

Invariants:
- a segment is uploaded before any playlist naming it (playlists list only the longest fully
  uploaded prefix of each rendition);
- a finished segment is retried until it is stored (backoff with full jitter), and a newer
  playlist supersedes an older one still being retried;
- segment numbers continue across ffmpeg restarts and reconnects, behind a discontinuity.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from streamforge_media import hls
from streamforge_media.ladder import Rendition

log = logging.getLogger(__name__)

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
class _Segment:
    seq: int
    name: str
    duration: float
    discontinuity: bool
    path: Path
    uploaded: bool = False


@dataclass
class _Playlist:
    rendition: Rendition
    segments: list[_Segment] = field(default_factory=list)
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    pending_discontinuity: bool = False
    retired: bool = False  # no longer in the ladder: its live playlist is ended

    def published(self) -> list[_Segment]:
        for index, segment in enumerate(self.segments):
            if not segment.uploaded:
                return self.segments[:index]
        return self.segments


class HlsPackager:
    def __init__(self, store: ObjectStore, executor: Executor, *, stream_id: str, session_id: str,
                 renditions: tuple[Rendition, ...], fps: float, has_audio: bool,
                 retry: RetryPolicy | None = None, live_window: int = 6, upload_concurrency: int = 4) -> None:
        self.store = store
        self.executor = executor
        self.stream_id = stream_id
        self.session_id = session_id
        self.renditions: tuple[Rendition, ...] = ()
        self.fps = fps
        self.has_audio = has_audio
        self.retry = retry or RetryPolicy()
        self.live_window = live_window
        self._tracks: dict[str, _Playlist] = {}
        self._next_seq = 0
        self._uploads: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(upload_concurrency)
        self._master_written = False
        self._writers: list[asyncio.Task[None]] = []
        self.use_ladder(renditions, fps=fps, has_audio=has_audio)
        self._thumb_pending: Path | None = None
        self._thumb_task: asyncio.Task[None] | None = None
        self._thumb_count = 0
        self._finalized = False

    def use_ladder(self, renditions: tuple[Rendition, ...], *, fps: float, has_audio: bool) -> None:
        """The ladder of the generations from now on (a new source shape or new tracks mid-session).

        A rendition that stays keeps its playlist, continued behind a discontinuity; a new one starts its
        own; one no longer produced gets its live playlist ended. The master is rewritten once every
        rendition of the new ladder has a segment.
        """
        if (renditions, fps, has_audio) == (self.renditions, self.fps, self.has_audio):
            return
        retired = [self._tracks[r.name] for r in self.renditions if r.name not in {n.name for n in renditions}]
        self.renditions, self.fps, self.has_audio = renditions, fps, has_audio
        for r in renditions:
            playlist = self._tracks.get(r.name)
            if playlist is None:
                playlist = self._tracks[r.name] = _Playlist(r)
                self._writers.append(asyncio.create_task(self._playlist_writer(playlist)))
            playlist.rendition = r
            playlist.retired = False
        for playlist in retired:
            playlist.retired = True
            playlist.dirty.set()
        self._master_written = False

    # -- SegmentSink ---------------------------------------------------------------------------

    def generation_started(self) -> None:
        # Re-align numbering: a dying ffmpeg may have finished more segments in one rung than another.
        self._next_seq = max([self._next_seq, *(t.segments[-1].seq + 1 for t in self._tracks.values()
                                                if t.segments)])
        for track in self._tracks.values():
            track.pending_discontinuity = bool(track.segments)

    def segment_ready(self, rendition: str, path: Path, duration: float) -> None:
        track = self._tracks[rendition]
        seq = max(self._next_seq, track.segments[-1].seq + 1 if track.segments else 0)
        segment = _Segment(seq, f"{self.session_id}-{seq:06d}.ts", duration, track.pending_discontinuity, path)
        track.pending_discontinuity = False
        track.segments.append(segment)
        task = asyncio.create_task(self._upload_segment(track, segment))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)

    def thumbnail_ready(self, path: Path) -> None:
        if self._finalized:
            return
        self._thumb_pending = path
        if self._thumb_task is None or self._thumb_task.done():
            self._thumb_task = asyncio.create_task(self._upload_thumbnails())

    # -- keys and bodies -----------------------------------------------------------------------

    def live_prefix(self) -> str:
        return f"live/{self.stream_id}"

    def vod_prefix(self) -> str:
        return f"vod/{self.stream_id}/{self.session_id}"

    def master_body(self) -> str:
        return hls.render_master(self.renditions, fps=self.fps, has_audio=self.has_audio)

    def _live_playlist(self, track: _Playlist, *, ended: bool) -> str:
        published = track.published()
        start = max(0, len(published) - self.live_window)
        window = published[start:]
        return hls.render_media_playlist(
            [hls.PlaylistEntry(s.name, s.duration, s.discontinuity) for s in window],
            target=hls.target_duration([s.duration for s in published]), media_sequence=start,
            discontinuity_sequence=sum(1 for s in published[:start] if s.discontinuity), ended=ended)

    def _vod_playlist(self, track: _Playlist) -> str:
        # Relative to vod/{stream}/{session}/{rendition}/: four levels up is the bucket root.
        prefix = f"../../../../{self.live_prefix()}/{track.rendition.name}/"
        entries = []
        gap = False
        for s in track.segments:
            if not s.uploaded:
                gap = True
                continue
            entries.append(hls.PlaylistEntry(prefix + s.name, s.duration, s.discontinuity or gap))
            gap = False
        return hls.render_media_playlist(entries, target=hls.target_duration([e.duration for e in entries]),
                                         media_sequence=0, ended=True, vod=True)

    @property
    def segment_count(self) -> int:
        return max((len(t.published()) for t in self._tracks.values()), default=0)

    def published_duration_s(self) -> float:
        """Seconds of media stored, in the rendition that has the most (renditions may change mid-session)."""
        return max((sum(s.duration for s in t.segments if s.uploaded) for t in self._tracks.values()), default=0.0)

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

    async def _upload_segment(self, track: _Playlist, segment: _Segment) -> None:
        key = f"{self.live_prefix()}/{track.rendition.name}/{segment.name}"
        async with self._slots:
            await self._put(key, segment.path, hls.SEGMENT_CONTENT_TYPE, hls.SEGMENT_CACHE_CONTROL)
        segment.uploaded = True
        segment.path.unlink(missing_ok=True)
        track.dirty.set()

    async def _playlist_writer(self, track: _Playlist) -> None:
        key = f"{self.live_prefix()}/{track.rendition.name}/index.m3u8"
        while True:
            await track.dirty.wait()
            track.dirty.clear()
            body = self._live_playlist(track, ended=track.retired).encode()
            if not await self._put(key, body, hls.PLAYLIST_CONTENT_TYPE, hls.PLAYLIST_CACHE_CONTROL,
                                   superseded=track.dirty.is_set):
                continue
            current = [self._tracks[r.name] for r in self.renditions]
            if not self._master_written and all(t.published() for t in current):
                # The master goes up once every rendition it names has a playable segment.
                self._master_written = True
                await self._put(f"{self.live_prefix()}/master.m3u8", self.master_body().encode(),
                                hls.PLAYLIST_CONTENT_TYPE, hls.PLAYLIST_CACHE_CONTROL)

    async def _upload_thumbnails(self) -> None:
        while self._thumb_pending is not None:
            path, self._thumb_pending = self._thumb_pending, None
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            numbered = f"thumbs/{self.stream_id}/{self.session_id}-{self._thumb_count:06d}.jpg"
            if await self._put(numbered, body, JPEG_CONTENT_TYPE, hls.SEGMENT_CACHE_CONTROL,
                               superseded=lambda: self._thumb_pending is not None):
                self._thumb_count += 1
                await self._put(f"thumbs/{self.stream_id}/latest.jpg", body, JPEG_CONTENT_TYPE,
                                THUMBNAIL_CACHE_CONTROL, superseded=lambda: self._thumb_pending is not None)
            path.unlink(missing_ok=True)

    # -- end of session ------------------------------------------------------------------------

    async def drain(self, timeout_s: float) -> bool:
        """Wait for queued segment uploads; True if none is left."""
        if self._uploads:
            await asyncio.wait(set(self._uploads), timeout=timeout_s)
        return not self._uploads

    async def finalize(self, *, record: bool, timeout_s: float) -> str | None:
        """Close the live playlists and, if recording, write the VOD. Returns the VOD master key."""
        self._finalized = True
        if not await self.drain(timeout_s):
            log.error("session %s: %d segment uploads still failing at finalize; VOD skips them",
                      self.session_id, len(self._uploads))
        pending = [*self._uploads, *self._writers, *([self._thumb_task] if self._thumb_task else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if not any(t.published() for t in self._tracks.values()):
            return None
        # Final puts get a bounded retry budget too, through the same drain deadline.
        finals: list[tuple[str, str]] = [
            (f"{self.live_prefix()}/{t.rendition.name}/index.m3u8", self._live_playlist(t, ended=True))
            for t in self._tracks.values()]
        vod_master = f"{self.vod_prefix()}/master.m3u8"
        if record:
            finals += [(f"{self.vod_prefix()}/{t.rendition.name}/index.m3u8", self._vod_playlist(t))
                       for t in self._tracks.values()]
            finals.append((vod_master, self.master_body()))
        for key, body in finals:
            try:
                await asyncio.wait_for(self._put(key, body.encode(), hls.PLAYLIST_CONTENT_TYPE,
                                                 hls.PLAYLIST_CACHE_CONTROL), timeout_s)
            except TimeoutError:
                log.error("could not store %s before the finalize deadline", key)
                if key == vod_master:
                    return None
        return vod_master if record else None
