from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from streamforge_media import hls, signalling
from streamforge_media.ladder import AUDIO_ONLY, DEFAULT_LADDER, Rendition, Rung, parse_ladder, select_renditions
from streamforge_media.segment_format import CMAF, TS

pytestmark = pytest.mark.unit


@given(st.integers(2, 4096), st.integers(2, 4096))
@example(160, 171)  # the long side rounded to even would pass the source's odd one
@example(171, 160)
def test_selection_properties(width: int, height: int) -> None:
    renditions = select_renditions(DEFAULT_LADDER, width, height)
    assert renditions
    short = min(width, height)
    for r in renditions:
        assert r.width % 2 == 0 and r.height % 2 == 0
        assert r.width <= max(width, 2) and r.height <= max(height, 2)  # never upscaled
        assert (r.width < r.height) == (width < height) or abs(r.width - r.height) <= 2  # orientation kept
    short_sides = [min(r.width, r.height) for r in renditions]
    assert short_sides == sorted(short_sides, reverse=True)
    kept = [rung for rung in DEFAULT_LADDER if rung.height <= short]
    if kept:
        assert short_sides == [rung.height for rung in kept]
        assert [r.name for r in renditions] == [rung.name for rung in kept]
    else:
        assert len(renditions) == 1
        assert (renditions[0].width, renditions[0].height) == (max(2, width - width % 2), max(2, height - height % 2))


@pytest.mark.parametrize(("size", "expected"), [
    ((360, 640), [("360p", 360, 640), ("160p", 160, 284)]),
    ((1080, 1920), [("1080p", 1080, 1920), ("720p", 720, 1280), ("480p", 480, 854), ("360p", 360, 640),
                    ("160p", 160, 284)]),
    ((720, 720), [("720p", 720, 720), ("480p", 480, 480), ("360p", 360, 360), ("160p", 160, 160)]),
])
def test_portrait_and_square_sources_are_laddered_by_the_short_side(
        size: tuple[int, int], expected: list[tuple[str, int, int]]) -> None:
    assert [(r.name, r.width, r.height) for r in select_renditions(DEFAULT_LADDER, *size)] == expected


def test_audio_only_master_declares_audio_only() -> None:
    text = hls.render_master([AUDIO_ONLY], fps=0.0, has_audio=True, fmt=TS)
    assert '#EXT-X-STREAM-INF:BANDWIDTH=140800,AVERAGE-BANDWIDTH=134400,CODECS="mp4a.40.2"\naudio/index.m3u8' in text
    assert "RESOLUTION" not in text
    cmaf = hls.render_master([AUDIO_ONLY], fps=0.0, has_audio=True, fmt=CMAF)
    assert '#EXT-X-STREAM-INF:BANDWIDTH=134400,AVERAGE-BANDWIDTH=130560,CODECS="mp4a.40.2"\naudio/index.m3u8' in cmaf
    assert "EXT-X-MEDIA" not in cmaf and "#EXT-X-VERSION:7" in cmaf


@pytest.mark.parametrize(("size", "expected"), [
    ((1280, 720), ["720p", "480p", "360p", "160p"]),
    ((1920, 1080), ["1080p", "720p", "480p", "360p", "160p"]),
    ((641, 361), ["360p", "160p"]),
    ((1279, 719), ["480p", "360p", "160p"]),
])
def test_default_ladder(size: tuple[int, int], expected: list[str]) -> None:
    assert [r.name for r in select_renditions(DEFAULT_LADDER, *size)] == expected


def test_720p_widths() -> None:
    assert select_renditions(DEFAULT_LADDER, 1280, 720)[0] == Rendition("720p", 1280, 720, 3000)
    assert select_renditions(DEFAULT_LADDER, 1280, 720)[-1] == Rendition("160p", 284, 160, 250)


def test_tiny_odd_source_gets_one_even_rung() -> None:
    (only,) = select_renditions(DEFAULT_LADDER, 177, 99)
    assert (only.width, only.height) == (176, 98)
    assert 50 <= only.bitrate_kbps <= 250


def test_parse_ladder_from_json() -> None:
    ladder = parse_ladder('[{"name": "360p", "height": 360, "bitrate_kbps": 700},'
                          ' {"name": "720p", "height": 720, "bitrate_kbps": 3000}]')
    assert ladder == (Rung("720p", 720, 3000), Rung("360p", 360, 700))


@pytest.mark.parametrize("text", ["[]", "{}", '[{"name": "a/b", "height": 360, "bitrate_kbps": 700}]',
                                  '[{"name": "x", "height": 5, "bitrate_kbps": 700}]',
                                  '[{"name": "x", "height": 360, "bitrate_kbps": 700}, '
                                  '{"name": "x", "height": 240, "bitrate_kbps": 300}]'])
def test_parse_ladder_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ladder(text)


def test_master_playlist_figures() -> None:
    text = hls.render_master(select_renditions(DEFAULT_LADDER, 1280, 720), fps=30.0, has_audio=True, fmt=TS)
    assert "#EXT-X-STREAM-INF:BANDWIDTH=3770800,AVERAGE-BANDWIDTH=3284400,RESOLUTION=1280x720" in text
    assert 'CODECS="avc1.64001f,mp4a.40.2"' in text  # High@3.1 for 720p30
    assert "720p/index.m3u8" in text and "EXT-X-MEDIA" not in text


def test_cmaf_master_names_the_audio_rendition_from_every_variant() -> None:
    ladder = (*select_renditions(DEFAULT_LADDER, 1280, 720), AUDIO_ONLY)
    text = hls.render_master(ladder, fps=30.0, has_audio=True, fmt=CMAF)
    lines = text.splitlines()
    assert lines[1] == "#EXT-X-VERSION:7"
    media = [line for line in lines if line.startswith("#EXT-X-MEDIA:")]
    assert media == ['#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",'
                     'URI="audio/index.m3u8"']
    variants = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(variants) == 4 and all(v.endswith(',AUDIO="audio"') for v in variants)
    # The audio's 128k counted in every variant, with fMP4's smaller overhead than MPEG-TS's.
    assert variants[0].startswith("#EXT-X-STREAM-INF:BANDWIDTH=3599400,AVERAGE-BANDWIDTH=3190560,"
                                  "RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"")
    assert "audio/index.m3u8\n" not in text.split("#EXT-X-STREAM-INF")[1]  # not a variant of its own


@pytest.mark.parametrize(("size", "fps", "level"), [
    ((1920, 1080), 30.0, 40), ((1920, 1080), 60.0, 42), ((1280, 720), 60.0, 32), ((640, 360), 30.0, 30)])
def test_avc_level(size: tuple[int, int], fps: float, level: int) -> None:
    assert signalling.avc_level(*size, fps) == level


def test_media_playlist_rendering() -> None:
    text = hls.render_media_playlist([hls.PlaylistEntry("a.ts", 2.0), hls.PlaylistEntry("b.ts", 2.002, True)],
                                     target=hls.target_duration([2.0, 2.002]), media_sequence=7,
                                     discontinuity_sequence=1, ended=True)
    assert "#EXT-X-TARGETDURATION:2" in text and "#EXT-X-MEDIA-SEQUENCE:7" in text
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in text
    assert text.index("#EXT-X-DISCONTINUITY\n") < text.index("b.ts")
    assert text.endswith("#EXT-X-ENDLIST\n")
    assert [s.uri for s in hls.parse_media_playlist(text)] == ["a.ts", "b.ts"]
