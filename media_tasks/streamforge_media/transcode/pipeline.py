"""The transcoder: one ffmpeg per generation, the access units on stdin → one decode → split → scale per rung.

`build_graph` is the ladder as an ffmpeg-python graph, writing the segment format's segments (CMAF: video
rungs without audio plus one audio rendition, the audio encoded once; MPEG-TS: audio muxed into every rung);
`FfmpegPipeline` writes the units through the input writer that can carry the generation's tracks, watches
the segments ffmpeg lists in its playlists (by media sequence number, not by file name), reads each one's
media times (CMAF: `tfdt` and sample durations; MPEG-TS: the listed durations), hands it to a `SegmentSink`
as an `EncodedSegment`, and restarts ffmpeg (a new generation, same plan) if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import ffmpeg

from streamforge_media import hls, isobmff, signalling
from streamforge_media.ladder import AUDIO_BITRATE_KBPS, Rendition
from streamforge_media.media import AccessUnit, MediaKind
from streamforge_media.packaging.llhls import Fragment, FragmentCutter
from streamforge_media.packaging.timeline import EncodedSegment
from streamforge_media.segment_format import DEFAULT, LOCAL_INIT, LOCAL_PLAYLIST, SegmentFormat
from streamforge_media.timestamps import MediaClock
from streamforge_media.tracks import Generation
from streamforge_media.transcode.inputs import InputWriter, input_writer_for

log = logging.getLogger(__name__)

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
    segment_format: SegmentFormat = DEFAULT
    part_target_s: float = 0.5
    """LL-HLS PART-TARGET, seconds: each rendition is also written as fragmented MP4 to a pipe, a fragment
    (a part) a little shorter than this; 0 turns that off. Formats without an init segment have no parts."""

    @property
    def parts(self) -> bool:
        return self.part_target_s > 0 and self.segment_format.has_init

    def fragment_us(self, frame_s: float) -> int:
        """The mp4 muxer's `frag_duration` (µs) for samples of `frame_s` seconds: it closes a fragment before
        the first sample at or past this, so a fragment lasts less than this plus one sample, ≤ `part_target_s`
        (30 fps: 14 frames, 0.467 s; AAC at 48 kHz: 23 frames, 0.491 s)."""
        return max(1, round((self.part_target_s - frame_s) * 1_000_000) - 1000)


@dataclass(frozen=True)
class TranscodePlan:
    """One generation's work: the ladder and its source.

    The ladder holds the video rungs and, when the segment format encodes audio once, the audio rendition;
    a source without video has that rendition alone. `clock` dates the media (None: the wall clock when the
    run's first unit is fed).
    """

    renditions: tuple[Rendition, ...]
    source: Generation
    clock: MediaClock | None = None

    @property
    def fps(self) -> float:
        return self.source.frame_rate

    @property
    def has_audio(self) -> bool:
        return self.source.audio is not None

    @property
    def has_video(self) -> bool:
        return self.source.video is not None

    @property
    def video_renditions(self) -> tuple[Rendition, ...]:
        return tuple(r for r in self.renditions if not r.audio_only)

    @property
    def audio_rendition(self) -> Rendition | None:
        """The rendition carrying the audio alone, if the ladder has one."""
        return next((r for r in self.renditions if r.audio_only), None)


def video_options(r: Rendition, plan: TranscodePlan, settings: EncoderSettings) -> dict[str, Any]:
    gop = max(1, round(plan.fps * settings.segment_s))
    return {
        "c:v": "libx264", "preset": settings.preset, "tune": settings.tune, "pix_fmt": "yuv420p",
        "profile:v": "high", "level:v": f"{signalling.avc_level(r.width, r.height, plan.fps) / 10:.1f}",
        "b:v": f"{r.bitrate_kbps}k", "maxrate": f"{r.maxrate_kbps}k", "bufsize": f"{r.bitrate_kbps * 2}k",
        # Keyframes at the same input instants in every rung: forced on the clock, with -g as a
        # ceiling and no scene-cut keyframes in between.
        "g": gop, "keyint_min": gop, "sc_threshold": 0,
        "force_key_frames": f"expr:gte(t,n_forced*{settings.segment_s:g})",
        "threads": settings.x264_threads,
    }


def audio_options() -> dict[str, Any]:
    return {"c:a": "aac", "b:a": f"{AUDIO_BITRATE_KBPS}k", "ar": signalling.AUDIO_SAMPLE_RATE,
            "ac": signalling.AUDIO_CHANNELS}


def _tee_escape(value: object) -> str:
    """A tee muxer slave option value or file name, escaped (ffmpeg-formats "tee": `\\`, `:`, `|`, `[`, `]`)."""
    return re.sub(r"([\\:|\[\]])", r"\\\1", str(value))


def tee_target(outputs: list[tuple[dict[str, Any], str]]) -> str:
    """The tee muxer's output: one slave per (muxer options, file name)."""
    return "|".join("[" + ":".join(f"{k}={_tee_escape(v)}" for k, v in options.items()) + "]" + _tee_escape(name)
                    for options, name in outputs)


def parts_muxer_options(settings: EncoderSettings, frame_s: float) -> dict[str, Any]:
    """The mp4 muxer writing LL-HLS parts of `frame_s`-second samples to a pipe: an empty moov, then a fragment
    at each keyframe and before `part_target_s` is reached; a dead reader never stops the segments
    (`onfail=ignore`)."""
    return {"f": "mp4", "movflags": "+empty_moov+default_base_moof+frag_keyframe+skip_trailer",
            "frag_duration": settings.fragment_us(frame_s), "onfail": "ignore"}


def build_graph(plan: TranscodePlan, outdir: Path, settings: EncoderSettings, *, source: str = "pipe:0",
                input_options: dict[str, Any], part_fds: dict[str, int] | None = None) -> Any:
    """The whole ladder plus thumbnails as one ffmpeg-python graph (one input, one decode).

    Each rendition is one HLS output into `outdir/{name}/`, in `settings.segment_format`. The audio is encoded
    once for the audio rendition when the plan has one, else once per video rung. A plan without video has
    no thumbnails. With `part_fds` (rendition name -> a pipe's write end), each rendition's encoding also goes,
    through the tee muxer, as fragmented MP4 to `pipe:{fd}` (LL-HLS parts): one encode, two muxers.
    """
    fmt = settings.segment_format
    source_node = ffmpeg.input(source, **input_options)

    def output(streams: list[Any], r: Rendition, options: dict[str, Any]) -> Any:
        muxer = fmt.muxer_options(outdir / r.name, segment_s=settings.segment_s, list_size=settings.live_window)
        playlist = str(outdir / r.name / LOCAL_PLAYLIST)
        if part_fds is None or r.name not in part_fds:
            return ffmpeg.output(*streams, playlist, **muxer, **options)
        frame_s = signalling.AAC_FRAME_SAMPLES / signalling.AUDIO_SAMPLE_RATE if r.audio_only else 1 / plan.fps
        target = tee_target([(muxer, playlist), (parts_muxer_options(settings, frame_s),
                                                 f"pipe:{part_fds[r.name]}")])
        # The tee muxer cannot tell the encoders what its muxers need: the mp4 ones need global headers.
        return ffmpeg.output(*streams, target, f="tee", flags="+global_header", **options)

    outputs = []
    audio = plan.audio_rendition
    if audio is not None and plan.has_audio:
        outputs.append(output([source_node.audio], audio, audio_options()))
    video = plan.video_renditions
    if not video:
        (only,) = outputs
        return only
    split = source_node.video.filter_multi_output("split", len(video) + 1)
    muxed_audio = plan.has_audio and audio is None
    for index, r in enumerate(video):
        scaled = split.stream(index).filter("scale", r.width, r.height)
        streams = [scaled, source_node.audio] if muxed_audio else [scaled]
        outputs.append(output(streams, r, {**video_options(r, plan, settings),
                                           **(audio_options() if muxed_audio else {})}))
    top = video[0]
    thumb_height = min(THUMBNAIL_HEIGHT, top.height)
    thumb_width = max(2, round(top.width * thumb_height / top.height / 2) * 2)
    thumbs = (split.stream(len(video))
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
    """Where a transcoder's output goes: the packaging seam (`publisher.Publisher`)."""

    def generation_started(self) -> None:
        """A new ffmpeg process begins: its first segments follow a discontinuity."""

    def segment_ready(self, segment: EncodedSegment) -> None:
        """A finished segment, complete on disk; the sink owns (and removes) its file from now on."""

    def thumbnail_ready(self, path: Path) -> None: ...

    def part_ready(self, rendition: str, init: bytes, fragment: Fragment, origin_s: float) -> None:
        """An LL-HLS part of `rendition` (CMAF header `init`), its media time 0 at wall clock `origin_s`."""


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
    headers: dict[str, dict[int, isobmff.TrackHeader]] = field(default_factory=dict)
    listed_end: dict[str, int] = field(default_factory=dict)  # MPEG-TS: end of the listed media, 1/90000 s
    base_ts: int | None = None
    origin_s: float | None = None  # wall clock of the run's media time 0
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
        pipes = {r.name: os.pipe() for r in self.plan.renditions} if self.settings.parts else {}
        part_fds = {name: write for name, (_, write) in pipes.items()} if pipes else None
        args = command(build_graph(self.plan, outdir, self.settings, input_options=writer.input_options,
                                   part_fds=part_fds), self.ffmpeg_bin)
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, pass_fds=tuple(part_fds.values()) if part_fds else ())
        finally:
            for _, write in pipes.values():
                os.close(write)  # ffmpeg holds its copies: the reader sees the end when ffmpeg exits
        gen = _Run(index, outdir, proc, writer)
        self._gen = gen
        self.sink.generation_started()
        log.info("ffmpeg generation %d started (pid %d, %d renditions)", index, proc.pid, len(self.plan.renditions))
        self._spawn(self._watch(gen))
        self._spawn(self._log_stderr(gen))
        for name, (read, _) in pipes.items():
            self._spawn(self._read_parts(gen, name, read))

    async def _read_parts(self, gen: _Run, rendition: str, fd: int) -> None:
        """Cut one rendition's fragmented MP4 pipe into parts for the sink, as the bytes arrive."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 22)
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
            cutter = FragmentCutter()
            try:
                while data := await reader.read(1 << 16):
                    for fragment in cutter.feed(data):
                        assert cutter.init is not None
                        origin = gen.origin_s if gen.origin_s is not None else time.time()
                        self.sink.part_ready(rendition, cutter.init, fragment, origin)
            except isobmff.BoxError as exc:
                log.warning("ffmpeg generation %d: LL parts of %s stopped: %s", gen.index, rendition, exc)
            finally:
                transport.close()

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
            clock = self.plan.clock
            gen.origin_s = clock.wall(unit.dts_ms) if clock is not None else time.time()
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
            playlist = gen.outdir / r.name / LOCAL_PLAYLIST
            try:
                # ffmpeg rewrites a playlist once per segment: between rewrites a stat is all a scan costs.
                stat = playlist.stat()
                version = (stat.st_mtime_ns, stat.st_size)
                if gen.playlist_versions.get(r.name) == version:
                    continue
                gen.playlist_versions[r.name] = version
                text = playlist.read_text()
            except FileNotFoundError:
                continue
            # Count by media sequence number (RFC 8216bis §6.2.1), not list positions: ffmpeg's own window slides.
            first = hls.media_sequence(text)
            done = gen.emitted.get(r.name, 0)
            for number, listed in enumerate(hls.parse_media_playlist(text), start=first):
                if number < done:
                    continue
                segment = self._encoded(gen, r, gen.outdir / r.name / listed.uri, listed.duration)
                if segment is None:
                    break  # not readable yet: the next scan tries again
                self.sink.segment_ready(segment)
                done = number + 1
            gen.emitted[r.name] = done
        with os.scandir(gen.outdir / THUMBS_DIR) as entries:
            new = sorted(e.name for e in entries if e.name.endswith(".jpg") and e.name not in gen.thumbs)
        for name in new:
            gen.thumbs.add(name)
            self.sink.thumbnail_ready(gen.outdir / THUMBS_DIR / name)

    def _encoded(self, gen: _Run, r: Rendition, path: Path, listed_s: float) -> EncodedSegment | None:
        """The segment at `path` with its media times; None if its data cannot be read (yet)."""
        origin = gen.origin_s if gen.origin_s is not None else time.time()
        if not self.settings.segment_format.has_init:
            # MPEG-TS: the times ffmpeg listed, on the 90 kHz clock of MPEG-2 systems (ISO/IEC 13818-1 §2.4.2).
            start = gen.listed_end.get(r.name, 0)
            duration = round(listed_s * 90000)
            gen.listed_end[r.name] = start + duration
            return EncodedSegment(r.name, path, start, duration, 90000, origin)
        init = gen.outdir / r.name / LOCAL_INIT
        try:
            header = gen.headers.get(r.name)
            if header is None:
                header = gen.headers[r.name] = isobmff.read_header(init.read_bytes())
            times = isobmff.read_fragment_times(path, header)
        except (FileNotFoundError, isobmff.BoxError) as exc:
            log.warning("ffmpeg generation %d: cannot read %s yet: %s", gen.index, path.name, exc)
            return None
        return EncodedSegment(r.name, path, times.base_media_decode_time, times.duration,
                              header[times.track_id].timescale, origin, init)

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
