"""Glass-to-glass latency in the browser, LL-HLS against plain HLS, and what the pipeline adds to a part, for
`make bench` (issue 11).

One publisher (ffmpeg, 640x360p30, x264 ultrafast zerolatency) burns its wall clock into every frame as a block
code; the real local platform (media task, moto S3, local CDN with its `ll/` proxy) serves it; headless
Chromium plays it on the dashboard's watch page twice at once, one window in "Low latency" (LL-HLS, hls.js
`lowLatencyMode`) and one in "Standard" (the plain playlists, hls.js with `liveSyncDurationCount: 3`). Each
page reads the code back from the playing `<video>` through a canvas at every presented frame
(`requestVideoFrameCallback`) and compares it with `Date.now()`: the same host clock on both sides.

What the pipeline adds to a part (issue 11, item 5) is timed in-process: a media task with its real RTMP server
and ffmpeg, whose transcoder and sink are wrapped to note when each frame reached ffmpeg and when the part
holding it was cut from the pipe. The origin's own share (the part made to the blocking answer sent) is the
integration test's, tests/integration/media/test_llhls_blocking.py.

`figures()` returns the figures; `main()` prints them as JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.http import call
from tests.support.platform import PlatformThread, start_platform
from tests.support.publishers import start_ffmpeg
from tests.support.users import sign_up_and_log_in

REPO = Path(__file__).resolve().parents[2]
for extra in ("media_tasks", "layers/shared/python", "tests/unit/media"):  # as the other benches: outside pytest
    if str(REPO / extra) not in sys.path:
        sys.path.insert(0, str(REPO / extra))
from media_support import make_config, running_harness  # noqa: E402
from streamforge_media.ladder import DEFAULT_LADDER  # noqa: E402
from streamforge_media.media import AccessUnit, MediaKind  # noqa: E402
from streamforge_media.packaging.llhls import Fragment  # noqa: E402
from streamforge_media.packaging.timeline import EncodedSegment  # noqa: E402
from streamforge_media.session import Transcoder, ffmpeg_transcoder_factory  # noqa: E402
from streamforge_media.transcode.pipeline import EncoderSettings, SegmentSink, TranscodePlan  # noqa: E402

WIDTH, HEIGHT = 640, 360
COLUMNS, ROWS = 13, 2
BLOCK_W, BLOCK_H = WIDTH // COLUMNS, HEIGHT // 9
"""One block of the code, in source pixels (49x40): at the 160p rung still 12x17 pixels, of which the reader
samples the middle half."""
CODE_BITS = 24
"""The Gray code of the wall clock in ms mod 2**24 (4.7 h, resolved against the reader's clock)."""
WHITE_SLOT = CODE_BITS
"""A reference block, always white; the slot after it stays black. Their contrast tells a readable frame."""
WATCH_S = 60
PUBLISH_S = WATCH_S + 60
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


def block(slot: int) -> tuple[int, int]:
    """Top-left corner (source pixels) of code slot `slot`: bits left to right, two rows."""
    return (slot % COLUMNS) * BLOCK_W, (slot // COLUMNS) * BLOCK_H


def code_filter() -> str:
    """drawbox filters writing the code: a black strip, a white block for each 1 bit of the Gray code of
    `floor(time(0) * 1000) mod 2**24` (libavutil's wall clock when the frame passes the publisher's filter
    graph, just before its encoder), and the two reference blocks.

    Each box evaluates the clock once, and a Gray code changes one bit per step, so boxes evaluated across a
    millisecond boundary still read as one of the two values.
    """
    boxes = [f"drawbox=x=0:y=0:w={COLUMNS * BLOCK_W}:h={ROWS * BLOCK_H}:color=black:t=fill"]
    for i in range(CODE_BITS):
        x, y = block(i)
        bit = f"mod(floor(st(0,mod(floor(time(0)*1000),{1 << CODE_BITS}))/pow(2,{i}))+floor(ld(0)/pow(2,{i + 1})),2)"
        boxes.append(f"drawbox=x={x}:y={y}:w={BLOCK_W}:h={BLOCK_H}:color=white:t=fill:enable='{bit}'")
    x, y = block(WHITE_SLOT)
    boxes.append(f"drawbox=x={x}:y={y}:w={BLOCK_W}:h={BLOCK_H}:color=white:t=fill")
    return ",".join(boxes)


def publisher(url: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([
        "ffmpeg", "-v", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds), "-vf", code_filter(),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-b:v", "1500k",
        "-c:a", "aac", "-b:a", "96k", "-f", "flv", url,
    ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# The page's reader, at every presented frame; installed before the page's scripts. A frame is unreadable when
# the reference blocks lack contrast or a bit's block sits near the threshold (within a quarter of the contrast).
READER = """(() => {
  const [COLUMNS, ROWS, BW, BH, W, H, BITS] = LAYOUT;
  const g2g = window.__g2g = { samples: [], heights: {} };
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const read = (video) => {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    const sx = w / W, sy = h / H;
    canvas.width = w; canvas.height = Math.ceil(ROWS * BH * sy);
    ctx.drawImage(video, 0, 0, w, h);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const lumas = [];
    for (let slot = 0; slot < COLUMNS * ROWS; slot++) {
      const x0 = Math.round(((slot % COLUMNS) + 0.25) * BW * sx);
      const x1 = Math.round(((slot % COLUMNS) + 0.75) * BW * sx);
      const y0 = Math.round((Math.floor(slot / COLUMNS) + 0.25) * BH * sy);
      const y1 = Math.round((Math.floor(slot / COLUMNS) + 0.75) * BH * sy);
      let sum = 0, n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
        const i = (y * canvas.width + x) * 4;
        sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]; n++;
      }
      lumas.push(n ? sum / n : 0);
    }
    const white = lumas[BITS], black = lumas[BITS + 1];
    if (white - black < 96) return null;
    const threshold = (white + black) / 2, margin = (white - black) / 4;
    let gray = 0;
    for (let i = 0; i < BITS; i++) {
      if (Math.abs(lumas[i] - threshold) < margin) return null;
      if (lumas[i] > threshold) gray |= 1 << i;
    }
    let value = gray;
    for (let shift = gray >> 1; shift; shift >>= 1) value ^= shift;
    const now = Date.now(), mod = 1 << BITS;
    return now - ((((now - value) % mod) + mod) % mod);
  };
  const attach = (video) => {
    const frame = () => {
      const shown = Date.now();
      const captured = read(video);
      g2g.samples.push([shown, captured === null ? null : shown - captured]);
      g2g.heights[video.videoHeight] = (g2g.heights[video.videoHeight] || 0) + 1;
      video.requestVideoFrameCallback(frame);
    };
    video.requestVideoFrameCallback(frame);
  };
  const find = setInterval(() => {
    const video = document.querySelector('#player');
    if (video) { clearInterval(find); attach(video); }
  }, 100);
})();""".replace("LAYOUT", json.dumps([COLUMNS, ROWS, BLOCK_W, BLOCK_H, WIDTH, HEIGHT, CODE_BITS]))


def summary(latencies_ms: list[float | None]) -> dict[str, Any]:
    read = sorted(v / 1000 for v in latencies_ms if v is not None)
    return {
        "frames": len(latencies_ms),
        "median_s": round(statistics.median(read), 2) if read else None,
        "p90_s": round(statistics.quantiles(read, n=10)[-1], 2) if len(read) > 1 else None,
        "min_s": round(read[0], 2) if read else None,
        "max_s": round(read[-1], 2) if read else None,
        "decode_failure_rate": round(1 - len(read) / len(latencies_ms), 4) if latencies_ms else None,
    }


def open_watch(browser: Browser, platform: PlatformThread, stream_id: str, mode: str) -> Page:
    page = browser.new_context().new_page()  # a window each: Chromium defers playback in a background tab
    page.add_init_script(f"localStorage.setItem('streamforge.latency_mode', '{mode}')")
    page.add_init_script(READER)
    page.goto(f"{platform.urls['dashboard']}/#/watch/{stream_id}")
    return page


class IngestClock:
    """When each video access unit reached the transcoder, and when each part left it (wall clock, s).

    Wraps the task's real transcoder and its sink: the pipeline is unchanged. Media times are ms from the
    generation's first video keyframe, where the pipeline's own run starts (`FfmpegPipeline.feed`)."""

    def __init__(self, settings: EncoderSettings) -> None:
        self.fed: dict[int, float] = {}
        self.parts: list[tuple[str, float, float]] = []  # (rendition, made at, media ms of its last frame)
        self._base: int | None = None
        self._inner = ffmpeg_transcoder_factory(settings, "ffmpeg")

    def factory(self, plan: TranscodePlan, workdir: Path, sink: SegmentSink) -> Transcoder:
        clock = self
        frame_ms = 1000 / plan.fps if plan.fps else 0.0

        class TimedSink:
            def generation_started(self) -> None:
                sink.generation_started()

            def segment_ready(self, segment: EncodedSegment) -> None:
                sink.segment_ready(segment)

            def thumbnail_ready(self, path: Path) -> None:
                sink.thumbnail_ready(path)

            def part_ready(self, rendition: str, init: bytes, fragment: Fragment, origin_s: float) -> None:
                end_ms = (fragment.start + fragment.duration) * 1000 / fragment.timescale
                clock.parts.append((rendition, time.time(), end_ms - frame_ms))
                sink.part_ready(rendition, init, fragment, origin_s)

        inner = self._inner(plan, workdir, TimedSink())

        class TimedTranscoder:
            async def start(self) -> None:
                await inner.start()

            async def feed(self, unit: AccessUnit) -> None:
                await inner.feed(unit)
                if unit.kind is MediaKind.VIDEO:
                    if clock._base is None and unit.keyframe:
                        clock._base = unit.dts_ms
                    if clock._base is not None:
                        clock.fed[unit.dts_ms - clock._base] = time.time()

            async def close(self, timeout_s: float = 10.0) -> None:
                await inner.close(timeout_s)

        return TimedTranscoder()

    def delays(self, rendition: str) -> list[float]:
        """Part made minus its last frame's arrival at the transcoder, s, for the video parts of `rendition`."""
        times = sorted(self.fed)
        out = []
        for name, made, last_ms in self.parts:
            nearest = min(times, key=lambda t: abs(t - last_ms), default=None)
            if name == rendition and nearest is not None and abs(nearest - last_ms) < 20:
                out.append(made - self.fed[nearest])
        return out


def ingest_to_part(seconds: float = 30) -> dict[str, Any]:
    """In-process media task (the media unit tests' harness, real RTMP server and ffmpeg, the default ladder
    and encoder settings) fed by a 640x360p30 ffmpeg publisher: how long after a frame reaches the transcoder
    the part holding it is cut, per rung."""
    async def run() -> dict[str, Any]:
        settings = EncoderSettings()
        clock = IngestClock(settings)
        with tempfile.TemporaryDirectory() as workdir:
            config = make_config(Path(workdir), ladder=DEFAULT_LADDER, encoder=settings)
            async with running_harness(config, transcoder_factory=clock.factory) as harness:
                proc = await start_ffmpeg(harness.url(), seconds, size=f"{WIDTH}x{HEIGHT}")
                await proc.wait()
        renditions = sorted({name for name, _, _ in clock.parts} - {"audio"})
        result: dict[str, Any] = {}
        for name in renditions:
            delays = clock.delays(name)[2:]  # the first parts include ffmpeg's start
            result[name] = {"parts": len(delays), "median_s": round(statistics.median(delays), 3),
                            "p90_s": round(statistics.quantiles(delays, n=10)[-1], 3)}
        return result
    return asyncio.run(run())


def watch(platform: PlatformThread) -> dict[str, Any]:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api, "g2g")
    stream = call("POST", f"{api}/v1/streams", {"title": "bench glass to glass"}, token=user.token).json
    source = publisher(f"{stream['ingest']['rtmp_url']}/{stream['ingest']['stream_key']}", PUBLISH_S)
    chromium = shutil.which("chromium")
    assert chromium is not None, "the latency bench needs Debian's chromium"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            pages = {mode: open_watch(browser, platform, stream["id"], mode) for mode in ("low", "standard")}
            for page in pages.values():
                page.wait_for_function("() => { const v = document.querySelector('#player'); "
                                       "return v && !v.paused && v.currentTime > 0.5; }", timeout=60_000)
            for page in pages.values():
                page.evaluate("() => { window.__g2g.samples = []; window.__g2g.heights = {}; }")
            started = time.monotonic()
            pages["low"].wait_for_timeout(WATCH_S * 1000)  # the measurement window itself
            measured_s = time.monotonic() - started
            results: dict[str, Any] = {}
            for mode, page in pages.items():
                g2g = page.evaluate("() => window.__g2g")
                player = page.evaluate("() => { const v = document.querySelector('#player'); return { engine: "
                                       "v.dataset.engine, stalls: Number(v.dataset.stalls || 0) }; }")
                results[mode] = {**summary([latency for _, latency in g2g["samples"]]),
                                 "rendition_heights": g2g["heights"], **player}
            browser.close()
    finally:
        source.kill()
        source.wait()
    return {"ll_hls": results["low"], "plain_hls": results["standard"], "measured_s": round(measured_s, 1)}


METHOD = (
    f"One ffmpeg publisher ({WIDTH}x{HEIGHT}p30, lavfi testsrc2, x264 ultrafast zerolatency, GOP 2 s) burns "
    f"libavutil's wall clock (ms mod 2^{CODE_BITS}) into every frame as the Gray code of {CODE_BITS} "
    f"black/white {BLOCK_W}x{BLOCK_H} blocks in two rows at the top, plus a white and a black reference block. "
    "Headless Chromium opens the dashboard's watch page twice at once, \"Low latency\" (LL-HLS from the media "
    "task through the local CDN, hls.js lowLatencyMode, PART-HOLD-BACK as the target) and \"Standard\" (the "
    "plain dvr playlists from S3 through the CDN, hls.js liveSyncDurationCount 3); at every presented frame "
    "(requestVideoFrameCallback) each page draws the <video> to a canvas, reads the blocks (mean luma of each "
    "block's middle half, scaled to the rendition's size) and notes Date.now() minus the decoded time. A frame "
    "whose references lack contrast or whose block sits near the threshold is a decode failure. Figures over "
    f"{WATCH_S} s once both play. ingest_to_part: the media task in-process (the media unit "
    "tests' harness, default ladder and encoder settings, a 640x360p30 publisher for 30 s) with its transcoder "
    "and sink wrapped: when each video frame was written to ffmpeg's stdin, and when the part holding it as its "
    "last frame was cut from the pipe; per video rung.")


def figures() -> dict[str, Any]:
    platform = start_platform(with_media=True, media_env={"STREAMFORGE_RECONNECT_GRACE_S": "0"})
    try:
        browser = watch(platform)
    finally:
        platform.stop()
    return {**browser, "ingest_to_part": ingest_to_part(), "method": METHOD}


def main() -> None:
    print(json.dumps(figures(), indent=2))


if __name__ == "__main__":
    main()
