"""The dashboard in Chromium against the whole local platform: sign up, create a stream, publish, watch."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.support.publishers import ffmpeg_publish_args

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PUBLISH_SECONDS = 25
# Waits are deadlines on conditions, sized for two cores shared with the media pipeline.
UI_TIMEOUT_MS = 15_000
LIVE_TIMEOUT_MS = 30_000
PLAYBACK_TIMEOUT_MS = 45_000
PLAYER_STATE = """() => { const v = document.querySelector('#player'); return v && {
  state: v.dataset.state, fatal: v.dataset.hlsFatal, readyState: v.readyState, paused: v.paused,
  currentTime: v.currentTime, error: v.error && v.error.message, src: v.currentSrc }; }"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("the dashboard test needs Debian's chromium; `make test` installs it as root")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


def _open(browser: Browser, url: str, errors: list[str], console: list[str] | None = None) -> Page:
    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(f"{url}: {error}"))
    if console is not None:
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(url)
    return page


def _publish(url: str, log: Path) -> subprocess.Popen[bytes]:
    command = ffmpeg_publish_args(url, PUBLISH_SECONDS, size="640x360", keyframe_s=2)
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)


def _sign_up_and_log_in(page: Page, username: str) -> None:
    page.get_by_label("Email", exact=True).fill(f"{username}@example.com")
    page.get_by_label("Username", exact=True).fill(username)
    page.locator("#signup-password").fill("Dashboard-e2e-1!")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#signin-status")).to_contain_text("created")
    # The login form is prefilled with the new username.
    expect(page.get_by_label("Username or email")).to_have_value(username)
    page.locator("#login-password").fill("Dashboard-e2e-1!")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#who")).to_contain_text(username)


def _create_stream(page: Page, title: str) -> tuple[str, str, str]:
    """Creates a stream in the console; returns its id, RTMP URL and key."""
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Create stream").click()
    key_input = page.locator("#ingest-stream-key")
    expect(key_input).to_have_value(re.compile(r"^sk_"))
    rtmp_url = page.locator("#ingest-rtmp-url").input_value()
    stream_key = key_input.input_value()
    row = page.locator("#my-streams tr", has_text=title)
    expect(row).to_have_count(1)
    stream_id = row.get_attribute("data-stream-id")
    assert stream_id and stream_id.startswith("st_")
    return stream_id, rtmp_url, stream_key


def test_broadcaster_creates_a_stream_publishes_and_a_viewer_watches_it(platform: Any, browser: Browser,
                                                                       page_errors: list[str]) -> None:
    dashboard = platform.urls["dashboard"]
    username = f"e2e_{secrets.token_hex(4)}"
    title = f"Dashboard e2e {username}"

    console = _open(browser, f"{dashboard}/#/console", page_errors)
    _sign_up_and_log_in(console, username)
    stream_id, rtmp_url, stream_key = _create_stream(console, title)
    assert rtmp_url == platform.urls["rtmp"]

    # Shown once: neither the console after a reload nor the stream's page carries the key again.
    console.reload()
    expect(console.locator("#my-streams tr", has_text=title)).to_have_count(1)
    expect(console.locator("#ingest-panel")).to_have_count(0)
    console.goto(f"{dashboard}/#/console/{stream_id}")
    expect(console.locator("#keys tr")).to_have_count(1)
    assert stream_key not in console.content()

    # The viewer arrives first, so only the socket's `stream.live` (or the slow poll) can start playback.
    viewer_console: list[str] = []
    viewer = _open(browser, f"{dashboard}/#/watch/{stream_id}", page_errors, viewer_console)
    expect(viewer.locator("#stream-status")).to_have_text("offline")
    # The subscription's acknowledgement carries the current count; publish only once it is confirmed, so
    # the `stream.live` push cannot go out before this page listens.
    expect(viewer.locator("#stream-events")).to_have_attribute("data-subscribed", "true")
    expect(viewer.locator("#viewer-count")).to_contain_text("0 viewers")

    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "ffmpeg.log"
        publisher = _publish(f"{rtmp_url}/{stream_key}", log)
        try:
            directory = _open(browser, f"{dashboard}/#/", page_errors)

            card = directory.locator(f'#directory [data-stream-id="{stream_id}"]')
            expect(card).to_be_visible(timeout=LIVE_TIMEOUT_MS)
            expect(card).to_contain_text(title)

            viewer.wait_for_function(
                "() => { const v = document.querySelector('#player'); return v && !v.paused && v.currentTime > 1; }",
                timeout=PLAYBACK_TIMEOUT_MS)
            started_at = viewer.evaluate("document.querySelector('#player').currentTime")
            # A function, not an expression string: the page's CSP forbids eval.
            viewer.wait_for_function("(t) => document.querySelector('#player').currentTime > t + 1.5",
                                     arg=started_at, timeout=UI_TIMEOUT_MS)
            assert viewer.locator("#player").get_attribute("data-hls-fatal") is None
            expect(viewer.locator("#stream-status")).to_have_text("live")
            # Pushed over the WebSocket by the fan-out of `Stream Live`.
            expect(viewer.locator("#stream-events")).to_contain_text("went live")
            # The player's heartbeats carry its viewer session's token, so they count: this page is one viewer.
            expect(viewer.locator("#viewer-count")).to_have_text("1 viewer", timeout=UI_TIMEOUT_MS)
        except (PlaywrightError, AssertionError) as error:
            state = viewer.evaluate(PLAYER_STATE)
            raise AssertionError(f"{error}\nplayer: {state}\nconsole: {viewer_console[-20:]}\n"
                                 f"ffmpeg said: {log.read_text(errors='replace')[-2000:]}") from error
        finally:
            publisher.terminate()
            publisher.wait(timeout=10)

    assert page_errors == []


def test_the_dashboard_serves_the_api_docs_itself(platform: Any, browser: Browser,
                                                   page_errors: list[str]) -> None:
    requests: list[str] = []
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(f"{platform.urls['dashboard']}/docs.html")
    # A function, not an expression string: the page's CSP forbids eval, which a polled expression needs.
    page.wait_for_function("() => document.querySelectorAll('.opblock').length >= 19")
    assert platform.urls["api"] in page.locator(".servers select").inner_text()
    assert "/v1/streams/{id}/keys/{key_id}" in page.content()
    assert not page_errors
    # Everything came from the dashboard's own origin: nothing from a third-party CDN.
    assert all(url.startswith(platform.urls["dashboard"]) for url in requests if not url.startswith("data:"))
    page.close()
