"""Codec parsers against what real encoders write: libx264, libx265, ffmpeg's AAC encoder and FLV muxer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamforge_media.codecs import aac, h264, hevc, nal, video_track
from streamforge_media.codecs.frame_rate import estimate_frame_rate
from streamforge_media.media import Codec, Track

from tests.component.media.media_samples import ffmpeg, lavfi_audio, lavfi_video, needs_ffmpeg, parse_flv

pytestmark = pytest.mark.component


def parameter_sets(stream: bytes, types: dict[int, str], type_of: Callable[[bytes], int]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for unit in nal.split_annexb(stream):
        name = types.get(type_of(unit))
        if name and name not in found:
            found[name] = unit
    return found


def encode_hevc(width: int, height: int, pix_fmt: str = "yuv420p", params: str = "",
                frames: int = 1) -> dict[str, bytes]:
    x265 = "log-level=error" + (f":{params}" if params else "")
    out = ffmpeg(*lavfi_video(width, height, 30, 1), "-frames:v", str(frames), "-pix_fmt", pix_fmt,
                 "-c:v", "libx265", "-x265-params", x265, "-f", "hevc", "-")
    return parameter_sets(out, {32: "vps", 33: "sps", 34: "pps"}, hevc.nal_type)


def encode_h264(width: int, height: int, profile: str) -> dict[str, bytes]:
    out = ffmpeg(*lavfi_video(width, height, 30, 1), "-frames:v", "1", "-pix_fmt", "yuv420p",
                 "-c:v", "libx264", "-profile:v", profile, "-f", "h264", "-")
    return parameter_sets(out, {7: "sps", 8: "pps"}, lambda n: n[0] & 0x1F)


HEVC_CASES = [
    # width, height, pix_fmt, profile_idc (1 Main, 2 Main 10, 4 range extensions), chroma_format_idc, bit depth
    (320, 240, "yuv420p", 1, 1, 8),
    (322, 182, "yuv420p", 1, 1, 8),  # not a multiple of the 8-pixel minimum CU: conformance window
    (854, 480, "yuv420p", 1, 1, 8),
    (180, 320, "yuv420p", 1, 1, 8),  # portrait
    (1080, 1920, "yuv420p", 1, 1, 8),  # portrait, 1920 = 240 CUs of 8 but 1080 needs a window
    (321, 181, "yuv444p", 4, 3, 8),  # odd sizes: the window's unit is one sample in 4:4:4
    (322, 181, "yuv422p", 4, 2, 8),  # 4:2:2: 2 horizontal, 1 vertical
    (321, 181, "gray", 4, 0, 8),  # monochrome
    (1920, 1080, "yuv420p10le", 2, 1, 10),
]


@needs_ffmpeg
@pytest.mark.parametrize(("width", "height", "pix_fmt", "profile", "chroma", "depth"), HEVC_CASES)
def test_hevc_sps_from_libx265(width: int, height: int, pix_fmt: str, profile: int, chroma: int, depth: int) -> None:
    sets = encode_hevc(width, height, pix_fmt)
    info = hevc.parse_sps(sets["sps"])
    assert (info.width, info.height) == (width, height)
    assert (info.profile_idc, info.chroma_format_idc, info.bit_depth_luma, info.bit_depth_chroma) == (
        profile, chroma, depth, depth)
    assert info.max_sub_layers == 1 and info.level_idc > 0 and not info.high_tier
    record = hevc.decoder_config_from_parameter_sets(sets["vps"], sets["sps"], sets["pps"])
    assert hevc.decoder_config_size(record) == (width, height)
    assert hevc.nal_length_size(record) == 4
    assert hevc.parameter_sets(record) == [(32, sets["vps"]), (33, sets["sps"]), (34, sets["pps"])]
    # The profile_tier_level bytes are copied as the SPS has them (§8.3.3.1.2).
    assert record[1:13] == h264.unescape_rbsp(sets["sps"][2:])[1:13]
    assert video_track(Codec.HEVC, record) == Track(Codec.HEVC, record, width=width, height=height)


@needs_ffmpeg
def test_hevc_sps_with_temporal_sub_layers() -> None:
    """libx265's temporal layers give sps_max_sub_layers_minus1 = 1: the profile_tier_level sub-layer part."""
    sets = encode_hevc(426, 240, params="temporal-layers=1", frames=4)
    info = hevc.parse_sps(sets["sps"])
    assert info.max_sub_layers == 2
    assert (info.width, info.height) == (426, 240)
    record = hevc.decoder_config_from_parameter_sets(sets["vps"], sets["sps"], sets["pps"])
    assert (record[21] >> 3) & 0x07 == 2  # numTemporalLayers


@needs_ffmpeg
@pytest.mark.parametrize(("width", "height", "profile"), [
    (640, 360, "baseline"), (322, 182, "main"), (1080, 1920, "high"), (176, 144, "high")])
def test_h264_record_from_parameter_sets(width: int, height: int, profile: str) -> None:
    sets = encode_h264(width, height, profile)
    record = h264.decoder_config_from_parameter_sets(sets["sps"], sets["pps"])
    assert h264.decoder_config_size(record) == (width, height)
    assert h264.nal_length_size(record) == 4
    assert h264.first_sps(record) == sets["sps"]
    assert video_track(Codec.H264, record, frame_rate=30.0) == Track(
        Codec.H264, record, width=width, height=height, frame_rate=30.0)


@needs_ffmpeg
def test_h264_record_matches_ffmpegs() -> None:
    """The record built from in-band parameter sets is the one ffmpeg's own muxer writes (high profile:
    with the chroma format / bit depth extension)."""
    flv = ffmpeg(*lavfi_video(320, 240, 25, 0.2), "-c:v", "libx264", "-profile:v", "high", "-f", "flv", "-")
    media = parse_flv(flv)
    assert media.video is not None
    ffmpeg_record = media.video.config
    pps = ffmpeg_record[8 + len(h264.first_sps(ffmpeg_record)) + 3:][:ffmpeg_record[
        8 + len(h264.first_sps(ffmpeg_record)) + 2]]
    assert h264.decoder_config_from_parameter_sets(h264.first_sps(ffmpeg_record), pps) == ffmpeg_record
    assert (media.video.width, media.video.height) == (320, 240)


@needs_ffmpeg
@pytest.mark.parametrize(("sample_rate", "channels"), [(44100, 2), (48000, 1), (22050, 2), (8000, 1)])
def test_asc_from_ffmpeg(sample_rate: int, channels: int) -> None:
    flv = ffmpeg(*lavfi_audio(sample_rate, channels, 0.1), "-c:a", "aac", "-f", "flv", "-")
    track = parse_flv(flv).audio
    assert track is not None
    assert (track.sample_rate, track.channels) == (sample_rate, channels)
    assert aac.parse_audio_specific_config(track.config) == aac.AudioSpecificConfig(2, sample_rate, channels)
    # ffmpeg follows the two header bytes with a backward-compatible SBR sync extension.
    assert track.config.startswith(aac.audio_specific_config(2, sample_rate, channels))


@needs_ffmpeg
@pytest.mark.parametrize("rate", [25, 30, 60])
def test_frame_rate_of_ffmpeg_muxed_timestamps(rate: int) -> None:
    flv = ffmpeg(*lavfi_video(64, 64, rate, 0.5), "-c:v", "libx264", "-bf", "2", "-f", "flv", "-")
    assert estimate_frame_rate([u.dts_ms for u in parse_flv(flv).units]) == rate
