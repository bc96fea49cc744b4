"""Media pipeline benchmark: transcode throughput against references, and ingest CPU, for `make bench`.

The transcode figures are for the default segment format (CMAF: video rungs without audio, the audio encoded
once as its own rendition), plus the CPU of that ladder against the MPEG-TS ladder (audio encoded once per
rung), both measured in the same run.

Runs in this process and its ffmpeg children, on short synthetic clips. Store and S3 are the in-memory
fakes of the media unit tests: these figures are for our code and ffmpeg. Time to first playable,
frame-to-CDN latency and concurrency go through the real local platform (`platform_bench`).
`figures()` returns the figures; `main()` prints them as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
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
    make_config,
    running_harness,
)
from streamforge_media.ladder import AUDIO_ONLY, DEFAULT_LADDER, select_renditions  # noqa: E402
from streamforge_media.media import Codec, Track  # noqa: E402
from streamforge_media.segment_format import CMAF, TS  # noqa: E402
from streamforge_media.session import ffmpeg_transcoder_factory  # noqa: E402
from streamforge_media.tracks import Generation  # noqa: E402
from streamforge_media.transcode.pipeline import (  # noqa: E402
    EncoderSettings,
    TranscodePlan,
    audio_options,
    build_graph,
    command,
    prepare_dirs,
    video_options,
)

from tests.support.media import aac_encoders  # noqa: E402

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
    """The same CMAF ladder written by hand as one filter_complex, for comparison with the ffmpeg-python graph:
    the audio encoded once into its own fMP4 rendition, then the video rungs without audio, then thumbnails."""
    video = plan.video_renditions
    n = len(video)
    labels = "".join(f"[v{i}]" for i in range(n + 1))
    chains = [f"[0:v]split={n + 1}{labels}"]
    chains += [f"[v{i}]scale={r.width}:{r.height}[o{i}]" for i, r in enumerate(video)]
    top = video[0]
    thumb_h = min(360, top.height)
    thumb_w = round(top.width * thumb_h / top.height / 2) * 2
    chains.append(f"[v{n}]fps=1/{settings.thumbnail_interval_s:g},scale={thumb_w}:{thumb_h}[thumb]")
    args = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-i", str(source),
            "-filter_complex", ";".join(chains)]

    def hls(name: str) -> list[str]:
        return ["-f", "hls", "-hls_time", "2", "-hls_list_size", "30", "-start_number", "0",
                "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
                "-hls_segment_filename", str(outdir / name / "seg_%06d.m4s"), str(outdir / name / "index.m3u8")]

    audio = plan.audio_rendition
    assert audio is not None, "a CMAF plan of a source with audio has an audio rendition"
    args += ["-map", "0:a"]
    for name, value in audio_options().items():
        args += [f"-{name}", str(value)]
    args += hls(audio.name)
    for i, r in enumerate(video):
        args += ["-map", f"[o{i}]"]
        for name, value in video_options(r, plan, settings).items():
            args += [f"-{name}", str(value)]
        args += hls(r.name)
    return [*args, "-map", "[thumb]", "-f", "image2", "-q:v", "5", str(outdir / "thumbs" / "%06d.jpg")]


def per_rendition_commands(plan: TranscodePlan, source: Path, outdir: Path,
                           settings: EncoderSettings) -> list[list[str]]:
    """One ffmpeg per rendition of `plan`, writing the same outputs: with an audio rendition, the video rungs
    leave the audio alone (it is encoded once, by the audio rendition's own ffmpeg)."""
    commands = []
    for r in plan.renditions:
        alone = plan.audio_rendition is not None and not r.audio_only
        single = TranscodePlan((r,), dataclasses.replace(plan.source, audio=None) if alone else plan.source)
        sub = outdir / r.name
        prepare_dirs(single, sub)
        commands.append(command(build_graph(single, sub, settings, source=str(source), input_options={})))
    return commands


def _outputs(args: list[str]) -> list[dict[str, str]]:
    """A compiled ffmpeg command, normalised per output: its options, each `-map` of a filter label replaced
    by the chain of filters behind it (labels are arbitrary), numbers compared as numbers."""
    chains: dict[str, list[str]] = {}
    for chain in args[args.index("-filter_complex") + 1].split(";"):
        match = re.fullmatch(r"((?:\[[^]]+\])+)([^[]+)((?:\[[^]]+\])+)", chain)
        assert match, chain
        source = re.findall(r"\[[^]]+\]", match[1])[0]
        for label in re.findall(r"\[[^]]+\]", match[3]):
            chains[label] = [*chains.get(source, [source]), *match[2].split(",")]
    outputs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    rest = args[args.index("-filter_complex") + 2:]
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            outputs.append({**current, "output": Path(arg).name})
            current = {}
            continue
        value = rest.pop(0)
        if arg == "-map":
            arg = f"-map #{sum(k.startswith('-map') for k in current)}"
            value = "+".join(chains.get(value, [value]))
        with contextlib.suppress(ValueError):
            value = f"{float(value):g}"
        current[arg] = value
    return outputs


# Options the generated graph states that the reference leaves at ffmpeg's default (same behaviour).
_DEFAULTS_STATED = {("-atomic_writing", "1")}


def command_differences(graph_cmd: list[str], ref_cmd: list[str]) -> list[str]:
    """Where the pipeline's graph differs from the hand-written reference, apart from output paths."""
    graph_outputs, ref_outputs = _outputs(graph_cmd), _outputs(ref_cmd)
    if len(graph_outputs) != len(ref_outputs):
        return [f"{len(graph_outputs)} outputs against {len(ref_outputs)}"]
    differences = []
    for graph_out, ref_out in zip(graph_outputs, ref_outputs, strict=True):
        for key in sorted(set(graph_out) | set(ref_out)):
            if key in ("output", "-hls_segment_filename"):
                continue
            mine, theirs = graph_out.get(key), ref_out.get(key)
            if mine != theirs and (key, mine) not in _DEFAULTS_STATED:
                differences.append(f"{graph_out['output']}: {key} {mine} vs {theirs}")
    return differences


def transcode_figures(work: Path, pairs: int = 5) -> dict[str, Any]:
    """`pairs` rounds, each running the CMAF graph, the hand-written CMAF reference and the MPEG-TS graph back
    to back (the order rotating per round); ratios are taken per round, then the median."""
    source = work / "src720.flv"
    make_source(source, "1280x720", CLIP_S)
    settings = EncoderSettings(segment_format=CMAF)
    ts_settings = EncoderSettings(segment_format=TS)
    source_tracks = Generation(Track(Codec.H264, width=1280, height=720), Track(Codec.AAC), 30.0)
    rungs = tuple(select_renditions(DEFAULT_LADDER, 1280, 720))
    plan = TranscodePlan((*rungs, AUDIO_ONLY), source_tracks)  # as session.plan_for makes it for CMAF
    ts_plan = TranscodePlan(rungs, source_tracks)  # audio muxed into every rung
    graph_out, ref_out, ts_out, per_out = work / "graph", work / "ref", work / "ts", work / "per"
    for outdir in (graph_out, ref_out):
        prepare_dirs(plan, outdir)
    prepare_dirs(ts_plan, ts_out)
    graph_cmd = command(build_graph(plan, graph_out, settings, source=str(source), input_options={}))
    ref_cmd = reference_command(plan, source, ref_out, settings)
    ts_cmd = command(build_graph(ts_plan, ts_out, ts_settings, source=str(source), input_options={}))
    graph_runs: list[tuple[float, float]] = []
    ref_runs: list[tuple[float, float]] = []
    ts_runs: list[tuple[float, float]] = []
    rotation = [(graph_runs, graph_cmd), (ref_runs, ref_cmd), (ts_runs, ts_cmd)]
    for pair in range(pairs):  # rotating A,B,C / B,C,A / ...: the machine is shared, so drift hits all alike
        for runs, args in rotation[pair % 3:] + rotation[:pair % 3]:
            runs.append(run_timed(args))
    graph_wall = statistics.median(w for w, _ in graph_runs)
    graph_cpu = statistics.median(c for _, c in graph_runs)
    ref_wall = statistics.median(w for w, _ in ref_runs)
    ref_cpu = statistics.median(c for _, c in ref_runs)
    per_cpu = 0.0
    per_wall = time.monotonic()
    for args in per_rendition_commands(plan, source, per_out, settings):
        per_cpu += run_timed(args)[1]
    per_wall = time.monotonic() - per_wall
    return {
        "transcode_ladder": [r.name for r in plan.renditions],
        "transcode_clip_s": CLIP_S,
        "transcode_runs_each": pairs,
        "graph_wall_s_runs": [round(w, 2) for w, _ in graph_runs],
        "reference_wall_s_runs": [round(w, 2) for w, _ in ref_runs],
        "graph_wall_s": round(graph_wall, 2),
        "graph_cpu_s": round(graph_cpu, 2),
        "graph_speed_x_realtime": round(CLIP_S / graph_wall, 2),
        "reference_wall_s": round(ref_wall, 2),
        "reference_cpu_s": round(ref_cpu, 2),
        # Per pair, then the median: a pair ran back to back, so it saw the same load from other users.
        "graph_vs_reference_throughput_ratio": round(statistics.median(
            r[0] / g[0] for g, r in zip(graph_runs, ref_runs, strict=True)), 3),
        "graph_vs_reference_ratio_of_median_walls": round(ref_wall / graph_wall, 3),
        "graph_vs_reference_cpu_ratio": round(ref_cpu / graph_cpu, 3),
        "graph_vs_reference_command_differences": command_differences(graph_cmd, ref_cmd),
        "per_rendition_cpu_s": round(per_cpu, 2),
        "per_rendition_wall_s": round(per_wall, 2),
        "per_rendition_vs_graph_cpu_ratio": round(per_cpu / graph_cpu, 3),
        "transcode_segment_format": CMAF.name,
        "ts_ladder_cpu_s_runs": [round(c, 2) for _, c in ts_runs],
        "cmaf_ladder_cpu_s_runs": [round(c, 2) for _, c in graph_runs],
        "ts_ladder_cpu_s": round(statistics.median(c for _, c in ts_runs), 2),
        "ts_ladder_aac_encoders": aac_encoders(ts_cmd),
        "cmaf_ladder_aac_encoders": aac_encoders(graph_cmd),
        # Per round, then the median, as for the throughput ratio.
        "cmaf_vs_ts_ladder_cpu_ratio": round(statistics.median(
            g[1] / t[1] for g, t in zip(graph_runs, ts_runs, strict=True)), 3),
        "graph_cpu_per_media_s": graph_cpu / CLIP_S,
    }


async def publish_copy(url: str, source: Path, seconds: float) -> asyncio.subprocess.Process:
    """A cheap publisher: a pre-encoded clip sent in real time without re-encoding (not looped: `-stream_loop`
    with `-c copy` sends faster than real time at the loop points)."""
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(source),
        "-t", str(seconds), "-c", "copy", "-f", "flv", url, stdout=asyncio.subprocess.DEVNULL)


async def ingest_cpu(work: Path, source: Path, seconds: float = 10) -> float:
    """Our process's CPU per second of media for ingest: socket reads, chunk parsing, key check, tags to
    access units, timestamp normalising, track rules, the transcoder input writer and the writes to ffmpeg's
    stdin (the real `FfmpegPipeline`), with ffmpeg replaced by a process that discards its input, so nothing
    is transcoded or uploaded. The pipeline's idle segment watcher (a scan every 0.1 s finding nothing) is
    counted too, which overstates ingest slightly. Production intervals for key checks and health reports."""
    sink = work / "discard-stdin"
    sink.write_text("#!/bin/sh\nexec cat >/dev/null\n")
    sink.chmod(0o755)
    config = make_config(work / "ingest", reconnect_grace_s=0, key_poll_s=2.0, health_interval_s=10.0)
    async with running_harness(config, transcoder_factory=ffmpeg_transcoder_factory(config.encoder, str(sink))) as h:
        proc = await publish_copy(h.url(), source, seconds)
        before = self_cpu()
        await proc.wait()
        used = self_cpu() - before
    return used / seconds


def figures() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        work = Path(tmp)
        result = transcode_figures(work)
        source = work / "src720.flv"
        ingest_runs = [asyncio.run(ingest_cpu(work, source)) for _ in range(3)]
        source_kbps = source.stat().st_size * 8 / CLIP_S / 1000
    transcoder = result.pop("graph_cpu_per_media_s")
    ingest = statistics.median(ingest_runs)
    result["ingest_cpu_per_media_s_runs"] = [round(v, 4) for v in ingest_runs]
    result["ingest_cpu_per_media_s"] = round(ingest, 4)
    result["ingest_source_bitrate_kbps"] = round(source_kbps)
    result["transcoder_cpu_per_media_s"] = round(transcoder, 3)
    result["ingest_vs_transcoder_cpu_ratio"] = round(ingest / transcoder, 4)
    return result


def main() -> None:
    print(json.dumps(figures(), indent=2))


if __name__ == "__main__":
    main()
