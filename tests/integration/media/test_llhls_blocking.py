"""LL-HLS blocking playlist reload (RFC 8216bis §6.2.5.2) from the media task's own HTTP port, with a real ffmpeg
publisher, the real transcoder and the task's boto3 clients against a moto server.

Acceptance of issue 11: a blocking request for the next part is answered within PART-TARGET + 100 ms of the
part being produced (the part store's `Part.produced_at`, on the event loop's clock the client also reads),
and a blocking request gives up with 503 after about three target durations once the publisher has stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import boto3
import pytest
from streamforge.aws import client
from streamforge_media.app import MediaTask
from streamforge_media.packaging import llhls

from tests.integration.media.test_media_moto import (
    FORMAT,
    KEY,
    STREAM_ID,
    config,
    create_resources,
    item,
    moto_endpoint,  # noqa: F401 (a fixture)
)
from tests.support.publishers import ffmpeg_publish_args
from tests.support.wait import wait_for_async

pytestmark = [pytest.mark.skipif(not FORMAT.has_init, reason="LL-HLS parts are CMAF")]

RENDITION = "240p"
GRACE_S = 30
"""Longer than the 503 wait: the session outlives its publisher, so the LL stream stays open with no parts."""
FOLLOWED_PARTS = 8
SLACK_S = 0.1
"""The acceptance's 100 ms."""


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """The media task's boto3 clients are cached per process (streamforge.aws.client), and each test here has a
    moto server of its own: none may reach another test's, stopped, server."""
    client.cache_clear()
    yield
    client.cache_clear()


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


def preload_hint(playlist: str) -> int:
    """The part number the playlist's PRELOAD-HINT names."""
    return int(re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)\.m4s"', playlist)[1])  # type: ignore[index]


@pytest.mark.integration
def test_blocking_reload_answers_as_parts_are_made_and_gives_up_once_the_publisher_stops(
        moto_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    create_resources()
    boto3.client("dynamodb").update_item(
        TableName="Streams", Key={"stream_id": {"S": STREAM_ID}}, UpdateExpression="SET reconnect_grace_s = :g",
        ExpressionAttributeValues={":g": {"N": str(GRACE_S)}})
    # Ports of its own: this runs beside `make dev` and other tests.
    settings = dataclasses.replace(config(tmp_path), http_host="127.0.0.1", http_port=0, srt_port=-1)

    async def scenario() -> None:
        task = MediaTask.from_config(settings)
        await task.start()
        loop = asyncio.get_running_loop()
        proc = await asyncio.create_subprocess_exec(
            *ffmpeg_publish_args(f"rtmp://127.0.0.1:{task.server.port}/live/{KEY}", 12),
            stdout=asyncio.subprocess.DEVNULL)
        try:
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{task.http_port}/ll/{STREAM_ID}"
                playlist_url = f"{base}/{RENDITION}/index.m3u8"
                streams = task.manager.low_latency.streams
                await wait_for_async(lambda: STREAM_ID in streams and RENDITION in streams[STREAM_ID].renditions, 15,
                                     "the stream's LL renditions")
                rendition = streams[STREAM_ID].renditions[RENDITION]
                await wait_for_async(lambda: rendition.position is not None and rendition.position.msn >= 1, 15,
                                     "a second LL segment")
                # The lease names this task's LL origin, for other tasks to forward to.
                assert item("Streams", stream_id=STREAM_ID)["ingest_address"]["S"] == \
                    f"http://127.0.0.1:{task.http_port}"
                async with http.get(f"{base}/master.m3u8") as r:
                    assert r.status == 200 and f"{RENDITION}/index.m3u8" in await r.text()
                async with http.get(playlist_url) as r:
                    text = await r.text()
                target = float(re.search(r"PART-TARGET=([\d.]+)", text)[1])  # type: ignore[index]
                assert f"CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * target:.3f}" in text

                # Follow the stream part by part, as hls.js does: each request names the part after the
                # playlist's last, which the origin holds until that part (the previous PRELOAD-HINT) exists.
                delays: list[float] = []
                blocked = 0
                for _ in range(FOLLOWED_PARTS):
                    msn, part = last_position(text)
                    wanted = preload_hint(text)
                    asked = loop.time()
                    async with http.get(playlist_url, params={"_HLS_msn": str(msn), "_HLS_part": str(part + 1)}) \
                            as r:
                        assert r.status == 200
                        text = await r.text()
                    answered = loop.time()
                    produced = rendition.part(wanted)
                    assert produced is not None and f'URI="{llhls.part_name(wanted)}"' in text
                    blocked += asked < produced.produced_at
                    delays.append(answered - max(asked, produced.produced_at))
                print(f"answered {[round(d * 1000) for d in delays]} ms after the part was made; "
                      f"{blocked}/{FOLLOWED_PARTS} requests waited for their part")
                assert max(delays) <= target + SLACK_S
                # Parts come every ~PART-TARGET and a request is made within ms of the previous answer:
                # most must have found their part not yet made (else this measured nothing).
                assert blocked >= FOLLOWED_PARTS // 2

                # A part named by the PRELOAD-HINT is held until it exists, then served as immutable.
                async with http.get(f"{base}/{RENDITION}/{llhls.part_name(preload_hint(text))}") as r:
                    assert r.status == 200 and r.headers["Cache-Control"].endswith("immutable")
                    assert len(await r.read()) > 0
                msn, _ = last_position(text)
                async with http.get(playlist_url, params={"_HLS_msn": str(msn + 2)}) as r:
                    assert r.status == 400
                # The init segment and a completed segment decode to 2 s of video.
                init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)[1]  # type: ignore[index]
                segment = re.findall(r"^(s\d+\.m4s)$", text, re.M)[-1]
                body = b""
                for name in (init, segment):
                    async with http.get(f"{base}/{RENDITION}/{name}") as r:
                        assert r.status == 200
                        body += await r.read()
                (tmp_path / "segment.mp4").write_bytes(body)
                frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                                         str(tmp_path / "segment.mp4")], capture_output=True, text=True, check=True)
                assert int(frames.stdout.strip()) == 60  # 2 s at 30 fps

                # The publisher stops. Its connection is forgotten only after the transcoder has flushed its
                # last parts, and the session then waits in grace: no part can come any more.
                assert await asyncio.wait_for(proc.wait(), 30) == 0
                session = task.manager.streams[STREAM_ID]
                await wait_for_async(lambda: session.connection is None and session.connection_count == 1, 15,
                                     "the publisher's connection to end")
                await wait_for_async(lambda: item("Streams", stream_id=STREAM_ID)["status"]["S"] == "reconnecting", 10,
                                     "the stream to be reconnecting")
                async with http.get(playlist_url) as r:
                    text = await r.text()
                msn, part = last_position(text)
                made = rendition.next_part
                asked = loop.time()
                async with http.get(playlist_url, params={"_HLS_msn": str(msn), "_HLS_part": str(part + 1)}) as r:
                    status = r.status
                gave_up = loop.time() - asked
                print(f"gave up after {gave_up:.2f} s (target duration {rendition.target_duration} s)")
                assert status == 503 and rendition.next_part == made
                three_targets = llhls.BLOCK_TARGET_DURATIONS * rendition.target_duration
                assert three_targets - 0.05 <= gave_up <= three_targets + 1.0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await task.stop()

    asyncio.run(scenario())
