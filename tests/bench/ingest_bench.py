"""Ingest benchmark (issue 12): the media task's CPU per stream for WHIP and SRT against RTMP, with the same
source, and WHIP's publish-to-first-playable (from starting the publisher to a master playlist and a first
segment stored).

Each protocol gets a fresh media task in its own process (`ingest_task`: real session manager, transcoder and
packager, in-memory store and S3, the default ladder), so its CPU (own + the transcoder's) is the stream's and
nothing else's. The publishers are separate processes sending the same pre-encoded video (640x360 H.264
Constrained Baseline, 30 fps, GOP 2 s, 1.5 Mb/s) without re-encoding: ffmpeg `-c copy` over RTMP (FLV, AAC audio)
and SRT (MPEG-TS, AAC), and an aiortc client over WHIP (Opus audio: WebRTC has no AAC). Runs alternate protocols, three
rounds, medians reported.
"""

from __future__ import annotations

import json
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
from media_support import STREAM_ID, STREAM_KEY  # noqa: E402

CLIP_S = 12
ROUNDS = 3
PROTOCOLS = ("rtmp", "whip", "srt")


def _sources(scratch: Path) -> dict[str, Path]:
    """One encode, three containers with the same video bitstream: Matroska with AAC (RTMP: FLV needs the
    AudioSpecificConfig in the header, which a TS source only yields after its first packet), MPEG-TS with AAC
    (SRT) and MPEG-TS with Opus (WHIP)."""
    master = scratch / "master.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000", "-t", str(CLIP_S), "-c:v", "libx264",
                    "-profile:v", "baseline", "-bf", "0", "-g", "60", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-b:v", "1500k", "-c:a", "aac", "-ar", "48000", str(master)], check=True)
    aac_ts, opus_ts = scratch / "aac.ts", scratch / "opus.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(master), "-c", "copy", "-f", "mpegts", str(aac_ts)],
                   check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(master), "-c:v", "copy", "-c:a", "libopus",
                    "-f", "mpegts", str(opus_ts)], check=True)
    return {"rtmp": master, "srt": aac_ts, "whip": opus_ts}


def _publisher(protocol: str, ports: dict[str, int], source: Path) -> list[str]:
    if protocol == "whip":
        return [sys.executable, "-m", "tests.support.whip", f"http://127.0.0.1:{ports['whip']}/whip/{STREAM_ID}",
                STREAM_KEY, str(source)]
    url = (f"rtmp://127.0.0.1:{ports['rtmp']}/live/{STREAM_KEY}" if protocol == "rtmp" else
           f"srt://127.0.0.1:{ports['srt']}?streamid=#!::r=live/{STREAM_KEY},m=publish")
    return ["ffmpeg", "-v", "error", "-re", "-i", str(source), "-c", "copy", "-f",
            "flv" if protocol == "rtmp" else "mpegts", url]


def run_once(protocol: str, source: Path) -> dict[str, float]:
    task = subprocess.Popen([sys.executable, "-m", "tests.bench.ingest_task"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert task.stdout is not None
    ports = json.loads(task.stdout.readline())
    started = time.monotonic()
    # ffmpeg's RTMP client may report a broken pipe while writing its trailer after the server closed on
    # deleteStream; what counts is that the stream became playable and ended.
    publisher = subprocess.run(_publisher(protocol, ports, source), cwd=REPO, capture_output=True, timeout=120)
    result = json.loads(task.stdout.readline())
    task.wait(timeout=60)
    assert result["first_playable_at"] is not None, f"{protocol}: never playable; {publisher.stderr[-300:]!r}"
    return {"cpu_per_stream_cores": result["cpu_s"] / CLIP_S,
            "first_playable_s": result["first_playable_at"] - started}


def figures() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        sources = _sources(Path(scratch))
        runs: dict[str, list[dict[str, float]]] = {p: [] for p in PROTOCOLS}
        for _ in range(ROUNDS):
            for protocol in PROTOCOLS:
                runs[protocol].append(run_once(protocol, sources[protocol]))
    result: dict[str, Any] = {"ingest_clip_s": CLIP_S, "ingest_rounds": ROUNDS}
    for protocol in PROTOCOLS:
        cpu = [r["cpu_per_stream_cores"] for r in runs[protocol]]
        result[f"{protocol}_cpu_per_stream_cores"] = round(statistics.median(cpu), 3)
        result[f"{protocol}_cpu_per_stream_runs"] = [round(v, 3) for v in cpu]
        playable = [r["first_playable_s"] for r in runs[protocol]]
        result[f"{protocol}_first_playable_s"] = round(statistics.median(playable), 2)
    for protocol in ("whip", "srt"):
        result[f"{protocol}_vs_rtmp_cpu_ratio"] = round(
            result[f"{protocol}_cpu_per_stream_cores"] / result["rtmp_cpu_per_stream_cores"], 3)
    return result


if __name__ == "__main__":
    print(json.dumps(figures(), indent=2))
