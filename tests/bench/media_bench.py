"""Media pipeline benchmark: `main()` prints one JSON object (ratios and timings) for `make bench`.

Runs everything in this process and its ffmpeg children, on short synthetic clips, so it finishes in a
few minutes on a 2-core machine. Store and S3 are the in-memory fakes of the media unit tests: the
figures are for our code and ffmpeg, not for a network hop to S3 or a CDN.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for extra in ("media_tasks", "layers/shared/python", "tests/unit/media"):
    if str(REPO / extra) not in sys.path:
        sys.path.insert(0, str(REPO / extra))

from media_support import (  # noqa: E402  (needs the paths above)
    STREAM_ID,
    MemoryObjectStore,
    make_config,
    running_harness,
    wait_for,
)
from streamforge_media import hls  # noqa: E402
from streamforge_media.ladder import DEFAULT_LADDER, select_renditions  # noqa: E402
from streamforge_media.pipeline import (  # noqa: E402
    EncoderSettings,
    TranscodePlan,
    audio_options,
    build_graph,
    command,
    prepare_dirs,
    video_options,
)
from streamforge_media.rtmp.server import RtmpLimits  # noqa: E402

CLIP_S = 10


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_timed(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) of one child process."""
    cpu, wall = children_cpu(), time.monotonic()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - wall, children_cpu() - cpu


def make_source(path: Path, size: str, seconds: int) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=44100", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-b:v", "4000k", "-c:a", "aac", "-f", "flv",
                    str(path)], check=True)


def reference_command(plan: TranscodePlan, source: Path, outdir: Path, settings: EncoderSettings) -> list[str]:
    """The same ladder written by hand as one filter_complex, for comparison with the ffmpeg-python graph."""
    n = len(plan.renditions)
    labels = "".join(f"[v{i}]" for i in range(n + 1))
    chains = [f"[0:v]split={n + 1}{labels}"]
    chains += [f"[v{i}]scale={r.width}:{r.height}[o{i}]" for i, r in enumerate(plan.renditions)]
    top = plan.renditions[0]
    thumb_h = min(360, top.height)
    thumb_w = round(top.width * thumb_h / top.height / 2) * 2
    chains.append(f"[v{n}]fps=1/{settings.thumbnail_interval_s:g},scale={thumb_w}:{thumb_h}[thumb]")
    args = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-i", str(source),
            "-filter_complex", ";".join(chains)]
    for i, r in enumerate(plan.renditions):
        args += ["-map", f"[o{i}]", "-map", "0:a"]
        for name, value in {**video_options(r, plan, settings), **audio_options()}.items():
            args += [f"-{name}", str(value)]
        args += ["-f", "hls", "-hls_time", "2", "-hls_list_size", "30", "-start_number", "0",
                 "-hls_segment_filename", str(outdir / r.name / "seg_%06d.ts"), str(outdir / r.name / "index.m3u8")]
    return [*args, "-map", "[thumb]", "-f", "image2", "-q:v", "5", str(outdir / "thumbs" / "%06d.jpg")]


def per_rendition_commands(plan: TranscodePlan, source: Path, outdir: Path,
                           settings: EncoderSettings) -> list[list[str]]:
    commands = []
    for r in plan.renditions:
        single = TranscodePlan((r,), plan.fps, plan.has_audio)
        sub = outdir / r.name
        prepare_dirs(single, sub)
        commands.append(command(build_graph(single, sub, settings, source=str(source), input_options={})))
    return commands


def transcode_figures(work: Path) -> dict[str, Any]:
    source = work / "src720.flv"
    make_source(source, "1280x720", CLIP_S)
    settings = EncoderSettings()
    plan = TranscodePlan(tuple(select_renditions(DEFAULT_LADDER, 1280, 720)), 30.0, True)
    graph_out, ref_out, per_out = work / "graph", work / "ref", work / "per"
    for outdir in (graph_out, ref_out):
        prepare_dirs(plan, outdir)
    graph_cmd = command(build_graph(plan, graph_out, settings, source=str(source), input_options={}))
    ref_cmd = reference_command(plan, source, ref_out, settings)
    graph_runs, ref_runs = [], []
    for _ in range(2):  # interleaved, best of two: the machine is shared
        graph_runs.append(run_timed(graph_cmd))
        ref_runs.append(run_timed(ref_cmd))
    graph_wall, graph_cpu = min(graph_runs)
    ref_wall, _ = min(ref_runs)
    per_cpu = 0.0
    per_wall = time.monotonic()
    for args in per_rendition_commands(plan, source, per_out, settings):
        per_cpu += run_timed(args)[1]
    per_wall = time.monotonic() - per_wall
    return {
        "transcode_ladder": [r.name for r in plan.renditions],
        "transcode_clip_s": CLIP_S,
        "graph_wall_s": round(graph_wall, 2),
        "graph_cpu_s": round(graph_cpu, 2),
        "graph_speed_x_realtime": round(CLIP_S / graph_wall, 2),
        "reference_wall_s": round(ref_wall, 2),
        "graph_vs_reference_throughput_ratio": round(ref_wall / graph_wall, 3),
        "per_rendition_cpu_s": round(per_cpu, 2),
        "per_rendition_wall_s": round(per_wall, 2),
        "per_rendition_vs_graph_cpu_ratio": round(per_cpu / graph_cpu, 3),
        "graph_cpu_per_media_s": graph_cpu / CLIP_S,
    }


async def publish_copy(url: str, source: Path, seconds: float) -> asyncio.subprocess.Process:
    """A cheap publisher: a pre-encoded clip sent in real time without re-encoding."""
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(source),
        "-t", str(seconds), "-c", "copy", "-f", "flv", url, stdout=asyncio.subprocess.DEVNULL)


async def ttfp_and_latency(work: Path, source: Path, runs: int = 5) -> dict[str, Any]:
    ttfp: list[float] = []
    latencies: list[float] = []
    for run in range(runs):
        store = TimedStore()
        config = make_config(work / f"ttfp{run}", ladder=DEFAULT_LADDER, reconnect_grace_s=0)
        async with running_harness(config, objects=store) as h:
            started = time.monotonic()
            proc = await publish_copy(h.url(), source, 9)
            names = [r.name for r in select_renditions(DEFAULT_LADDER, 1280, 720)]

            def playable(store: TimedStore = store, names: list[str] = names) -> bool:
                keys = store.keys(f"live/{STREAM_ID}/")
                return f"live/{STREAM_ID}/master.m3u8" in keys and all(
                    any(k.startswith(f"live/{STREAM_ID}/{n}/ses_") for k in keys) for n in names)

            await wait_for(playable, 15, interval_s=0.01)
            ttfp.append(time.monotonic() - started)
            await proc.wait()
            # A frame at stream time t left the publisher (-re) no earlier than started + t; it became
            # fetchable when a playlist first named its segment. Per segment the median frame is the
            # midpoint. Conservative: the publisher's own start-up counts as latency.
            offset = 0.0
            for name in sorted(n for n in store.listed if n.split("/")[0] == names[0]):
                listed_at, duration = store.listed[name]
                latencies.append(listed_at - (started + offset + duration / 2))
                offset += duration
    return {"time_to_first_playable_s_median": round(statistics.median(ttfp), 2),
            "time_to_first_playable_s_runs": [round(t, 2) for t in ttfp],
            "frame_to_playlist_latency_s_median": round(statistics.median(latencies), 2) if latencies else None}


class TimedStore(MemoryObjectStore):
    """Records when each segment was first named by a stored playlist, with its duration."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: dict[str, tuple[float, float]] = {}

    def put_object(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        super().put_object(key, body, content_type=content_type, cache_control=cache_control)
        if key.startswith("live/") and key.endswith("index.m3u8"):
            now = time.monotonic()
            rendition = key.split("/")[2]
            for segment in hls.parse_media_playlist(body.decode()):
                self.listed.setdefault(f"{rendition}/{segment.uri}", (now, segment.duration))


async def ingest_cpu(work: Path, source: Path, seconds: float = 10) -> float:
    """Our process's CPU per second of media for RTMP ingest alone (pipeline replaced by a sink)."""

    class NullPipeline:
        def __init__(self, *_: Any) -> None: ...

        async def start(self) -> None: ...

        async def feed(self, type_id: int, timestamp: int, payload: bytes) -> None: ...

        async def close(self, timeout_s: float = 10.0) -> None: ...

    config = make_config(work / "ingest", reconnect_grace_s=0)
    async with running_harness(config, pipeline_factory=NullPipeline) as h:
        proc = await publish_copy(h.url(), source, seconds)
        before = self_cpu()
        await proc.wait()
        used = self_cpu() - before
    return used / seconds


async def concurrent_publishers(work: Path, source: Path, seconds: float = 20) -> dict[str, Any]:
    """How many 640x360 publishers keep real time: each stream's stored media >= its publish time - 4 s."""
    held = 0
    results = {}
    for count in (2, 3, 4):
        config = make_config(work / f"conc{count}", ladder=DEFAULT_LADDER, reconnect_grace_s=0,
                             limits=RtmpLimits(max_connections_per_ip=64))
        async with running_harness(config) as h:
            for i in range(1, count):
                h.store.add_stream(f"st_{i:016d}", f"sk_{i:043d}")
            urls = [h.url()] + [h.url(f"sk_{i:043d}") for i in range(1, count)]
            ids = [STREAM_ID] + [f"st_{i:016d}" for i in range(1, count)]
            procs = [await publish_copy(url, source, seconds) for url in urls]
            await asyncio.gather(*(p.wait() for p in procs))
            await asyncio.sleep(1.0)  # one segment's grace after the publishers stop
            stored = [len(h.objects.keys(f"live/{sid}/360p/ses_")) * 2 for sid in ids]
        ok = all(s >= seconds - 4 for s in stored)
        results[str(count)] = {"media_s_per_stream": stored, "real_time": ok}
        if not ok:
            break
        held = count
    return {"concurrent_640x360_publishers_held": held, "concurrent_test_s": seconds, "concurrent_detail": results}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        work = Path(tmp)
        figures = transcode_figures(work)
        src720 = work / "src720.flv"
        src360 = work / "src360.flv"
        make_source(src360, "640x360", 10)
        figures.update(asyncio.run(ttfp_and_latency(work, src720)))
        ingest = asyncio.run(ingest_cpu(work, src720))
        figures["ingest_cpu_per_media_s"] = round(ingest, 4)
        figures["ingest_vs_transcoder_cpu_ratio"] = round(ingest / figures.pop("graph_cpu_per_media_s"), 4)
        figures.update(asyncio.run(concurrent_publishers(work, src360)))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
