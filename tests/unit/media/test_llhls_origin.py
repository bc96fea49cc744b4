"""The LL-HLS origin with a real ffmpeg publisher and the real transcoder: parts from the CMAF output, blocking
playlist reload (RFC 8216bis §6.2.5.2) over HTTP, and the 503 once the publisher has stopped."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from media_support import SEGMENT_FORMAT, STREAM_ID, have, make_config, running_harness, start_ffmpeg, wait_for
from streamforge_media.llorigin import LowLatencyOrigin

pytestmark = [pytest.mark.unit, pytest.mark.skipif(not have("ffmpeg"), reason="ffmpeg not installed"),
              pytest.mark.skipif(not SEGMENT_FORMAT.has_init, reason="LL-HLS parts are CMAF")]

RENDITION = "240p"


@asynccontextmanager
async def serving(origin: LowLatencyOrigin) -> AsyncIterator[str]:
    app = web.Application()
    origin.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/ll/{STREAM_ID}"
    finally:
        await runner.cleanup()


def last_position(playlist: str) -> tuple[int, int]:
    """(MSN, part index) of the playlist's last part."""
    lines = playlist.splitlines()
    msn = int(next(x for x in lines if x.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
    part = -1
    for line in lines:
        if line.startswith("#EXTINF:"):
            msn, part = msn + 1, -1
        elif line.startswith("#EXT-X-PART:"):
            part += 1
    return msn, part


def test_blocking_reload_follows_the_parts_and_gives_up_after_the_publisher_stops(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = make_config(tmp_path, reconnect_grace_s=30)  # the session outlives the publisher
        async with running_harness(config) as h, serving(h.manager.low_latency) as base, \
                aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            proc = await start_ffmpeg(h.url(), 9)
            playlist_url = f"{base}/{RENDITION}/index.m3u8"
            await wait_for(lambda: STREAM_ID in h.manager.low_latency.streams, 10)
            rendition = await wait_for(lambda: h.manager.low_latency.streams[STREAM_ID].renditions.get(RENDITION), 5)
            await wait_for(lambda: rendition.position is not None and rendition.position.msn >= 1, 15)
            async with http.get(f"{base}/master.m3u8") as response:
                assert response.status == 200
                assert f"{RENDITION}/index.m3u8" in await response.text()
            async with http.get(playlist_url) as response:
                text = await response.text()
            assert "CAN-BLOCK-RELOAD=YES" in text and "#EXT-X-PRELOAD-HINT:TYPE=PART" in text
            target = float(re.search(r"PART-TARGET=([\d.]+)", text)[1])  # type: ignore[index]
            durations = [float(d) for d in re.findall(r"#EXT-X-PART:DURATION=([\d.]+)", text)]
            assert durations and max(durations) <= target
            # Follow the stream part by part, as hls.js does: ask for the next one, which blocks until made.
            msn, part = last_position(text)
            delays, waits = [], []
            for _ in range(6):
                asked = loop.time()
                async with http.get(playlist_url, params={"_HLS_msn": str(msn), "_HLS_part": str(part + 1)}) as r:
                    assert r.status == 200
                    text = await r.text()
                answered = loop.time()
                msn, part = last_position(text)
                hint = int(re.search(r'PRELOAD-HINT:TYPE=PART,URI="p(\d+)\.m4s"', text)[1])  # type: ignore[index]
                produced = rendition.part(hint - 1)
                assert produced is not None
                delays.append(answered - produced.produced_at)
                waits.append(answered - asked)
            print(f"answer after the part was made: {[round(d * 1000) for d in delays]} ms; "
                  f"blocked for {[round(w * 1000) for w in waits]} ms")
            assert max(delays) <= 0.1
            assert max(waits) <= target + 0.1
            # A part named by the PRELOAD-HINT is held until it exists, then served as immutable.
            async with http.get(f"{base}/{RENDITION}/p{hint}.m4s") as r:
                assert r.status == 200 and r.headers["Cache-Control"].endswith("immutable")
                assert len(await r.read()) > 0
            async with http.get(playlist_url, params={"_HLS_msn": str(msn + 2)}) as r:
                assert r.status == 400
            # Init + a completed segment decode.
            async with http.get(playlist_url) as r:
                text = await r.text()
            init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)[1]  # type: ignore[index]
            segment = re.findall(r"^(s\d+\.m4s)$", text, re.M)[-1]
            body = b""
            for name in (init, segment):
                async with http.get(f"{base}/{RENDITION}/{name}") as r:
                    assert r.status == 200
                    body += await r.read()
            (tmp_path / "seg.mp4").write_bytes(body)
            frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                     "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                                     str(tmp_path / "seg.mp4")], capture_output=True, text=True, check=True)
            assert int(frames.stdout.strip()) == 60  # 2 s at 30 fps
            # The publisher stops; the session waits in its grace period: no part comes, the request gives up.
            assert await asyncio.wait_for(proc.wait(), 20) == 0
            for _ in range(10):  # the transcoder flushes its last parts first
                msn, part = last_position(text)
                asked = loop.time()
                async with http.get(playlist_url, params={"_HLS_msn": str(msn), "_HLS_part": str(part + 1)}) as r:
                    status, text = r.status, await r.text()
                if status == 503:
                    break
                assert status == 200
            gave_up = loop.time() - asked
            print(f"gave up after {gave_up:.2f} s")
            assert status == 503 and 3 * 2 - 0.1 <= gave_up <= 3 * 2 + 1.0
    asyncio.run(scenario())
