"""Issue 9 through the whole platform: going live again serves only the new broadcast, and hls.js and dash.js
(in Chromium, from the dashboard) play one set of CMAF segments live, across a reconnect, back in the rewind
window, and as a VOD to its end."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support import dash
from tests.support.http import call
from tests.support.media import SEGMENT_FORMAT, fetch_playlist, segments, variant_urls
from tests.support.platform import PlatformThread
from tests.support.publishers import ffmpeg_publisher
from tests.support.users import SignedInUser, sign_up_and_log_in
from tests.support.wait import wait_for
from tests.support.ws import Listener

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not SEGMENT_FORMAT.dash, reason="DASH needs CMAF segments (the default format)")]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
DVR_WINDOW_S = 70
PLAYER = """() => { const v = document.querySelector('#player'); return v && {
  state: v.dataset.state, engine: v.dataset.engine, fatal: v.dataset.hlsFatal || null, time: v.currentTime,
  paused: v.paused, behind: Number(v.dataset.behindLive || NaN), error: v.error && v.error.message }; }"""


def create_stream(platform: PlatformThread, user: SignedInUser, title: str, **fields: Any) -> dict[str, Any]:
    reply = call("POST", f"{platform.urls['api']}/v1/streams", {"title": title, **fields}, token=user.token)
    assert reply.status == 201, reply.raw
    stream: dict[str, Any] = reply.json
    return stream


def publish_url(stream: dict[str, Any]) -> str:
    return f"{stream['ingest']['rtmp_url']}/{stream['ingest']['stream_key']}"


def test_the_first_playlist_after_stream_live_is_the_new_broadcasts(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api)
    stream = create_stream(platform, user, "e2e go live again")
    details = call("GET", f"{api}/v1/streams/{stream['id']}").json
    with Listener(platform.urls["websocket"], subscribe=[stream["id"]]) as listener:
        wait_for(lambda: any(m.get("type") == "subscribed" for m in listener.messages), 10, "the subscription")
        first = ffmpeg_publisher(publish_url(stream), 5, size="640x360")
        assert first.wait(30) == 0
        ended = wait_for(lambda: listener.of_type("stream.offline", stream["id"]), 30, "the first broadcast to end")
        old_session = ended[0]["session_id"]
        # The previous broadcast's ended playlist and MPD are what the live URLs serve now.
        assert fetch_playlist(variant_urls(details["playback_url"])[360]).is_endlist  # type: ignore[union-attr]
        second = ffmpeg_publisher(publish_url(stream), 12, size="640x360")
        try:
            live = wait_for(lambda: [m for m in listener.of_type("stream.live", stream["id"])
                                     if m["session_id"] != old_session], 30, "stream.live of the second", 0.02)
            # The moment the event arrives, a viewer following it gets the new broadcast only.
            new_session = live[0]["session_id"]
            for height, media_url in variant_urls(details["playback_url"]).items():
                playlist = fetch_playlist(media_url)
                assert playlist is not None and not playlist.is_endlist, height
                names = [s.uri.rsplit("/", 1)[-1] for s in playlist.segments]
                assert names and all(n.startswith(new_session + "-") for n in names), (height, names)
            reply = call("GET", details["dash_url"])
            mpd = dash.parse(reply.raw.decode())
            assert mpd.type == "dynamic" and mpd.media_presentation_duration is None
            urls = [s.url for s in dash.segments(reply.raw.decode(), details["dash_url"])]
            assert urls and all(f"/{new_session}-" in u for u in urls)
        finally:
            second.kill()
            second.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("the player tests need Debian's chromium; `make test` installs it as root")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_watch(browser: Browser, platform: PlatformThread, stream_id: str, engine: str, errors: list[str]) -> Page:
    # A context (a window) of its own per engine: Chromium defers playback in a tab that is not in front.
    page = browser.new_context().new_page()
    page.set_default_timeout(30_000)
    page.on("pageerror", lambda error: errors.append(f"{engine}: {error}"))
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    CONSOLE[page] = console
    page.add_init_script(f"localStorage.setItem('streamforge.engine', '{engine}')")
    # "Standard" latency: the rewind window's playlists in S3 (LL-HLS, the watch page's default, holds seconds).
    page.add_init_script("localStorage.setItem('streamforge.latency_mode', 'standard')")
    page.goto(f"{platform.urls['dashboard']}/#/watch/{stream_id}")
    return page


CONSOLE: dict[Page, list[str]] = {}
"""Each page's console messages, for the failure message of a wait that timed out."""


def wait_playing(page: Page, condition: str, arg: Any = None, timeout_ms: int = 45_000) -> None:
    """`page.wait_for_function(condition)`; on timeout, fails with the player's state and the page's console."""
    try:
        page.wait_for_function(condition, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        pytest.fail(f"timed out after {timeout_ms / 1000:.0f} s waiting for {condition}: player {state(page)}, "
                    f"status {page.text_content('#stream-status')!r}, console {CONSOLE.get(page, [])[-12:]}")


def state(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(PLAYER)
    return found


def advances(page: Page, seconds: float, timeout_ms: int = 45_000) -> None:
    """The player plays on: currentTime grows by `seconds` from now, with no player error."""
    start = state(page)["time"]
    wait_playing(page, "(t) => { const v = document.querySelector('#player'); return !v.paused && "
                       "!v.dataset.hlsFatal && v.currentTime > t; }", start + seconds, timeout_ms)


def play_vod_to_its_end(page: Page, url: str, engine: str) -> dict[str, Any]:
    """The engine's library, on a page of the dashboard's origin, plays a VOD from near its end to `ended`."""
    result: dict[str, Any] = page.evaluate("""async ([url, engine]) => {
      const video = document.createElement('video');
      video.muted = true;
      document.body.append(video);
      const load = (src, name) => new Promise((resolve) => {
        if (window[name]) return resolve(window[name]);
        const s = document.createElement('script'); s.src = src; s.onload = () => resolve(window[name]);
        document.head.append(s);
      });
      const errors = [];
      if (engine === 'dash') {
        const dashjs = await load('/node_modules/dashjs/dist/modern/umd/dash.mediaplayer.min.js', 'dashjs');
        const player = dashjs.MediaPlayer().create();
        player.on(dashjs.MediaPlayer.events.ERROR, (e) => errors.push(String(e.error && e.error.code)));
        player.initialize(video, url, false);
      } else {
        const Hls = await load('/node_modules/hls.js/dist/hls.min.js', 'Hls');
        const hls = new Hls();
        hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) errors.push(d.details); });
        hls.loadSource(url); hls.attachMedia(video);
      }
      await new Promise((resolve) => video.addEventListener('loadedmetadata', resolve, { once: true }));
      const duration = video.duration;
      await video.play();
      await new Promise((resolve) => {
        const check = () => {
          if (video.currentTime > 0.5) { video.removeEventListener('timeupdate', check); resolve(); }
        };
        video.addEventListener('timeupdate', check);
      });
      const early = video.currentTime;
      video.currentTime = duration - 4;
      await new Promise((resolve) => video.addEventListener('ended', resolve, { once: true }));
      return { duration, early, end: video.currentTime, errors };
    }""", [url, engine])
    return result


def test_hls_js_and_dash_js_play_live_through_a_reconnect_back_in_the_window_and_the_vod(
        platform: PlatformThread, browser: Browser) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api, f"p{secrets.token_hex(2)}")
    stream = create_stream(platform, user, "e2e players", dvr_window_s=DVR_WINDOW_S)
    details = call("GET", f"{api}/v1/streams/{stream['id']}").json
    assert details["dash_url"].endswith(f"/live/{stream['id']}/manifest.mpd")
    errors: list[str] = []
    first = ffmpeg_publisher(publish_url(stream), 36, size="640x360")
    second: subprocess.Popen[bytes] | None = None
    pages = {engine: open_watch(browser, platform, stream["id"], engine, errors) for engine in ("hls", "dash")}
    try:
        for engine, page in pages.items():
            wait_playing(page, "() => { const v = document.querySelector('#player'); "
                               "return v && !v.paused && v.currentTime > 0.5; }")
            assert state(page)["engine"] == engine
        for page in pages.values():
            advances(page, 10)
        # The publisher drops and comes back within grace: a discontinuity, a new Period; both play on.
        assert first.wait(60) == 0
        second = ffmpeg_publisher(publish_url(stream), 48, size="640x360")
        wait_for(lambda: len(dash.parse(call("GET", details["dash_url"]).raw.decode()).periods) == 2, 30,
                 "a second Period in the MPD")
        media_url = variant_urls(details["dvr_url"])[360]
        assert any(s.discontinuity for s in fetch_playlist(media_url).segments)  # type: ignore[union-attr]
        for page in pages.values():
            advances(page, 8)
        # Rewind: once more than a minute is stored, seek back 60 s, play from there, then back to live.
        wait_for(lambda: sum(d for d, _ in segments(media_url)) >= 66, 60, "66 s in the rewind window", 1)
        hls_page = pages["hls"]
        hls_page.evaluate("() => { const v = document.querySelector('#player'); v.currentTime -= 60; }")
        advances(hls_page, 3)
        behind = state(hls_page)["behind"]
        assert behind >= 60, state(hls_page)  # the frame on screen was captured over a minute ago (PDT)
        hls_page.click("#to-live-edge")
        wait_playing(hls_page, "() => Number(document.querySelector('#player').dataset.behindLive) < 20")
        advances(pages["dash"], 3)
        assert sum(d for d, _ in segments(media_url)) <= DVR_WINDOW_S  # the window slides, never longer
        assert second.wait(90) == 0
    finally:
        for publisher in (first, second):
            if publisher is not None:
                publisher.kill()
                publisher.wait()
    sessions = wait_for(lambda: [s for s in call("GET", f"{api}/v1/streams/{stream['id']}/sessions",
                                                 token=user.token).json["items"] if s.get("vod_dash_url")],
                        40, "the session's VOD")
    (session,) = sessions
    for engine, url in (("hls", session["vod_url"]), ("dash", session["vod_dash_url"])):
        played = play_vod_to_its_end(pages[engine], url, engine)
        assert played["errors"] == [] and played["early"] > 0.5, played
        assert played["duration"] > 70 and played["end"] >= played["duration"] - 0.5, played
    assert errors == []
    for page in pages.values():
        page.close()
