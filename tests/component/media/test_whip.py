"""WHIP ingest (RFC 9725): the frame conversion and offer checks alone, then the endpoint in-process with a
real aiortc client (a pre-encoded H.264 + Opus file, nothing decoded), the real session manager (fake store,
in-memory S3) and the real ffmpeg ladder. ICE runs on loopback (`gather_on`), so no interface is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from streamforge_media.ingest.whip import passthrough
from streamforge_media.ingest.whip.sdp import OfferError, check_offer
from streamforge_media.ingest.whip.server import WhipEndpoint, WhipSettings
from streamforge_media.media import MediaKind
from streamforge_media.transcode.pipeline import FfmpegPipeline

from tests.support.wait import wait_for_async
from tests.support.whip import WhipPublisher, encode_source
from tests.unit.media.media_support import (
    STREAM_ID,
    STREAM_KEY,
    FakeStore,
    Harness,
    MemoryObjectStore,
    have,
    make_config,
    running_harness,
)

pytestmark = [pytest.mark.component]
needs_ffmpeg = pytest.mark.skipif(not have("ffmpeg"), reason="ffmpeg not installed (make test installs it)")


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """A sync test that runs the coroutine test in a fresh event loop (the media tests' convention)."""
    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return sync


# --- offers ------------------------------------------------------------------------------------------

async def _offer(vp8_first: bool = False, audio: bool = True) -> str:
    client = WhipPublisher("http://x/whip/s", None)
    from aiortc import RTCRtpSender

    video = client.pc.addTransceiver("video", direction="sendonly")
    codecs = RTCRtpSender.getCapabilities("video").codecs
    if vp8_first:
        video.setCodecPreferences([c for c in codecs if c.mimeType.lower() in ("video/vp8", "video/h264")])
    if audio:
        client.pc.addTransceiver("audio", direction="sendonly")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    sdp = str(client.pc.localDescription.sdp)
    await client.close()
    return sdp


@run
async def test_check_offer_takes_h264_and_opus_and_names_the_kinds() -> None:
    offer = check_offer(await _offer())
    assert offer.kinds == {MediaKind.VIDEO, MediaKind.AUDIO}


@run
async def test_check_offer_refuses_malformed_and_unanswerable_offers() -> None:
    with pytest.raises(OfferError) as malformed:
        check_offer("hello")
    assert malformed.value.status == 400
    vp8_only = (await _offer(audio=False)).replace("H264", "H263")  # a video section without H.264
    with pytest.raises(OfferError) as unanswerable:
        check_offer(vp8_only)
    assert unanswerable.value.status == 422
    no_ice = "\r\n".join(line for line in (await _offer()).split("\r\n") if not line.startswith("a=ice-ufrag"))
    with pytest.raises(OfferError) as missing:
        check_offer(no_ice)
    assert missing.value.status == 400 and "ICE" in str(missing.value)


# --- the endpoint ------------------------------------------------------------------------------------

@dataclass
class WhipHarness:
    task: Harness[MemoryObjectStore]
    endpoint: WhipEndpoint
    base: str
    http: aiohttp.ClientSession

    def url(self, stream_id: str = STREAM_ID) -> str:
        return f"{self.base}/whip/{stream_id}"


@contextlib.asynccontextmanager
async def whip_harness(tmp_path: Path, store: FakeStore | None = None) -> AsyncIterator[WhipHarness]:
    passthrough.gather_on(("127.0.0.1",))
    config = make_config(tmp_path / "work")
    async with running_harness(config, store=store) as task:
        endpoint = WhipEndpoint(task.manager, WhipSettings(keyframe_request_s=1.0, connect_timeout_s=10.0))
        app = web.Application()
        endpoint.add_routes(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http:
            try:
                yield WhipHarness(task, endpoint, f"http://127.0.0.1:{port}", http)
            finally:
                await endpoint.close()
                await runner.cleanup()


def _open_fds() -> tuple[int, int]:
    """(open file descriptors, UDP sockets among them) of this process."""
    fds = os.listdir("/proc/self/fd")
    inodes = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    udp = 0
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with open(table) as f:
            udp += sum(1 for line in list(f)[1:] if line.split()[9] in inodes)
    return len(fds), udp


@run
async def test_wrong_or_missing_key_is_401_before_any_socket(tmp_path: Path) -> None:
    async with whip_harness(tmp_path) as h:
        offer = await _offer()
        await WhipPublisher(h.url(), "sk_" + "x" * 43).post(h.http, offer)  # warm the HTTP connection pool
        before = _open_fds()
        wrong = await WhipPublisher(h.url(), "sk_" + "x" * 43).post(h.http, offer)
        missing = await WhipPublisher(h.url(), None).post(h.http, offer)
        other_stream = await WhipPublisher(h.url("st_bbbbbbbbbbbbbbbb"), STREAM_KEY).post(h.http, offer)
        after = _open_fds()
        assert (wrong.status, missing.status, other_stream.status) == (401, 401, 401)
        assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert STREAM_KEY not in other_stream.body
        # Compared with before, not with zero: earlier tests in this process may still hold UDP sockets.
        assert after == before, "a refused publish opened a file descriptor or a UDP socket"
        assert h.task.store.sessions == {} and h.task.events.events == []


@run
async def test_bad_requests_get_precise_statuses(tmp_path: Path) -> None:
    async with whip_harness(tmp_path) as h:
        offer = await _offer()
        publisher = WhipPublisher(h.url(), STREAM_KEY)
        assert (await publisher.post(h.http, offer, content_type="application/json")).status == 415
        # The key is judged before the body: a wrong key with no offer at all is 401, not 400.
        assert (await WhipPublisher(h.url(), "sk_" + "w" * 43).post(h.http, "")).status == 401
        assert (await publisher.post(h.http, "v=0\r\n" + "a=x\r\n" * 20000)).status == 413
        assert (await publisher.post(h.http, "not sdp")).status == 400
        assert (await publisher.post(h.http, offer.replace("H264", "H263"))).status == 422
        async with h.http.options(h.url(), headers={"Origin": "http://dashboard.test",
                                                    "Access-Control-Request-Method": "POST"}) as preflight:
            assert preflight.status == 204
            assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
            assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert h.task.store.sessions == {}, "a bad request started a session"


@needs_ffmpeg
@run
async def test_publish_becomes_the_ladder_and_delete_stops_the_transcoder(tmp_path: Path) -> None:
    source = encode_source(tmp_path / "src.ts", 8)
    async with whip_harness(tmp_path) as h:
        publisher = WhipPublisher(h.url(), STREAM_KEY, source, vp8_first=True)
        answer = await publisher.post(h.http)
        assert answer.status == 201, answer.body
        assert answer.headers["Content-Type"].startswith("application/sdp") and answer.headers["ETag"]
        assert answer.headers["Location"].startswith(f"/whip/{STREAM_ID}/")
        video = answer.body.split("m=video")[1].split("m=")[0]
        assert "H264/90000" in video and "VP8" not in video, "a VP8-first offer must be answered with H.264"
        assert "Access-Control-Expose-Headers" in answer.headers
        await publisher.wait_connected()
        second = await WhipPublisher(h.url(), STREAM_KEY, source).post(h.http)
        assert second.status == 409
        # PATCH (trickle ICE) is not implemented: 405, as RFC 9725 §4.3 allows.
        assert publisher.resource is not None
        async with h.http.patch(publisher.resource, data=b"", headers={
                "Content-Type": "application/trickle-ice-sdpfrag"}) as patch:
            assert patch.status == 405
        playlist = f"live/{STREAM_ID}/240p/index.m3u8"
        await wait_for_async(lambda: playlist in h.task.objects.objects and "#EXTINF" in h.task.objects.text(playlist),
                       30)
        # WebRTC's loss (RTCP receiver statistics) and round trip (an ICE binding request) join the ingest health.
        health = await wait_for_async(lambda: [d for t, d in h.task.events.events
                                         if t == "Ingest Health" and "rtt_ms" in d], 10)
        assert health[-1]["packet_loss_pct"] == 0 and 0 < health[-1]["rtt_ms"] < 1000
        connection = h.task.manager.streams[STREAM_ID].connection
        assert connection is not None and isinstance(connection.transcoder, FfmpegPipeline)
        pid = connection.transcoder.pid
        assert pid is not None and os.path.exists(f"/proc/{pid}")
        assert await publisher.delete(h.http, key="sk_" + "y" * 43) == 401  # a Bearer sent must be the key
        assert await publisher.delete(h.http) == 200
        assert not os.path.exists(f"/proc/{pid}"), "DELETE answered before the transcoder's ffmpeg was gone"
        assert await publisher.delete(h.http) == 404
        await publisher.close()
        # The master goes up once every rendition has a playlist (the last segments flush as ffmpeg exits).
        key = f"live/{STREAM_ID}/master.m3u8"
        master = await wait_for_async(lambda: h.task.objects.text(key) if key in h.task.objects.objects else None, 10)
        assert "240p" in master and "160p" in master
        # DELETE is a publisher leaving: grace applies (the session is reconnecting, not ended).
        await wait_for_async(lambda: h.task.store.streams[STREAM_ID]["status"] == "reconnecting", 5)
        assert "Stream Offline" not in h.task.events.types()
