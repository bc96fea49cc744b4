"""Track rules: when a transcoder generation starts, with which tracks, and when a change starts a new one."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamforge_media.media import AccessUnit, Codec, MediaKind, PublisherHints, Track
from streamforge_media.tracks import Generation, Step, TrackRules, TrackSet

pytestmark = pytest.mark.unit

LANDSCAPE = Track(Codec.H264, b"sps-640x360", 640, 360)
PORTRAIT = Track(Codec.H264, b"sps-360x640", 360, 640)
HEVC = Track(Codec.HEVC, b"hvcc", 640, 360)
AAC = Track(Codec.AAC, b"\x11\x90", sample_rate=48000, channels=2)
AAC_44K = Track(Codec.AAC, b"\x12\x10", sample_rate=44100, channels=2)
BOTH = PublisherHints(frozenset({MediaKind.VIDEO, MediaKind.AUDIO}))


def video(t: int, key: bool = False, track: Track = LANDSCAPE) -> AccessUnit:
    return AccessUnit(track, t, t, key, b"v")


def audio(t: int, track: Track = AAC) -> AccessUnit:
    return AccessUnit(track, t, t, True, b"a")


def stream(start: int, end: int, *, fps: float = 30, gop_s: float = 2, with_audio: bool = True,
           video_track: Track | None = LANDSCAPE, audio_track: Track = AAC) -> list[AccessUnit]:
    """An encoder's interleaved output between two times (ms): keyframes every gop_s, AAC frames of 21.33 ms."""
    units = []
    if video_track is not None:
        n = 0
        while (t := start + round(n * 1000 / fps)) < end:
            units.append(video(t, key=n % round(fps * gop_s) == 0, track=video_track))
            n += 1
    if with_audio:
        n = 0
        while (t := start + round(n * 1024_000 / 48000)) < end:
            units.append(audio(t, audio_track))
            n += 1
    return sorted(units, key=lambda u: (u.dts_ms, u.kind != MediaKind.VIDEO))


def run(tracks: TrackSet, units: list[AccessUnit]) -> list[tuple[Generation | None, list[AccessUnit]]]:
    """Each started generation with the units fed to it (index 0: units fed before any start)."""
    fed: list[tuple[Generation | None, list[AccessUnit]]] = [(None, [])]
    for unit in units:
        step: Step = tracks.push(unit)
        if step.start is not None:
            fed.append((step.start, []))
        fed[-1][1].extend(step.units)
    return fed


def test_video_and_audio_start_together_at_a_keyframe_with_the_measured_frame_rate() -> None:
    fed = run(TrackSet(hints=BOTH), stream(0, 3000, fps=60))
    assert fed[0][1] == []
    (generation, units), = fed[1:]
    assert generation == Generation(LANDSCAPE, AAC, 60.0)
    assert units[0].kind is MediaKind.VIDEO and units[0].keyframe and units[0].dts_ms == 0
    assert {u.kind for u in units} == {MediaKind.VIDEO, MediaKind.AUDIO}


def test_audio_only_publisher_gets_an_audio_generation() -> None:
    announced = run(TrackSet(hints=PublisherHints(frozenset({MediaKind.AUDIO}))), stream(0, 1000, video_track=None))
    assert announced[1][0] == Generation(None, AAC, 0.0)
    assert announced[1][1][0].dts_ms == 0  # at once: the hints said audio only
    silent = run(TrackSet(), stream(0, 1000, video_track=None))
    assert silent[1][0] == Generation(None, AAC, 0.0)
    assert silent[1][1][-1].dts_ms >= TrackRules().probe_ms  # watched for video first, nothing lost
    assert silent[1][1][0].dts_ms == 0


def test_announced_track_that_never_comes_is_given_up_after_the_wait() -> None:
    fed = run(TrackSet(hints=BOTH), stream(0, 5000, with_audio=False))
    (generation, units), = fed[1:]
    assert generation == Generation(LANDSCAPE, None, 30.0)
    assert units[0].dts_ms == 2000  # the first keyframe after the 2 s wait
    assert fed[0][1] == []


def test_late_audio_starts_a_new_generation_at_the_next_keyframe_and_video_never_stops() -> None:
    video_only = PublisherHints(frozenset({MediaKind.VIDEO}))
    units = stream(0, 4000, with_audio=False) + stream(4000, 9000)
    fed = run(TrackSet(hints=video_only), sorted(units, key=lambda u: u.dts_ms))
    (first, first_units), (second, second_units) = fed[1:]
    assert first == Generation(LANDSCAPE, None, 30.0)
    assert second == Generation(LANDSCAPE, AAC, 30.0)
    assert all(u.kind is MediaKind.VIDEO for u in first_units)
    assert second_units[0].keyframe and second_units[0].dts_ms == 6000
    assert max(u.dts_ms for u in first_units) >= 5966  # the picture went on until the switch
    assert all(u.dts_ms >= 6000 for u in second_units)


def test_new_decoder_configuration_starts_a_new_ladder_generation() -> None:
    units = stream(0, 6000) + [u for u in stream(6000, 9000, video_track=PORTRAIT)]
    fed = run(TrackSet(hints=BOTH), units)
    assert [g.video for g, _ in fed[1:] if g is not None] == [LANDSCAPE, PORTRAIT]
    assert fed[2][1][0].track == PORTRAIT and fed[2][1][0].keyframe
    assert all(u.track in (LANDSCAPE, AAC) for u in fed[1][1])


def test_codec_change_and_audio_configuration_change() -> None:
    units = stream(0, 4000) + stream(4000, 8000, video_track=HEVC) + stream(8000, 12000, video_track=HEVC,
                                                                             audio_track=AAC_44K)
    fed = run(TrackSet(hints=BOTH), units)
    assert [(g.video, g.audio) for g, _ in fed[1:] if g is not None] == [(LANDSCAPE, AAC), (HEVC, AAC),
                                                                         (HEVC, AAC_44K)]
    # The video did not change: its rate is known, no new measurement.
    assert fed[3][0] is not None and fed[3][0].frame_rate == 30.0


def test_an_unchanged_configuration_resent_is_not_a_change() -> None:
    resent = Track(Codec.H264, b"sps-640x360", 640, 360)
    fed = run(TrackSet(hints=BOTH), stream(0, 3000) + stream(3000, 6000, video_track=resent))
    assert len(fed) == 2


def test_a_frame_before_any_keyframe_is_dropped() -> None:
    fed = run(TrackSet(hints=PublisherHints(frozenset({MediaKind.VIDEO}))),
              [video(t) for t in range(0, 300, 33)] + stream(300, 2000, with_audio=False))
    assert fed[1][1][0].dts_ms == 300


_TRACKS = st.sampled_from([LANDSCAPE, PORTRAIT, HEVC, AAC, AAC_44K])


@given(st.lists(st.tuples(_TRACKS, st.booleans()), min_size=1, max_size=300),
       st.sampled_from([None, BOTH, PublisherHints(frozenset({MediaKind.AUDIO}))]))
def test_any_sequence_feeds_each_generation_only_its_tracks_starting_at_a_keyframe(
        units: list[tuple[Track, bool]], hints: PublisherHints | None) -> None:
    tracks = TrackSet(hints=hints or PublisherHints())
    fed = run(tracks, [AccessUnit(track, 20 * i, 20 * i, key, b"") for i, (track, key) in enumerate(units)])
    assert fed[0][1] == []
    changes = sum(1 for (a, _), (b, _) in itertools.pairwise(units) if a != b)
    assert len(fed) - 1 <= changes + 1  # a generation per change at most: never a restart loop
    for (previous, _), (generation, fed_units) in itertools.pairwise(fed):
        assert generation is not None and generation != previous
        assert generation.video is not None or generation.audio is not None
        assert all(u.track == generation.track(u.kind) for u in fed_units)
        if generation.video is not None and fed_units:
            assert fed_units[0].kind is MediaKind.VIDEO and fed_units[0].keyframe
