"""The timestamp normaliser: monotonic per track, jumps and resets absorbed, wraparound, A/V kept aligned."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamforge_media.media import AccessUnit, Codec, Track
from streamforge_media.timestamps import DEFAULT_JUMP_THRESHOLD_MS, TimestampNormaliser

pytestmark = pytest.mark.unit

VIDEO = Track(Codec.H264, b"v", 640, 360)
AUDIO = Track(Codec.AAC, b"a", sample_rate=48000, channels=2)


def unit(track: Track, dts: int, cts: int = 0) -> AccessUnit:
    return AccessUnit(track, dts, dts + cts, True, b"")


def av_units(start: int, seconds: float, *, video_step: int = 33, audio_step: int = 21) -> list[AccessUnit]:
    """Video and audio units interleaved by timestamp, as an encoder sends them."""
    end = start + int(seconds * 1000)
    units = [unit(VIDEO, t) for t in range(start, end, video_step)]
    units += [unit(AUDIO, t) for t in range(start, end, audio_step)]
    return sorted(units, key=lambda u: (u.dts_ms, u.kind != "video"))


def normalise(units: list[AccessUnit]) -> tuple[list[AccessUnit], TimestampNormaliser]:
    normaliser = TimestampNormaliser()
    return [normaliser.normalise(u) for u in units], normaliser


def test_first_unit_lands_at_zero_and_steady_stream_keeps_its_spacing() -> None:
    out, n = normalise(av_units(90_000, 4))
    assert out[0].dts_ms == 0
    assert [u.dts_ms for u in out] == [u.dts_ms - 90_000 for u in av_units(90_000, 4)]
    assert n.discontinuities == 0


def test_forward_jump_becomes_a_discontinuity_not_dead_air() -> None:
    before = av_units(0, 8)
    after = [unit(u.track, u.dts_ms + 300_000) for u in av_units(8000, 8)]
    out, n = normalise(before + after)
    assert n.discontinuities == 2  # each track is re-based once
    assert max(u.dts_ms for u in out) < 16_100  # 16 s published: 16 s of timeline, not 316 s
    video = [u.dts_ms for u in out if u.kind == "video"]
    audio = [u.dts_ms for u in out if u.kind == "audio"]
    assert abs(video[-1] - audio[-1]) < 100  # still aligned after the jump


def test_reset_to_zero_and_32_bit_wraparound_continue_the_clock() -> None:
    reset = av_units(50_000, 3) + av_units(0, 3)
    wrap = [unit(u.track, (u.dts_ms + 2**32 - 1500) % 2**32) for u in av_units(0, 3)]
    for units in (reset, wrap):
        out, _ = normalise(units)
        video = [u.dts_ms for u in out if u.kind == "video"]
        assert video == sorted(set(video))
        assert video[-1] < 6_100


def test_late_track_is_placed_on_the_running_clock() -> None:
    video = [unit(VIDEO, t) for t in range(10_000, 14_000, 33)]
    audio = [unit(AUDIO, t) for t in range(14_000, 15_000, 21)]
    mixed = sorted(video + [unit(VIDEO, t) for t in range(14_000, 15_000, 33)] + audio, key=lambda u: u.dts_ms)
    out, n = normalise(mixed)
    first_audio = next(u for u in out if u.kind == "audio")
    assert first_audio.dts_ms == 4000  # where its timestamp says, relative to the video
    assert n.discontinuities == 0


def test_small_backward_jitter_is_absorbed_without_a_discontinuity() -> None:
    out, n = normalise([unit(VIDEO, t) for t in (0, 33, 67, 65, 100, 133)])
    assert [u.dts_ms for u in out] == [0, 33, 67, 68, 100, 133]
    assert n.discontinuities == 0


def test_composition_offset_is_kept() -> None:
    out, _ = normalise([unit(VIDEO, 1000, 0), unit(VIDEO, 1033, 66), unit(VIDEO, 1066, 33)])
    assert [u.pts_ms - u.dts_ms for u in out] == [0, 66, 33]


@given(st.lists(st.tuples(st.booleans(), st.integers(-(2**33), 2**33)), min_size=1, max_size=200))
def test_any_input_is_strictly_increasing_per_track(raw: list[tuple[bool, int]]) -> None:
    out, _ = normalise([unit(VIDEO if is_video else AUDIO, ts) for is_video, ts in raw])
    for kind in ("video", "audio"):
        series = [u.dts_ms for u in out if u.kind == kind]
        assert all(b > a for a, b in itertools.pairwise(series))
        assert all(u.pts_ms >= u.dts_ms for u in out)


@given(st.lists(st.integers(1, 200), min_size=2, max_size=200), st.integers(0, 2**32))
def test_steps_within_threshold_are_kept_exactly(steps: list[int], start: int) -> None:
    stamps = [start]
    for step in steps:
        stamps.append(stamps[-1] + step)
    out, n = normalise([unit(VIDEO, t) for t in stamps])
    assert [u.dts_ms for u in out] == [t - start for t in stamps]
    assert n.discontinuities == 0


@given(st.integers(DEFAULT_JUMP_THRESHOLD_MS + 34, 10**9), st.booleans())
def test_any_jump_beyond_threshold_is_absorbed(jump: int, backwards: bool) -> None:
    stamps = [10**9 + frame * 33 + (0 if frame < 30 else -jump if backwards else jump) for frame in range(59)]
    out, n = normalise([unit(VIDEO, t) for t in stamps])
    assert n.discontinuities == 1
    assert out[-1].dts_ms == 58 * 33  # the jump costs nothing: frame 58 is still at 58 frames
