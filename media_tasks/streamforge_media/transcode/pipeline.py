"""The transcoder: one ffmpeg per generation, the access units on stdin → one decode → split → scale per rung.

`build_graph` is the ladder as an ffmpeg-python graph; `FfmpegPipeline` writes the units through the
input writer that can carry the generation's tracks, watches the segments ffmpeg writes, hands finished
ones to a `SegmentSink`, and restarts ffmpeg (a new generation, same plan) if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import ffmpeg

from streamforge_media import hls
from streamforge_media.ladder import AUDIO_BITRATE_KBPS, Rendition
from streamforge_media.media import AccessUnit, MediaKind
from streamforge_media.tracks import Generation
from streamforge_media.transcode.inputs import InputWriter, input_writer_for

log = logging.getLogger(__name__)

PLAYLIST_NAME = "index.m3u8"
THUMBS_DIR = "thumbs"
SCAN_INTERVAL_S = 0.1
THUMBNAIL_HEIGHT = 360
MAX_RESTART_DELAY_S = 2.5


@dataclass(frozen=True)
class EncoderSettings:
    preset: str = "veryfast"
    tune: str = "zerolatency"
    segment_s: float = 2.0
    thumbnail_interval_s: float = 5.0
    live_window: int = 30
    x264_threads: int = 0


@dataclass(frozen=True)
class TranscodePlan:
    """One generation's work: the ladder (a single audio-only rendition when there is no video) and its source."""

    renditions: tuple[Rendition, ...]
    source: Generation

    @property
    def fps(self) -> float:
        return self.source.frame_rate

    @property
    def has_audio(self) -> bool:
        return self.source.audio is not None

    @property
    def has_video(self) -> bool:
        return self.source.video is not None


def video_options(r: Rendition, plan: TranscodePlan, settings: EncoderSettings) -> dict[str, Any]:
    gop = max(1, round(plan.fps * settings.segment_s))
    return {
        "c:v": "libx264", "preset": settings.preset, "tune": settings.tune, "pix_fmt": "yuv420p",
        "profile:v": "high", "level:v": f"{hls.avc_level(r.width, r.height, plan.fps) / 10:.1f}",
        "b:v": f"{r.bitrate_kbps}k", "maxrate": f"{r.maxrate_kbps}k", "bufsize": f"{r.bitrate_kbps * 2}k",
        # Keyframes at the same input instants in every rung: forced on the clock, with -g as a
        # ceiling and no scene-cut keyframes in between.
        "g": gop, "keyint_min": gop, "sc_threshold": 0,
        "force_key_frames": f"expr:gte(t,n_forced*{settings.segment_s:g})",
        "threads": settings.x264_threads,
    }


def audio_options() -> dict[str, Any]:
    return {"c:a": "aac", "b:a": f"{AUDIO_BITRATE_KBPS}k", "ar": 48000, "ac": 2}


def build_graph(plan: TranscodePlan, outdir: Path, settings: EncoderSettings, *, source: str = "pipe:0",
                input_options: dict[str, Any]) -> Any:
    """The whole ladder plus thumbnails as one ffmpeg-python graph (one input, one decode).

    An audio-only plan has one rendition of audio and no thumbnails.
    """
    source_node = ffmpeg.input(source, **input_options)
    renditions = plan.renditions
    hls_options = {"f": "hls", "hls_time": settings.segment_s, "hls_list_size": settings.live_window,
                   "hls_segment_type": "mpegts", "start_number": 0}
    outputs = []
    if not plan.has_video:
        (audio_rendition,) = renditions
        return ffmpeg.output(
            source_node.audio, str(outdir / audio_rendition.name / PLAYLIST_NAME),
            hls_segment_filename=str(outdir / audio_rendition.name / "seg_%06d.ts"), **hls_options, **audio_options())
    split = source_node.video.filter_multi_output("split", len(renditions) + 1)
    for index, r in enumerate(renditions):
        video = split.stream(index).filter("scale", r.width, r.height)
        streams = [video, source_node.audio] if plan.has_audio else [video]
        options_out = {**video_options(r, plan, settings), **(audio_options() if plan.has_audio else {})}
        outputs.append(ffmpeg.output(
            *streams, str(outdir / r.name / PLAYLIST_NAME),
            hls_segment_filename=str(outdir / r.name / "seg_%06d.ts"), **hls_options, **options_out))
    top = renditions[0]
    thumb_height = min(THUMBNAIL_HEIGHT, top.height)
    thumb_width = max(2, round(top.width * thumb_height / top.height / 2) * 2)
    thumbs = (split.stream(len(renditions))
              .filter("fps", f"1/{settings.thumbnail_interval_s:g}")
              .filter("scale", thumb_width, thumb_height))
    outputs.append(ffmpeg.output(thumbs, str(outdir / THUMBS_DIR / "%06d.jpg"), f="image2",
                                 atomic_writing=1, **{"q:v": 5}))
    return ffmpeg.merge_outputs(*outputs)


def command(graph: Any, ffmpeg_bin: str = "ffmpeg") -> list[str]:
    # Global options go first: ffmpeg ignores options trailing the last output.
    return list(graph.compile(cmd=[ffmpeg_bin, "-hide_banner", "-nostats", "-loglevel", "error", "-y"]))


def prepare_dirs(plan: TranscodePlan, outdir: Path) -> None:
    for r in plan.renditions:
        (outdir / r.name).mkdir(parents=True, exist_ok=True)
    (outdir / THUMBS_DIR).mkdir(parents=True, exist_ok=True)


class SegmentSink(Protocol):
    def generation_started(self) -> None:
        """A new ffmpeg process begins: its first segments follow a discontinuity."""

    def segment_ready(self, rendition: str, path: Path, duration: float) -> None: ...

    def thumbnail_ready(self, path: Path) -> None: ...


@dataclass
class _Run:
    """One ffmpeg process of the pipeline (a crash restart is a new run of the same plan)."""

    index: int
    outdir: Path
    proc: asyncio.subprocess.Process
    writer: InputWriter
    emitted: dict[str, int] = field(default_factory=dict)
    thumbs: set[str] = field(default_factory=set)
    playlist_versions: dict[str, tuple[int, int]] = field(default_factory=dict)
    base_ts: int | None = None
    started_at: float = field(default_factory=time.monotonic)


class FfmpegPipeline:
    """Feeds one generation's access units to ffmpeg; survives ffmpeg dying by starting it again (a new run)."""

    def __init__(self, plan: TranscodePlan, workdir: Path, sink: SegmentSink, *,
                 settings: EncoderSettings | None = None, ffmpeg_bin: str = "ffmpeg") -> None:
        self.plan = plan
        self.workdir = workdir
        self.sink = sink
        self.settings = settings or EncoderSettings()
        self.ffmpeg_bin = ffmpeg_bin
        self._gen: _Run | None = None
        self._generations = 0
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._restart_delay = 0.2

    @property
    def pid(self) -> int | None:
        return self._gen.proc.pid if self._gen else None

    @property
    def generations(self) -> int:
        return self._generations

    async def start(self) -> None:
        await self._launch()

    async def _launch(self) -> None:
        index = self._generations
        self._generations += 1
        outdir = self.workdir / f"gen{index:03d}"
        prepare_dirs(self.plan, outdir)
        writer = input_writer_for(self.plan.source.video, self.plan.source.audio)
        args = command(build_graph(self.plan, outdir, self.settings, input_options=writer.input_options),
                       self.ffmpeg_bin)
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        gen = _Run(index, outdir, proc, writer)
        self._gen = gen
        self.sink.generation_started()
        log.info("ffmpeg generation %d started (pid %d, %d renditions)", index, proc.pid, len(self.plan.renditions))
        self._spawn(self._watch(gen))
        self._spawn(self._log_stderr(gen))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def feed(self, unit: AccessUnit) -> None:
        """Write one unit of the plan's tracks (others are ignored); timestamps become relative to the run's start."""
        gen = self._gen
        if gen is None or self._closing or gen.proc.returncode is not None:
            return
        if unit.track != self.plan.source.track(unit.kind):
            return
        if gen.base_ts is None:
            # Each run starts on a video keyframe (on any unit without video), after the container header.
            if self.plan.has_video and (unit.kind is MediaKind.AUDIO or not unit.keyframe):
                return
            gen.base_ts = unit.dts_ms
            await self._write(gen, gen.writer.header())
        dts = unit.dts_ms - gen.base_ts
        if dts < 0:  # audio from just before the first keyframe
            return
        await self._write(gen, gen.writer.unit(unit, dts, max(dts, unit.pts_ms - gen.base_ts)))

    async def _write(self, gen: _Run, data: bytes) -> None:
        stdin = gen.proc.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            log.debug("ffmpeg generation %d stdin closed", gen.index)

    async def _watch(self, gen: _Run) -> None:
        exited = asyncio.ensure_future(gen.proc.wait())  # one waiter for the whole generation, not one per scan
        while not (await asyncio.wait({exited}, timeout=SCAN_INTERVAL_S))[0]:
            self._scan(gen)
        gen.playlist_versions.clear()  # the last scan reads every playlist, whatever stat says
        self._scan(gen)
        if self._closing or gen is not self._gen:
            return
        log.warning("ffmpeg generation %d exited with %s mid-stream; restarting", gen.index, gen.proc.returncode)
        if time.monotonic() - gen.started_at < 5:
            self._restart_delay = min(MAX_RESTART_DELAY_S, self._restart_delay * 2)
        else:
            self._restart_delay = 0.2
        await asyncio.sleep(self._restart_delay)
        if not self._closing:
            await self._launch()

    async def _log_stderr(self, gen: _Run) -> None:
        assert gen.proc.stderr is not None
        async for line in gen.proc.stderr:
            text = line.decode(errors="replace").rstrip()
            if text:
                log.warning("ffmpeg[%d]: %s", gen.index, text)

    def _scan(self, gen: _Run) -> None:
        for r in self.plan.renditions:
            playlist = gen.outdir / r.name / PLAYLIST_NAME
            try:
                # ffmpeg rewrites a playlist once per segment: between rewrites a stat is all a scan costs.
                stat = playlist.stat()
                version = (stat.st_mtime_ns, stat.st_size)
                if gen.playlist_versions.get(r.name) == version:
                    continue
                gen.playlist_versions[r.name] = version
                segments = hls.parse_media_playlist(playlist.read_text())
            except FileNotFoundError:
                continue
            # Track segment numbers, not list positions: ffmpeg's own window slides.
            done = gen.emitted.get(r.name, 0)
            for segment in segments:
                number = int(segment.uri.rsplit("_", 1)[1].split(".", 1)[0])
                if number >= done:
                    self.sink.segment_ready(r.name, gen.outdir / r.name / segment.uri, segment.duration)
                    done = number + 1
            gen.emitted[r.name] = done
        with os.scandir(gen.outdir / THUMBS_DIR) as entries:
            new = sorted(e.name for e in entries if e.name.endswith(".jpg") and e.name not in gen.thumbs)
        for name in new:
            gen.thumbs.add(name)
            self.sink.thumbnail_ready(gen.outdir / THUMBS_DIR / name)

    async def close(self, timeout_s: float = 10.0) -> None:
        """End of input: let ffmpeg flush its last segments, then stop watching."""
        self._closing = True
        gen = self._gen
        if gen is not None and gen.proc.returncode is None:
            assert gen.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                gen.proc.stdin.close()
            try:
                await asyncio.wait_for(gen.proc.wait(), timeout_s)
            except TimeoutError:
                log.warning("ffmpeg generation %d did not exit; killing it", gen.index)
                gen.proc.kill()
                await gen.proc.wait()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
