"""Issue 12 through the whole local platform: WHIP (an aiortc client, headless Chromium's fake camera through
the dashboard), SRT (ffmpeg as the caller) and RTMPS (ffmpeg over the self-signed TLS port) all become the same
sessions, ladder and events as RTMP. ICE runs on loopback (the e2e platform's media task gathers on 127.0.0.1),
so no network interface is needed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest

from tests.support.http import call
from tests.support.media import fetch_playlist, playable, segments, variant_urls
from tests.support.platform import PlatformThread
from tests.support.publishers import ffmpeg_publish_args
from tests.support.users import SignedInUser, create_stream, sign_up_and_log_in
from tests.support.wait import wait_for
from tests.support.whip import WhipPublisher, encode_source

pytestmark = pytest.mark.e2e

WHIP_SECONDS = 20
FRAME_S = 1 / 30


def _status(platform: PlatformThread, stream_id: str) -> str:
    return str(call("GET", f"{platform.urls['api']}/v1/streams/{stream_id}").json["status"])


def _ended_session(platform: PlatformThread, user: SignedInUser, stream_id: str) -> dict[str, Any] | None:
    reply = call("GET", f"{platform.urls['api']}/v1/streams/{stream_id}/sessions", token=user.token)
    done = [s for s in reply.json["items"] if s.get("ended_at")]
    return done[0] if done else None


def _media_children(platform: PlatformThread, stream_id: str, name: str = "ffmpeg") -> int:
    """Processes called `name` whose parent is the media task, working for `stream_id` (the transcoder's
    output directory names it; other tests' streams share the platform)."""
    media = platform.platform._media
    assert media is not None
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == media.pid and comm == name and stream_id in cmdline:
            count += 1
    return count


def _keyframe_gaps(media_url: str, count: int) -> list[float]:
    """Seconds between consecutive video keyframes over the newest `count` segments of a media playlist
    (CMAF segments are probed behind their init segment, MPEG-TS ones alone)."""
    playlist = fetch_playlist(media_url)
    assert playlist is not None
    chosen = playlist.segments[-count:]
    init = chosen[0].init_section
    body = call("GET", urljoin(media_url, init.uri)).raw if init is not None else b""
    for segment in chosen:
        body += call("GET", urljoin(media_url, segment.uri)).raw
    with tempfile.NamedTemporaryFile(suffix=".mp4" if init is not None else ".ts") as joined:
        joined.write(body)
        joined.flush()
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-skip_frame", "nokey",
                              "-show_entries", "frame=pts_time", "-of", "csv=p=0", joined.name],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    times = [float(t) for t in (v.strip(",") for v in out.split()) if t not in ("", "N/A")]
    return [b - a for a, b in itertools.pairwise(times)]


# --- WHIP: aiortc --------------------------------------------------------------------------------------

def _publish_whip(url: str, key: str, source: Path) -> dict[str, Any]:
    """Publish `source` with an aiortc WHIP client until the file ends, then DELETE twice; run in a thread."""
    result: dict[str, Any] = {}

    async def main() -> None:
        from streamforge_media.ingest.whip import passthrough

        passthrough.gather_on(("127.0.0.1",))  # this process's aiortc gathers on loopback, like the server
        async with aiohttp.ClientSession() as http:
            publisher = WhipPublisher(url, key, source)
            answer = await publisher.post(http)
            result["post"] = answer.status
            if answer.status != 201:
                result["body"] = answer.body
                return
            ended = asyncio.Event()
            publisher.player.video.on("ended", ended.set)
            await publisher.wait_connected()
            result["connected_at"] = time.monotonic()
            await asyncio.wait_for(ended.wait(), WHIP_SECONDS + 30)
            result["delete"] = await publisher.delete(http)
            result["delete_again"] = await publisher.delete(http)
            await publisher.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()))
    thread.start()
    result["thread"] = thread
    return result


def test_whip_aiortc_file_becomes_every_rung_with_aac_and_keeps_its_duration(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api, "whip")
    stream = create_stream(api, user, "e2e whip")
    assert stream["ingest"]["whip_url"] == f"{platform.urls['whip']}/{stream['id']}"
    with tempfile.TemporaryDirectory() as scratch:
        source = encode_source(Path(scratch) / "src.ts", WHIP_SECONDS, size="640x360")
        run = _publish_whip(stream["ingest"]["whip_url"], stream["ingest"]["stream_key"], source)
        wait_for(lambda: run.get("post"), 30, "the WHIP answer")
        assert run["post"] == 201, run.get("body")
        wait_for(lambda: playable(stream["playback_url"]), 30, "the master and a first segment of every rung")
        wait_for(lambda: _status(platform, stream["id"]) == "live", 10, "the stream to be live")
        variants = variant_urls(stream["playback_url"])
        assert sorted(variants) == [160, 360]  # every rung of the ladder up to the 360p source
        master = fetch_playlist(stream["playback_url"])
        assert master is not None and all("mp4a.40.2" in p.stream_info.codecs for p in master.playlists)
        run["thread"].join(WHIP_SECONDS + 60)
        assert (run["delete"], run["delete_again"]) == (200, 404)
        assert _media_children(platform, stream["id"]) == 0, "DELETE answered while the stream's ffmpeg still ran"
    session = wait_for(lambda: _ended_session(platform, user, stream["id"]), 30, "the session to end (grace)")
    vod = variant_urls(session["vod_url"])
    total = sum(duration for duration, _ in segments(vod[360]))
    # The file's 20 s, to within a frame: nothing decoded, dropped or stretched on the way.
    assert abs(total - WHIP_SECONDS) <= FRAME_S + 1e-3, f"{total:.3f} s published of a {WHIP_SECONDS} s source"


# --- WHIP: Chromium's fake camera through the dashboard ----------------------------------------------

@pytest.fixture(scope="module")
def camera_browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium (with OpenH264); `make test` installs it as root")
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            "--allow-loopback-in-peer-connection"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=args)
        yield browser
        browser.close()


def test_go_live_from_the_browser_keyframes_and_playback(platform: PlatformThread, camera_browser: Any) -> None:
    from playwright.sync_api import expect

    from tests.e2e.test_dashboard import _create_stream, _sign_up_and_log_in

    dashboard = platform.urls["dashboard"]
    errors: list[str] = []
    console = camera_browser.new_page()
    console.set_default_timeout(15_000)
    console.on("pageerror", lambda error: errors.append(str(error)))
    console.goto(f"{dashboard}/#/console")
    username = f"cam{os.getpid()}{int(time.time()) % 100000}"
    _sign_up_and_log_in(console, username)
    stream_id, _, _ = _create_stream(console, "e2e camera")
    assert console.locator("#ingest-whip-url").input_value() == f"{platform.urls['whip']}/{stream_id}"
    console.get_by_role("button", name="Go live from this browser").click()
    expect(console.locator("#browser-live-state")).to_have_text("connected", timeout=20_000)
    playback = f"{platform.urls['cdn']}/live/{stream_id}/master.m3u8"
    wait_for(lambda: playable(playback), 30, "the browser's stream at the CDN")
    viewer = camera_browser.new_page()
    viewer.on("pageerror", lambda error: errors.append(str(error)))
    viewer.goto(f"{dashboard}/#/watch/{stream_id}")
    viewer.wait_for_function(
        "() => { const v = document.querySelector('#player'); return v && !v.paused && v.currentTime > 2; }",
        timeout=45_000)
    top = variant_urls(playback)
    media_url = top[max(top)]
    wait_for(lambda: len(segments(media_url)) >= 3, 30, "three segments of the top rung")
    gaps = _keyframe_gaps(media_url, 3)
    assert gaps and max(gaps) <= 2.2, gaps
    console.get_by_role("button", name="Stop").click()
    expect(console.locator("#browser-live-state")).to_have_text("Stopped")
    wait_for(lambda: _status(platform, stream_id) == "offline", 30, "offline after grace")
    assert errors == []


# --- SRT --------------------------------------------------------------------------------------------------

def _srt_caller(srt_url: str, stream_id: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ffmpeg_publish_args(f"{srt_url}?streamid={stream_id}", seconds, size="640x360", keyframe_s=2,
                            container="mpegts"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_srt_caller_key_checked_in_the_handshake_lease_and_grace(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api, "srt")
    stream = create_stream(api, user, "e2e srt")
    srt_url, key = stream["ingest"]["srt_url"], stream["ingest"]["stream_key"]
    assert srt_url == platform.urls["srt"] and key not in srt_url

    started = time.monotonic()
    wrong = _srt_caller(srt_url, f"#!::r=live/sk_{'x' * 43},m=publish", 10)
    assert wrong.wait(5) != 0
    assert time.monotonic() - started < 1.0, "a wrong key was not refused within 1 s"
    assert _media_children(platform, stream["id"]) == 0 and _status(platform, stream["id"]) == "offline"
    assert call("GET", f"{api}/v1/streams/{stream['id']}/sessions", token=user.token).json["items"] == []

    started = time.monotonic()
    good = _srt_caller(srt_url, f"#!::r=live/{key},m=publish", 60)
    try:
        wait_for(lambda: playable(stream["playback_url"]), 10, "HLS at the CDN within 10 s of the SRT caller")
        first_playable_s = time.monotonic() - started
        second = _srt_caller(srt_url, f"#!::r=live/{key},m=publish", 5)
        assert second.wait(5) != 0, "a second caller with the same key was taken"
        wait_for(lambda: _status(platform, stream["id"]) == "live", 10, "the stream to be live")
    finally:
        good.kill()  # no goodbye: the session layer sees the publisher go, then grace runs as for RTMP
        good.wait()
    wait_for(lambda: _status(platform, stream["id"]) == "reconnecting", 10, "reconnecting after the caller died")
    wait_for(lambda: _ended_session(platform, user, stream["id"]), 30, "offline once grace expired")
    assert _status(platform, stream["id"]) == "offline"
    print(f"srt first playable {first_playable_s:.1f} s")


# --- RTMPS --------------------------------------------------------------------------------------------------

def test_rtmps_through_the_local_tls_port(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api, "rtmps")
    stream = create_stream(api, user, "e2e rtmps")
    url = f"{platform.urls['rtmps']}/{stream['ingest']['stream_key']}"
    publisher = subprocess.Popen(ffmpeg_publish_args(url, 30, keyframe_s=2), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
    try:
        wait_for(lambda: playable(stream["playback_url"]), 30, "HLS from the RTMPS publisher")
    finally:
        publisher.kill()
        publisher.wait()
