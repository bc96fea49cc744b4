"""The LL-HLS playlist renderer and blocking rules (RFC 8216bis §4.4.3.7-8, §4.4.4.9, §4.4.5.2, §6.2.5.2)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from streamforge_media.packaging import llhls
from streamforge_media.transcode.pipeline import EncoderSettings, tee_target

pytestmark = pytest.mark.unit
T = TypeVar("T")

PART_S = 14 / 30  # 30 fps cut as the transcoder cuts it


def video_rendition(parts: int, *, part_target_s: float = 0.5) -> llhls.LowLatencyRendition:
    """`parts` parts of a 30 fps rung: a keyframe (an independent part) every 2 s, a part every 14 frames."""
    rendition = llhls.LowLatencyRendition("720p", part_target_s=part_target_s, segment_s=2.0)
    media_s = 0.0
    for _ in range(parts):
        keyframe = media_s % 2.0 < 1e-9 or 2.0 - media_s % 2.0 < 1e-9
        until_key = 2.0 - media_s % 2.0 if not keyframe else 2.0
        duration = min(PART_S, until_key)
        rendition.add_part(0, b"init", b"part", duration_s=duration, independent=keyframe,
                           wall_clock_s=1_700_000_000 + media_s)
        media_s = round(media_s + duration, 9)
    return rendition


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def attributes(line: str) -> dict[str, str]:
    return dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))


def test_playlist_invariants() -> None:
    async def scenario() -> str | None:
        return llhls.render_playlist(video_rendition(40), {"480p": llhls.PlaylistPosition(9, 2)})
    text = run(scenario())
    assert isinstance(text, str)
    lines = text.splitlines()
    target = float(attributes(next(x for x in lines if x.startswith("#EXT-X-PART-INF")))["PART-TARGET"])
    control = attributes(next(x for x in lines if x.startswith("#EXT-X-SERVER-CONTROL")))
    assert control["CAN-BLOCK-RELOAD"] == "YES"
    assert float(control["PART-HOLD-BACK"]) >= 3 * target
    parts = [attributes(x) for x in lines if x.startswith("#EXT-X-PART:")]
    assert parts and all(float(p["DURATION"]) <= target for p in parts)
    # The first part after each complete segment (and the first listed) starts a segment: independent.
    firsts = [i + 1 for i, x in enumerate(lines) if not x.startswith("#") and i + 1 < len(lines)]
    first_parts = [lines[next(j for j in range(i, len(lines)) if lines[j].startswith("#EXT-X-PART:"))]
                   for i in firsts if any(x.startswith("#EXT-X-PART:") for x in lines[i:])]
    first_parts.append(next(x for x in lines if x.startswith("#EXT-X-PART:")))
    assert all("INDEPENDENT=YES" in x for x in first_parts)
    assert sum("INDEPENDENT=YES" in x for x in lines) < len(parts)  # not every part
    assert lines[-2].startswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p40.m4s"')
    assert lines[-1] == '#EXT-X-RENDITION-REPORT:URI="../480p/index.m3u8",LAST-MSN=9,LAST-PART=2'
    # Segments group 4-5 parts at keyframes: 2 s each, numbered from the window's first.
    durations = [float(x[len("#EXTINF:"):-1]) for x in lines if x.startswith("#EXTINF:")]
    assert durations and all(d == pytest.approx(2.0, abs=1e-3) for d in durations)
    assert "#EXT-X-TARGETDURATION:2" in lines


def test_preload_hint_present_from_the_first_part_and_endlist_at_the_end() -> None:
    async def scenario() -> tuple[str | None, str | None, str | None]:
        rendition = llhls.LowLatencyRendition("audio", part_target_s=0.5, segment_s=2.0)
        empty = llhls.render_playlist(rendition, {})
        rendition.add_part(0, b"i", b"p", duration_s=0.49, independent=True, wall_clock_s=0.0)
        live = llhls.render_playlist(rendition, {})
        rendition.end()
        return empty, live, llhls.render_playlist(rendition, {})
    empty, live, ended = run(scenario())
    assert empty is None
    assert live is not None and '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p1.m4s"' in live
    assert ended is not None and ended.endswith("#EXT-X-ENDLIST\n") and "PRELOAD-HINT" not in ended


def test_a_part_longer_than_the_target_is_refused() -> None:
    async def scenario() -> None:
        rendition = video_rendition(3)
        before = llhls.render_playlist(rendition, {})
        with pytest.raises(ValueError, match="longer than PART-TARGET"):
            rendition.add_part(0, b"i", b"p", duration_s=0.6, independent=False, wall_clock_s=0.0)
        assert llhls.render_playlist(rendition, {}) == before
    run(scenario())


@pytest.mark.parametrize(("query", "status"), [
    ({"_HLS_msn": "5"}, None), ({"_HLS_msn": "6"}, 400), ({"_HLS_msn": "5", "_HLS_part": "9"}, None),
    ({"_HLS_part": "1"}, 400), ({"_HLS_msn": "-1"}, 400), ({"_HLS_msn": "x"}, 400)])
def test_blocking_request_rules(query: dict[str, str], status: int | None) -> None:
    async def scenario() -> int | None:
        rendition = video_rendition(21)  # 5 parts a segment: 0-3 complete, 4 has begun
        assert rendition.position == llhls.PlaylistPosition(4, 0)
        try:
            llhls.BlockingRequest.from_query(query).check(rendition)
        except llhls.BadRequest:
            return 400
        return None
    assert run(scenario()) == status


def test_has_follows_the_spec_for_later_segments() -> None:
    async def scenario() -> None:
        rendition = video_rendition(6)  # segment 0: parts 0-4, complete; segment 1: part 0
        assert rendition.has(0, None) and rendition.has(0, 7)  # a complete segment has every part asked
        assert rendition.has(1, 0) and not rendition.has(1, 1) and not rendition.has(1, None)
    run(scenario())


def test_a_blocked_wait_returns_when_the_part_arrives_and_times_out_otherwise() -> None:
    async def scenario() -> None:
        rendition = video_rendition(2)
        loop = asyncio.get_running_loop()
        request = llhls.BlockingRequest(0, 2)
        waiter = asyncio.create_task(rendition.wait_for(lambda: request.ready(rendition), 5.0))
        await asyncio.sleep(0)
        assert not waiter.done()
        rendition.add_part(0, b"i", b"p", duration_s=PART_S, independent=False, wall_clock_s=0.0)
        assert await asyncio.wait_for(waiter, 0.1)
        started = loop.time()
        assert not await rendition.wait_for(lambda: llhls.BlockingRequest(0, 9).ready(rendition), 0.2)
        assert loop.time() - started == pytest.approx(0.2, abs=0.1)
    run(scenario())


def test_fragment_durations_stay_under_the_part_target() -> None:
    settings = EncoderSettings(part_target_s=0.5)
    for frame_s in (1 / 60, 1 / 30, 1 / 25, 1 / 24, 1 / 5, 1024 / 48000):
        limit = settings.fragment_us(frame_s) / 1e6
        frames = 1
        while frames * frame_s < limit:
            frames += 1
        assert frames * frame_s <= 0.5 + 1e-9, frame_s


def test_tee_target_escapes_paths_and_values() -> None:
    target = tee_target([({"f": "hls", "hls_time": "2"}, "/tmp/a:b/index.m3u8"), ({"f": "mp4"}, "pipe:5")])
    assert target == r"[f=hls:hls_time=2]/tmp/a\:b/index.m3u8|[f=mp4]pipe\:5"
