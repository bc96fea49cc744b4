"""Issue 11 through the whole platform: the dashboard's watch page plays a live stream as LL-HLS (hls.js
`lowLatencyMode`, the media task's LL origin through the local CDN) in Chromium for 60 s without a stall, then
falls back to the plain playlists when the LL origin stops answering."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.http import call
from tests.support.media import SEGMENT_FORMAT
from tests.support.platform import PlatformThread
from tests.support.publishers import ffmpeg_publisher
from tests.support.users import sign_up_and_log_in

# The dashboard is served by the local web server whichever emulator is behind it: moto only (CI time).
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("emulator", ["moto"], indirect=True),
              pytest.mark.skipif(not SEGMENT_FORMAT.has_init, reason="LL-HLS parts are CMAF")]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
WATCH_S = 60
START_TIMEOUT_MS = 45_000
FALLBACK_TIMEOUT_MS = 30_000
MAX_BEHIND_LIVE_S = 6.0
"""Behind live (PROGRAM-DATE-TIME of the frame on screen) at the end: plain HLS sits near 9 s here."""
# Stalls after the first `playing`: the element's `waiting` events (caught on the document in the capture
# phase, as media events do not bubble) and hls.js BUFFER_STALLED_ERROR, which the watch page counts in
# data-stalls.
WATCHER = """window.__ll = { playing: false, waiting: 0 };
document.addEventListener('playing', () => { window.__ll.playing = true; }, true);
document.addEventListener('waiting', () => { if (window.__ll.playing) window.__ll.waiting += 1; }, true);"""
STATE = """() => { const v = document.querySelector('#player'); return {
  engine: v.dataset.engine, fatal: v.dataset.hlsFatal || null, time: v.currentTime, paused: v.paused,
  behind: Number(v.dataset.behindLive || NaN), stalls: Number(v.dataset.stalls || 0),
  waiting: window.__ll.waiting, mode: document.querySelector('#latency-mode').value }; }"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("the player test needs Debian's chromium; `make test` installs it as root")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_the_watch_page_plays_ll_hls_a_minute_without_a_stall_then_falls_back_when_the_origin_dies(
        platform: PlatformThread, browser: Browser) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api, f"ll{secrets.token_hex(2)}")
    reply = call("POST", f"{api}/v1/streams", {"title": "e2e LL-HLS"}, token=user.token)
    assert reply.status == 201, reply.raw
    stream = reply.json
    details = call("GET", f"{api}/v1/streams/{stream['id']}").json
    assert details["ll_playback_url"] == f"{platform.urls['cdn']}/ll/{stream['id']}/master.m3u8"
    publisher = ffmpeg_publisher(f"{stream['ingest']['rtmp_url']}/{stream['ingest']['stream_key']}",
                                 WATCH_S + 45, size="640x360")
    page = browser.new_context().new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.add_init_script(WATCHER)
    try:
        page.goto(f"{platform.urls['dashboard']}/#/watch/{stream['id']}")
        try:
            page.wait_for_function("() => { const v = document.querySelector('#player'); "
                                   "return v && !v.paused && v.currentTime > 0.5 && window.__ll.playing; }",
                                   timeout=START_TIMEOUT_MS)
        except PlaywrightTimeout:
            pytest.fail(f"the LL stream did not start: {page.evaluate(STATE)}, console {console[-12:]}")
        start = page.evaluate(STATE)
        assert start["engine"] == "ll" and start["mode"] == "low", start
        # A minute of playback, cut short by the first stall.
        page.wait_for_function("""([t0, ms]) => window.__ll.waiting > 0 || performance.now() - t0 >= ms ||
                                  Number(document.querySelector('#player').dataset.stalls || 0) > 0""",
                               arg=[page.evaluate("performance.now()"), WATCH_S * 1000],
                               timeout=(WATCH_S + 15) * 1000)
        end = page.evaluate(STATE)
        print(f"LL-HLS in the watch page: {end}")
        assert end["waiting"] == 0 and end["stalls"] == 0, (end, console[-12:])
        assert end["engine"] == "ll" and end["fatal"] is None and not end["paused"], end  # no fall back
        assert end["time"] - start["time"] >= WATCH_S * 0.9, end
        assert end["behind"] <= MAX_BEHIND_LIVE_S, end
        # Blocking playlist reloads through the CDN, and parts.
        ll = [url for url in requests if f"/ll/{stream['id']}/" in url]
        assert any("_HLS_msn=" in url and "_HLS_part=" in url for url in ll), ll[-5:]
        assert any(url.rsplit("/", 1)[-1].startswith("p") for url in ll), ll[-5:]
        # The ingesting task dies: the CDN answers 502 for ll/ (local/cdn.py). The page falls back to the plain
        # playlists, says so in its latency choice, and plays on.
        page.route(f"**/ll/{stream['id']}/**", lambda route: route.fulfill(status=502, body="no task"))
        try:
            page.wait_for_function("""() => { const v = document.querySelector('#player');
                return v.dataset.engine === 'hls' && document.querySelector('#latency-mode').value === 'standard'
                    && !v.paused && v.currentTime > 0; }""", timeout=FALLBACK_TIMEOUT_MS)
            page.wait_for_function("(t) => document.querySelector('#player').currentTime > t",
                                   arg=page.evaluate(STATE)["time"] + 3, timeout=FALLBACK_TIMEOUT_MS)
        except PlaywrightTimeout:
            pytest.fail(f"no fall back to the plain playlists: {page.evaluate(STATE)}, console {console[-12:]}")
        assert errors == []
    finally:
        page.context.close()
        publisher.kill()
        publisher.wait()
