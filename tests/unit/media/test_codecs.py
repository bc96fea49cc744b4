"""The codecs package: parameter set and decoder configuration parsers against real libx264 / libx265 / ffmpeg
AAC output, round trips of what it builds, NAL framing, the frame rate estimate, and Track construction."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamforge_media.codecs import CodecError, aac, audio_track, h264, hevc, nal, video_track
from streamforge_media.codecs.bits import BitWriter
from streamforge_media.codecs.frame_rate import COMMON_RATES, estimate_frame_rate
from streamforge_media.media import Codec, Track

pytestmark = pytest.mark.unit

fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- HEVC ------------------------------------------------------------------------------------------------

def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation prevention bytes (H.265 §7.4.2): no 00 00 0x (x <= 3) may appear."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def write_ue(w: BitWriter, value: int) -> None:
    code = value + 1
    w.bits(code.bit_length() - 1, 0)
    w.bits(code.bit_length(), code)


@st.composite
def hevc_sps(draw: st.DrawFn) -> tuple[bytes, dict[str, int]]:
    """A synthetic SPS prefix (up to the bit depths, then trailing bits) and the values it encodes."""
    sub_layers = draw(st.integers(0, 6))
    chroma = draw(st.integers(0, 3))
    separate = chroma == 3 and draw(st.booleans())
    sub_w, sub_h = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}[0 if separate else chroma]
    width, height = draw(st.integers(1, 8192)), draw(st.integers(1, 8192))
    window = draw(st.none() | st.tuples(*[st.integers(0, 64)] * 4))
    depth = draw(st.integers(8, 16))
    w = BitWriter()
    w.bits(4, 0)
    w.bits(3, sub_layers)
    w.bits(1, 1)
    w.bits(2, 0)
    w.bits(1, draw(st.booleans()))
    w.bits(5, profile := draw(st.integers(0, 31)))
    w.bits(32, draw(st.integers(0, 2**32 - 1)))
    w.bits(48, draw(st.integers(0, 2**48 - 1)))
    w.bits(8, level := draw(st.integers(0, 255)))
    flags = [(draw(st.booleans()), draw(st.booleans())) for _ in range(sub_layers)]
    for profile_present, level_present in flags:
        w.bits(1, profile_present)
        w.bits(1, level_present)
    if sub_layers:
        w.bits(2 * (8 - sub_layers), 0)
    for profile_present, level_present in flags:
        if profile_present:
            w.bits(88, draw(st.integers(0, 2**88 - 1)))
        if level_present:
            w.bits(8, draw(st.integers(0, 255)))
    write_ue(w, draw(st.integers(0, 15)))
    write_ue(w, chroma)
    if chroma == 3:
        w.bits(1, separate)
    coded_w = width + sub_w * (window[0] + window[1] if window else 0)
    coded_h = height + sub_h * (window[2] + window[3] if window else 0)
    write_ue(w, coded_w)
    write_ue(w, coded_h)
    w.bits(1, window is not None)
    for offset in window or ():
        write_ue(w, offset)
    write_ue(w, depth - 8)
    write_ue(w, depth - 8)
    w.bits(1, 1)  # rbsp_stop_one_bit
    return b"\x42\x01" + escape_rbsp(w.getvalue()), {
        "width": width, "height": height, "chroma": chroma, "depth": depth, "profile": profile, "level": level,
        "sub_layers": sub_layers + 1}


@fuzz
@given(hevc_sps())
def test_hevc_sps_round_trip(case: tuple[bytes, dict[str, int]]) -> None:
    sps, expected = case
    info = hevc.parse_sps(sps)
    assert {"width": info.width, "height": info.height, "chroma": info.chroma_format_idc,
            "depth": info.bit_depth_luma, "profile": info.profile_idc, "level": info.level_idc,
            "sub_layers": info.max_sub_layers} == expected


@fuzz
@given(st.binary(max_size=64), st.sampled_from([b"", b"\x42\x01", b"\x42\x01\x01"]))
def test_hevc_parsers_raise_only_codec_errors(data: bytes, prefix: bytes) -> None:
    for parse in (hevc.parse_sps, hevc.decoder_config_size, hevc.parameter_sets, hevc.nal_length_size):
        with contextlib.suppress(hevc.HevcError):
            parse(prefix + data)


@fuzz
@given(st.binary(max_size=200))
def test_hevc_record_parsers_raise_only_codec_errors(tail: bytes) -> None:
    with contextlib.suppress(hevc.HevcError):
        hevc.decoder_config_size(b"\x01" + bytes(21) + tail)


@pytest.mark.parametrize("record", [
    b"", b"\x01" + bytes(21),  # short header
    b"\x00" + bytes(22),  # configurationVersion 0 (an Annex B start code would look like this)
    b"\x01" + bytes(21) + b"\x01\xa1\x00\x01\x00\x10",  # SPS array with a truncated unit
    b"\x01" + bytes(21) + b"\x00",  # no arrays: no SPS
])
def test_bad_hevc_records_raise(record: bytes) -> None:
    with pytest.raises(hevc.HevcError):
        hevc.decoder_config_size(record)


def test_hevc_length_size_rewrite() -> None:
    record = b"\x01" + bytes(20) + b"\x0d\x00"  # 2 temporal layers, nested, 2-byte lengths
    assert hevc.nal_length_size(record) == 2
    relabelled = hevc.with_nal_length_size(record)
    assert hevc.nal_length_size(relabelled) == 4 and relabelled[21] == 0x0F
    with pytest.raises(hevc.HevcError):
        hevc.with_nal_length_size(record, 3)


# --- H.264 -----------------------------------------------------------------------------------------------

def test_h264_length_size() -> None:
    record = bytes([1, 0x42, 0, 0x1E, 0xFD, 0xE1])  # 2-byte lengths
    assert h264.nal_length_size(record) == 2
    assert h264.nal_length_size(h264.with_nal_length_size(record)) == 4
    with pytest.raises(h264.H264Error):
        h264.nal_length_size(bytes([1, 0x42, 0, 0x1E, 0xFE, 0xE1]))  # lengthSizeMinusOne 2 is forbidden
    with pytest.raises(h264.H264Error):
        h264.nal_length_size(b"\x00\x00\x00\x01\x67")


@pytest.mark.parametrize("record", [
    b"", bytes([1, 0x64, 0, 0x1F]),  # short
    bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64]),  # truncated SPS
    bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 3, 0x68, 0, 0]),  # PPS, not SPS
    bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE0]),  # no SPS
    bytes([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1F]),  # a whole video tag body, not a record
])
def test_bad_h264_records_raise(record: bytes) -> None:
    with pytest.raises(h264.H264Error):
        h264.decoder_config_size(record)


def test_h264_record_needs_an_sps_and_a_pps() -> None:
    with pytest.raises(h264.H264Error):
        h264.decoder_config_from_parameter_sets(b"\x68\xce\x3c\x80", b"\x68\xce\x3c\x80")
    with pytest.raises(CodecError):
        h264.decoder_config_from_parameter_sets(b"\x67\x42\x00\x1e\xab\x40\x50\x1e\xd0", b"\x65\x88")


@fuzz
@given(st.binary(max_size=64), st.sampled_from([b"", b"\x67", b"\x67\x64\x00\x1f", b"\x01\x64\x00\x1f\xff\xe1"]))
def test_h264_parsers_raise_only_codec_errors(data: bytes, prefix: bytes) -> None:
    for parse in (h264.parse_sps, h264.decoder_config_size, h264.nal_length_size):
        with contextlib.suppress(h264.H264Error):
            parse(prefix + data)


# --- AAC -------------------------------------------------------------------------------------------------

def asc_bits(*fields: tuple[int, int]) -> bytes:
    w = BitWriter()
    for count, value in fields:
        w.bits(count, value)
    return w.getvalue()


@pytest.mark.parametrize(("data", "expected"), [
    (bytes([0x12, 0x10]), (2, 44100, 2)),
    (bytes([0x11, 0x88]), (2, 48000, 1)),
    (asc_bits((5, 2), (4, 15), (24, 44000), (4, 2)), (2, 44000, 2)),  # explicit frequency
    (asc_bits((5, 31), (6, 10), (4, 3), (4, 1)), (42, 48000, 1)),  # object type escape: 32 + 10 (USAC)
    (asc_bits((5, 5), (4, 6), (4, 2), (4, 3), (5, 2)), (5, 48000, 2)),  # explicit SBR: 24 kHz core, 48 kHz out
    (asc_bits((5, 29), (4, 6), (4, 1), (4, 3), (5, 2)), (29, 48000, 2)),  # PS: mono core, stereo out
    (asc_bits((5, 2), (4, 3), (4, 7)), (2, 48000, 8)),  # 7.1
    (asc_bits((5, 2), (4, 3), (4, 0)), (2, 48000, 0)),  # program config element: channels unknown here
])
def test_asc_values(data: bytes, expected: tuple[int, int, int]) -> None:
    assert aac.parse_audio_specific_config(data) == aac.AudioSpecificConfig(*expected)


@pytest.mark.parametrize("data", [
    b"", b"\x12", bytes([0x00, 0x10]),  # truncated; object type 0
    asc_bits((5, 2), (4, 13), (4, 2)),  # reserved frequency index
    asc_bits((5, 2), (4, 15), (8, 1)),  # explicit frequency truncated
    asc_bits((5, 2), (4, 3), (4, 9)),  # reserved channel configuration
])
def test_bad_asc_raises(data: bytes) -> None:
    with pytest.raises(aac.AacError):
        aac.parse_audio_specific_config(data)


@fuzz
@given(st.integers(1, 95).filter(lambda t: t not in (5, 29, 31)),
       st.sampled_from(aac.SAMPLE_RATES) | st.integers(1, 2**24 - 1),
       st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 24]))
def test_asc_round_trip(object_type: int, sample_rate: int, channels: int) -> None:
    data = aac.audio_specific_config(object_type, sample_rate, channels)
    assert aac.parse_audio_specific_config(data) == aac.AudioSpecificConfig(object_type, sample_rate, channels)


@pytest.mark.parametrize(("object_type", "sample_rate", "channels"), [
    (0, 44100, 2), (5, 44100, 2), (31, 44100, 2), (96, 44100, 2), (2, 0, 2), (2, 2**24, 2), (2, 44100, 0),
    (2, 44100, 9)])
def test_asc_unwritable_values_raise(object_type: int, sample_rate: int, channels: int) -> None:
    with pytest.raises(aac.AacError):
        aac.audio_specific_config(object_type, sample_rate, channels)


@fuzz
@given(st.binary(max_size=16))
def test_asc_parser_raises_only_codec_errors(data: bytes) -> None:
    try:
        asc = aac.parse_audio_specific_config(data)
    except aac.AacError:
        return
    assert asc.object_type > 0 and asc.sample_rate > 0 and asc.channels >= 0


# --- NAL framing ------------------------------------------------------------------------------------------

# NAL units as they appear in a stream: emulation-prevented (no 00 00 0x, x <= 3), never ending in 00.
nal_units = st.binary(min_size=1, max_size=40).map(lambda b: escape_rbsp(b + b"\x80"))


def test_split_annexb_start_codes() -> None:
    stream = b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x00\x01\x65\x88\x84\x00\x00"
    assert nal.split_annexb(stream) == [b"\x67\x42", b"\x68\xce", b"\x65\x88\x84"]
    assert nal.split_annexb(b"") == []
    assert nal.annexb_to_length_prefixed(stream) == (
        b"\x00\x00\x00\x02\x67\x42\x00\x00\x00\x02\x68\xce\x00\x00\x00\x03\x65\x88\x84")


@pytest.mark.parametrize("stream", [
    b"\x67\x42\x00\x00\x01\x68",  # no start code first
    b"\x00\x00\x01\x00\x00\x01\x68",  # empty unit
    b"\x00\x00\x01", b"\x00\x00\x00\x00",  # nothing after the start code; zeros only
])
def test_split_annexb_rejects_bad_framing(stream: bytes) -> None:
    with pytest.raises(CodecError):
        nal.split_annexb(stream)


@fuzz
@given(st.lists(nal_units, max_size=8), st.lists(st.sampled_from([3, 4]), min_size=8, max_size=8))
def test_annexb_round_trip(units: list[bytes], start_sizes: list[int]) -> None:
    stream = b"".join(b"\x00" * (size - 1) + b"\x01" + unit for unit, size in zip(units, start_sizes, strict=False))
    assert nal.split_annexb(stream) == units
    assert nal.split_length_prefixed(nal.annexb_to_length_prefixed(stream)) == units


@fuzz
@given(st.lists(nal_units, min_size=1, max_size=8), st.sampled_from([1, 2, 4]))
def test_length_prefixed_round_trip(units: list[bytes], size: int) -> None:
    sample = nal.length_prefixed(units, size)
    assert nal.split_length_prefixed(sample, size) == units
    assert nal.relength(sample, size) == nal.length_prefixed(units)


def test_length_prefixed_rejects_bad_framing() -> None:
    for data, size in [(b"\x00\x00\x00\x05\x65", 4), (b"\x00\x00", 4), (b"\x00\x00\x00\x00", 4), (b"\x01", 3)]:
        with pytest.raises(CodecError):
            nal.split_length_prefixed(data, size)
    with pytest.raises(CodecError):
        nal.length_prefixed([b"x" * 256], 1)
    with pytest.raises(CodecError):
        nal.relength(b"\x03\x65\x88", 1)


@fuzz
@given(st.binary(max_size=64), st.sampled_from([1, 2, 4]))
def test_framing_raises_only_codec_errors(data: bytes, size: int) -> None:
    for call in (lambda: nal.split_annexb(data), lambda: nal.split_length_prefixed(data, size),
                 lambda: nal.relength(data, size), lambda: nal.annexb_to_length_prefixed(data)):
        with contextlib.suppress(CodecError):
            call()


# --- Tracks -----------------------------------------------------------------------------------------------

def opus_head(channels: int, pre_skip: int = 312, input_rate: int = 44100) -> bytes:
    return (b"OpusHead\x01" + bytes([channels]) + pre_skip.to_bytes(2, "little") + input_rate.to_bytes(4, "little")
            + b"\x00\x00\x00")


def test_audio_tracks() -> None:
    assert audio_track(Codec.AAC, b"\x11\x90", sample_rate=8000) == Track(Codec.AAC, b"\x11\x90", sample_rate=48000,
                                                                         channels=2)
    head = opus_head(1)
    assert audio_track(Codec.OPUS, head) == Track(Codec.OPUS, head, sample_rate=48000, channels=1)
    assert audio_track(Codec.OPUS) == Track(Codec.OPUS, sample_rate=48000, channels=2)
    assert audio_track(Codec.MP3, sample_rate=44100, channels=2) == Track(Codec.MP3, sample_rate=44100, channels=2)
    assert audio_track(Codec.SPEEX) == Track(Codec.SPEEX, sample_rate=16000, channels=1)
    assert audio_track(Codec.PCM_ALAW) == Track(Codec.PCM_ALAW, sample_rate=8000, channels=1)
    assert audio_track(Codec.PCM_MULAW, channels=2) == Track(Codec.PCM_MULAW, sample_rate=8000, channels=2)


@pytest.mark.parametrize(("call"), [
    lambda: audio_track(Codec.AAC),  # AAC needs its AudioSpecificConfig
    lambda: audio_track(Codec.OPUS, b"OpusTags" + bytes(11)),
    lambda: audio_track(Codec.OPUS, opus_head(0)),
    lambda: audio_track(Codec.H264),
    lambda: video_track(Codec.AAC, b"\x12\x10"),
    lambda: video_track(Codec.H264, b""),
    lambda: video_track(Codec.HEVC, b"\x01" + bytes(22)),
])
def test_bad_tracks_raise(call: Callable[[], object]) -> None:
    with pytest.raises(CodecError):
        call()


# --- Frame rate -------------------------------------------------------------------------------------------

def test_frame_rate_examples() -> None:
    assert estimate_frame_rate([]) == 0.0
    assert estimate_frame_rate([40, 40, 40]) == 0.0
    assert estimate_frame_rate([0, 33, 67, 100, 133, 167]) == 30.0
    assert estimate_frame_rate([0, 17, 33, 50, 67, 83]) == 60.0
    assert estimate_frame_rate([1000, 1040, 1040, 1080, 1120, 1160]) == 25.0  # a repeated timestamp
    assert estimate_frame_rate([0, 33, 67, 133, 167, 200, 233]) == 30.0  # one dropped frame
    assert estimate_frame_rate([0, 77, 154, 231, 308, 385]) == 12.99  # 13 fps is no common rate
    assert estimate_frame_rate([200, 100, 0, 300]) == 10.0  # order does not matter


def jittered(rate: float, frames: int, start: float, rounding: str) -> list[int]:
    to_ms = math.floor if rounding == "floor" else round
    return [int(to_ms(start + i * 1000 / rate)) for i in range(frames)]


NTSC = {23.976: 24.0, 29.97: 30.0, 59.94: 60.0, 119.88: 120.0}

frame_times = st.tuples(st.integers(5, 300), st.floats(0, 1e7), st.sampled_from(["round", "floor"]))


@fuzz
@given(st.sampled_from([r for r in COMMON_RATES if r not in NTSC]), frame_times)
def test_frame_rate_of_jittered_ms_timestamps(rate: float, times: tuple[int, float, str]) -> None:
    assert estimate_frame_rate(jittered(rate, *times)) == rate


@fuzz
@given(st.sampled_from(sorted(NTSC)), frame_times)
def test_ntsc_frame_rates(rate: float, times: tuple[int, float, str]) -> None:
    """Too few frames cannot tell 29.97 from 30 (they differ by 0.03 ms a frame): the integer rate until then."""
    frames = times[0]
    estimate = estimate_frame_rate(jittered(rate, *times))
    assert estimate == rate if frames >= 200 else estimate in (rate, NTSC[rate])
