"""Real RTMP clients and real ffmpeg transcoding through the in-process server (fake store and S3).

Clips are short and 320x240 so the whole module stays cheap on a shared 2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from streamforge_media import hls
from streamforge_media.transcode.pipeline import FfmpegPipeline

from tests.support.publishers import start_ffmpeg, start_gstreamer
from tests.support.wait import wait_for_async
from tests.unit.media.media_support import STREAM_ID, Harness, have, make_config, running_harness

pytestmark = [pytest.mark.component, pytest.mark.skipif(not have("ffmpeg"), reason="ffmpeg not installed")]

TOP = f"live/{STREAM_ID}/240p/index.m3u8"


def stored_segments(h: Harness, rendition: str = "240p") -> list[str]:
    return h.objects.keys(f"live/{STREAM_ID}/{rendition}/ses_")


def ended(h: Harness) -> bool:
    """Every session is stored as ended and announced: `Session Recorded` is the last step of ending one."""
    sessions = h.store.sessions.values()
    announced = h.events.types().count("Session Recorded") == len(sessions)
    return bool(sessions) and announced and all(s["status"] == "ended" for s in sessions)


def pipeline_of(h: Harness) -> FfmpegPipeline:
    broadcast = h.manager.streams[STREAM_ID]
    connection = broadcast.connection
    assert connection is not None and isinstance(connection.transcoder, FfmpegPipeline)
    return connection.transcoder


def test_wrong_key_ffmpeg_refused_fast_and_neighbour_unaffected(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_harness(make_config(tmp_path)) as h:
            good = await start_ffmpeg(h.url(), 6)
            await wait_for_async(lambda: stored_segments(h), 8)
            started = time.monotonic()
            bad = await start_ffmpeg(h.url("sk_not_a_key"), 6)
            code = await asyncio.wait_for(bad.wait(), 5)
            assert code != 0
            assert time.monotonic() - started < 1.5  # includes ffmpeg's own start-up
            before = len(stored_segments(h))
            await wait_for_async(lambda: len(stored_segments(h)) > before, 5)
            assert len(h.store.sessions) == 1
            good.kill()
            await good.wait()
    asyncio.run(scenario())


@pytest.mark.skipif(not have("gst-launch-1.0"), reason="GStreamer not installed")
def test_gstreamer_rtmp2sink_publisher(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_harness(make_config(tmp_path)) as h:
            proc = await start_gstreamer(h.url(), 5)
            await wait_for_async(lambda: f"live/{STREAM_ID}/master.m3u8" in h.objects.objects, 10)
            await asyncio.wait_for(proc.wait(), 15)
            await wait_for_async(lambda: ended(h), 15)
            assert len(stored_segments(h)) >= 2
            assert "mp4a.40.2" in h.objects.text(f"live/{STREAM_ID}/master.m3u8")
    asyncio.run(scenario())


@pytest.mark.skipif(not have("gst-launch-1.0"), reason="GStreamer not installed")
def test_librtmp_rtmpsink_publisher(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_harness(make_config(tmp_path)) as h:
            proc = await start_gstreamer(h.url(), 4, sink="rtmpsink", audio=False)
            await wait_for_async(lambda: stored_segments(h), 10)
            await asyncio.wait_for(proc.wait(), 15)
            await wait_for_async(lambda: ended(h), 15)
            assert "mp4a" not in h.objects.text(f"live/{STREAM_ID}/master.m3u8")  # video-only source
    asyncio.run(scenario())


def test_ffmpeg_killed_mid_stream_recovers_with_discontinuity(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_harness(make_config(tmp_path)) as h:
            publisher = await start_ffmpeg(h.url(), 9)
            await wait_for_async(lambda: len(stored_segments(h)) >= 1, 8)
            pipeline = pipeline_of(h)
            assert pipeline.pid is not None
            os.kill(pipeline.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            await wait_for_async(lambda: pipeline.generations == 2, 3)
            assert time.monotonic() - killed_at < 3
            await wait_for_async(lambda: "#EXT-X-DISCONTINUITY\n" in h.objects.text(TOP), 8)
            assert await asyncio.wait_for(publisher.wait(), 15) == 0
            await wait_for_async(lambda: ended(h), 15)
            (session,) = h.store.sessions.values()
            vod = h.objects.text(f"vod/{STREAM_ID}/{session_id(h)}/240p/index.m3u8")
            assert vod.count("#EXT-X-DISCONTINUITY\n") == 1
            assert session["duration_s"] > 5
    asyncio.run(scenario())


def session_id(h: Harness) -> str:
    ((_, sid),) = h.store.sessions.keys()
    return sid


def test_reconnect_within_grace_is_one_session_with_discontinuity(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_harness(make_config(tmp_path, reconnect_grace_s=4)) as h:
            first = await start_ffmpeg(h.url(), 4.5)
            assert await asyncio.wait_for(first.wait(), 10) == 0
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "reconnecting", 5)
            second = await start_ffmpeg(h.url(), 4.5)
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "live", 3)
            assert await asyncio.wait_for(second.wait(), 10) == 0
            await wait_for_async(lambda: ended(h), 15)
            assert len(h.store.sessions) == 1
            sid = session_id(h)
            vod = h.objects.text(f"vod/{STREAM_ID}/{sid}/240p/index.m3u8")
            assert vod.count("#EXT-X-DISCONTINUITY\n") == 1
            total = sum(s.duration for s in hls.parse_media_playlist(vod))
            assert total == pytest.approx(9.0, abs=2.0)
            assert h.events.types().count("Stream Live") == 1
            assert h.events.types().count("Session Recorded") == 1
    asyncio.run(scenario())


def test_revoked_key_disconnects_real_publisher_within_5s(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_harness(make_config(tmp_path, key_poll_s=2.0, reconnect_grace_s=60)) as h:
            publisher = await start_ffmpeg(h.url(), 30)
            await wait_for_async(lambda: stored_segments(h), 8)
            h.store.revoke()
            revoked_at = time.monotonic()
            code = await asyncio.wait_for(publisher.wait(), 6)
            assert time.monotonic() - revoked_at <= 5
            assert code != 0
            await wait_for_async(lambda: ended(h), 10)
            assert h.store.streams[STREAM_ID]["status"] == "offline"
            assert h.events.types()[-2:] == ["Stream Offline", "Session Recorded"]
    asyncio.run(scenario())


def test_thousand_malformed_connections_leave_live_neighbour_producing(tmp_path: Path) -> None:
    garbage = [b"GET / HTTP/1.1\r\n\r\n", b"\x03" + bytes(10), b"\x03" + bytes(3072) + b"\x44" + bytes(20),
               b"\xff" * 64, b"\x03" + bytes(3072) + b"\x03\x00\x00\x00\xff\xff\xff\x09" + bytes(4)]

    async def attack(port: int, n: int, slots: asyncio.Semaphore) -> None:
        async with slots:
            await one_connection(port, n)

    async def one_connection(port: int, n: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.write(garbage[n % len(garbage)])
        if n % 7:  # most hang up at once, some wait for the server to drop them
            writer.transport.abort()
            return
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(3):
                await reader.read()
        writer.close()

    async def scenario() -> None:
        from streamforge_media.ingest.rtmp.server import RtmpLimits

        limits = RtmpLimits(handshake_timeout_s=1, idle_timeout_s=5, max_connections_per_ip=200,
                            max_message_size=1 << 20)
        async with running_harness(make_config(tmp_path, limits=limits)) as h:
            publisher = await start_ffmpeg(h.url(), 60)
            await wait_for_async(lambda: stored_segments(h), 8)
            before = len(stored_segments(h))
            slots = asyncio.Semaphore(150)  # under the per-IP limit, so every attempt reaches the parser
            await asyncio.gather(*(attack(h.server.port, n, slots) for n in range(1200)))
            await wait_for_async(lambda: len(stored_segments(h)) >= before + 2, 8)
            assert h.store.streams[STREAM_ID]["status"] == "live"
            assert publisher.returncode is None
            await wait_for_async(lambda: h.server.connection_count == 1, 5)
            publisher.kill()
            await publisher.wait()
    asyncio.run(scenario())
