"""FLV and Enhanced RTMP tag bodies → tracks and access units; onMetaData → hints."""

from __future__ import annotations

import math

import pytest
from rtmp_support import (
    ASC_48K_STEREO,
    AVCC,
    AVCC_360P,
    COMMAND,
    HEVC_IDR,
    HVCC,
    IDR,
    INTER,
    KEY,
    OPUS_HEAD,
    aac_tag,
    avc_tag,
    ex_audio,
    ex_video,
    si24,
)
from streamforge_media.codecs import h264
from streamforge_media.ingest.rtmp.flv import TagConverter, UnsupportedMedia, hints_from_metadata
from streamforge_media.media import Codec, MediaKind, PublisherHints

pytestmark = pytest.mark.unit


def configured(config: bytes = AVCC) -> TagConverter:
    converter = TagConverter()
    assert converter.video(0, avc_tag(KEY, 0, body=config)) is None
    return converter


def test_avc_sequence_header_then_frames() -> None:
    converter = configured()
    track = converter.video_track
    assert track is not None and (track.codec, track.width, track.height) == (Codec.H264, 320, 240)
    assert track.config == AVCC
    unit = converter.video(1000, avc_tag(KEY, 1, 66, IDR))
    assert unit is not None
    assert (unit.track, unit.dts_ms, unit.pts_ms, unit.keyframe, unit.data) == (track, 1000, 1066, True, IDR)
    inter = converter.video(1033, avc_tag(INTER, 1, 0, IDR))
    assert inter is not None and not inter.keyframe and inter.pts_ms == 1033


@pytest.mark.parametrize("composition", [-33, -1, 0, 1, 0x7FFFFF, -0x800000])
def test_composition_time_is_signed_24_bit(composition: int) -> None:
    unit = configured().video(5000, avc_tag(INTER, 1, composition, IDR))
    assert unit is not None and unit.pts_ms - unit.dts_ms == composition


def test_frames_before_their_configuration_are_dropped() -> None:
    converter = TagConverter()
    assert converter.video(0, avc_tag(KEY, 1, 0, IDR)) is None
    assert converter.audio(0, aac_tag(1, b"\x21\x10")) is None


@pytest.mark.parametrize("payload", [
    b"", avc_tag(KEY, 2), avc_tag(COMMAND, 0)[:2], bytes([0x17, 1, 0]),  # end of sequence, command, truncated
    avc_tag(KEY, 1, 0, b""),  # no data
])
def test_tags_without_a_frame(payload: bytes) -> None:
    assert configured().video(0, payload) is None


def test_identical_resend_keeps_the_track_and_a_change_makes_a_new_one() -> None:
    converter = configured()
    first = converter.video_track
    converter.video(2000, avc_tag(KEY, 0, body=bytes(AVCC)))
    assert converter.video_track is first
    converter.video(4000, avc_tag(KEY, 0, body=AVCC_360P))
    second = converter.video_track
    assert second is not None and second != first and (second.width, second.height) == (640, 360)
    unit = converter.video(4000, avc_tag(KEY, 1, 0, IDR))
    assert unit is not None and unit.track is second


def test_identical_audio_config_gives_an_equal_track() -> None:
    converter = TagConverter()
    converter.audio(0, aac_tag(0, ASC_48K_STEREO))
    first = converter.audio_track
    converter.audio(10, aac_tag(0, ASC_48K_STEREO))
    assert converter.audio_track == first


def test_two_byte_nal_lengths_become_four() -> None:
    converter = configured(h264.with_nal_length_size(AVCC, 2))
    track = converter.video_track
    assert track is not None and h264.nal_length_size(track.config) == 4
    two_units = b"\x00\x03\x65\xaa\xbb" + b"\x00\x02\x06\x01"
    unit = converter.video(0, avc_tag(KEY, 1, 0, two_units))
    assert unit is not None and unit.data == b"\x00\x00\x00\x03\x65\xaa\xbb" + b"\x00\x00\x00\x02\x06\x01"
    # A frame whose lengths run past its end is dropped, not fatal.
    assert converter.video(40, avc_tag(KEY, 1, 0, b"\x00\x09\x65")) is None


def test_legacy_hevc_codec_id_12() -> None:
    converter = TagConverter()
    converter.video(0, avc_tag(KEY, 0, body=HVCC, codec_id=12))
    unit = converter.video(40, avc_tag(KEY, 1, 40, HEVC_IDR, codec_id=12))
    assert unit is not None and unit.track.codec is Codec.HEVC and unit.pts_ms == 80


def test_enhanced_hevc() -> None:
    converter = TagConverter()
    assert converter.video(0, ex_video(KEY, 0, b"hvc1", HVCC)) is None
    track = converter.video_track
    assert track is not None and track.describe() == "hevc 320x240"
    unit = converter.video(100, ex_video(KEY, 1, b"hvc1", si24(-20) + HEVC_IDR))
    assert unit is not None and (unit.dts_ms, unit.pts_ms, unit.keyframe, unit.data) == (100, 80, True, HEVC_IDR)
    unit = converter.video(133, ex_video(INTER, 3, b"hvc1", HEVC_IDR))  # CodedFramesX: no composition time
    assert unit is not None and (unit.pts_ms, unit.keyframe, unit.data) == (133, False, HEVC_IDR)
    for packet_type in (2, 4):  # SequenceEnd, Metadata (colour info)
        assert converter.video(166, ex_video(KEY, packet_type, b"hvc1", b"\x02\x00\x09colorInfo")) is None
    assert converter.video(166, ex_video(COMMAND, 1, b"hvc1", b"\x00")) is None
    converter.video(200, ex_video(KEY, 0, b"hvc1", HVCC))
    assert converter.video_track is track


def test_enhanced_avc_and_mod_ex_prefix() -> None:
    converter = TagConverter()
    converter.video(0, ex_video(KEY, 0, b"avc1", AVCC))
    # ModEx (7): one byte of size-1 (3 bytes: a nanosecond offset), then ModExType 0 | PacketType 1.
    payload = bytes([0x80 | KEY << 4 | 7, 2]) + b"\x00\x01\x00" + bytes([0x01]) + b"avc1" + si24(10) + IDR
    unit = converter.video(50, payload)
    assert unit is not None and unit.track.codec is Codec.H264 and (unit.dts_ms, unit.pts_ms) == (50, 60)


@pytest.mark.parametrize(("payload", "named"), [
    (ex_video(KEY, 0, b"av01", b"\x81"), "AV1 ('av01')"),
    (ex_video(KEY, 0, b"vp09", b"\x01"), "VP9 ('vp09')"),
    (ex_video(KEY, 0, b"xyz!"), "'xyz!'"),
    (ex_video(KEY, 5, b"hvc1"), "video packet type 5"),
    (bytes([0x80 | KEY << 4 | 6, 0x00]) + b"hvc1", "multitrack video"),
    (bytes([0x14, 0]), "On2 VP6"),
    (bytes([0x12, 0]), "Sorenson H.263"),
    (bytes([0x13]), "Screen video"),
    (avc_tag(KEY, 0, body=b"\x01garbage"), "corrupt h264 decoder configuration"),
    (avc_tag(KEY, 0, body=b""), "corrupt h264"),
    (bytes([0x80 | KEY << 4 | 7, 5]), "truncated ModEx"),
])
def test_video_the_platform_cannot_take_is_refused(payload: bytes, named: str) -> None:
    with pytest.raises(UnsupportedMedia, match=r"not supported|corrupt|truncated") as caught:
        TagConverter().video(0, payload)
    assert named in str(caught.value)
    if "not supported" in str(caught.value):
        assert "H.264 or HEVC" in str(caught.value)


def test_aac() -> None:
    converter = TagConverter()
    assert converter.audio(0, aac_tag(0, ASC_48K_STEREO)) is None
    track = converter.audio_track
    assert track is not None and (track.codec, track.sample_rate, track.channels) == (Codec.AAC, 48000, 2)
    unit = converter.audio(21, aac_tag(1, b"\x21\x10\x04"))
    assert unit is not None and (unit.track, unit.dts_ms, unit.pts_ms, unit.keyframe, unit.data) == (
        track, 21, 21, True, b"\x21\x10\x04")
    assert converter.audio(21, b"\xaf") is None and converter.audio(21, b"") is None  # truncated, silence


@pytest.mark.parametrize(("first_byte", "codec", "rate", "channels"), [
    (0x2F, Codec.MP3, 44100, 2),  # MP3, 44 kHz, stereo
    (0x2A, Codec.MP3, 22050, 1),
    (0xE2, Codec.MP3, 8000, 1),  # MP3 8 kHz
    (0xB2, Codec.SPEEX, 16000, 1),
    (0x72, Codec.PCM_ALAW, 8000, 1),
    (0x83, Codec.PCM_MULAW, 8000, 2),
])
def test_audio_without_configuration(first_byte: int, codec: Codec, rate: int, channels: int) -> None:
    converter = TagConverter()
    unit = converter.audio(7, bytes([first_byte]) + b"\xff\xfb\x90")
    assert unit is not None and unit.data == b"\xff\xfb\x90" and unit.keyframe
    assert (unit.track.codec, unit.track.sample_rate, unit.track.channels) == (codec, rate, channels)
    again = converter.audio(33, bytes([first_byte]) + b"\xff\xfb\x90")
    assert again is not None and again.track is unit.track


def test_enhanced_audio() -> None:
    converter = TagConverter()
    assert converter.audio(0, ex_audio(0, b"Opus", OPUS_HEAD)) is None
    unit = converter.audio(20, ex_audio(1, b"Opus", b"\xfc\x01\x02"))
    assert unit is not None and unit.track.describe() == "opus 48000 Hz 2 ch" and unit.track.config == OPUS_HEAD
    assert converter.audio(40, ex_audio(2, b"Opus")) is None  # SequenceEnd
    assert converter.audio(40, ex_audio(4, b"Opus", b"\x00\x02")) is None  # MultichannelConfig
    converter.audio(60, ex_audio(0, b"mp4a", ASC_48K_STEREO))
    unit = converter.audio(60, ex_audio(1, b"mp4a", b"\x21\x10"))
    assert unit is not None and unit.track.codec is Codec.AAC and unit.track.sample_rate == 48000
    unit = converter.audio(80, ex_audio(1, b".mp3", b"\xff\xfb\x90"))
    assert unit is not None and unit.track.codec is Codec.MP3


def test_opus_frames_without_a_sequence_start() -> None:
    unit = TagConverter().audio(0, ex_audio(1, b"Opus", b"\xfc\x01"))
    assert unit is not None and unit.track.codec is Codec.OPUS and unit.track.config == b""


@pytest.mark.parametrize(("payload", "named"), [
    (bytes([0x6E, 0]), "Nellymoser"),
    (bytes([0x1E, 0]), "ADPCM"),
    (bytes([0x3E, 0]), "linear PCM"),
    (ex_audio(0, b"fLaC"), "FLAC ('fLaC')"),
    (ex_audio(1, b"ac-3"), "AC-3 ('ac-3')"),
    (ex_audio(5, b"\x00Opus"), "multitrack audio"),
    (ex_audio(6, b"Opus"), "audio packet type 6"),
    (ex_audio(0, b"mp4a", b"\x00"), "corrupt aac"),
    (ex_audio(0, b"Opus", b"OpusTags"), "corrupt opus"),
])
def test_audio_the_platform_cannot_take_is_refused(payload: bytes, named: str) -> None:
    with pytest.raises(UnsupportedMedia) as caught:
        TagConverter().audio(0, payload)
    assert named in str(caught.value) and "AAC, Opus, MP3" in str(caught.value)


@pytest.mark.parametrize(("metadata", "hints"), [
    ({}, PublisherHints()),
    ({"width": 1280.0, "height": 720.0, "framerate": 29.97, "videocodecid": 7.0, "audiocodecid": 10.0},
     PublisherHints(frozenset({MediaKind.VIDEO, MediaKind.AUDIO}), 1280, 720, 29.97)),
    ({"videocodecid": "hvc1", "videoframerate": 60}, PublisherHints(frozenset({MediaKind.VIDEO}), frame_rate=60.0)),
    ({"audiocodecid": 10.0, "videocodecid": 0.0, "fps": 25}, PublisherHints(frozenset({MediaKind.AUDIO}),
                                                                             frame_rate=25.0)),
    ({"videocodecid": None, "audiocodecid": ""}, PublisherHints(frozenset())),
    ({"width": -5, "height": math.nan, "framerate": math.inf, "fps": 30.0, "audiocodecid": True},
     PublisherHints(frozenset(), frame_rate=30.0)),
    ({"width": "1280", "height": [720], "framerate": {"x": 1}}, PublisherHints()),
])
def test_hints_from_metadata(metadata: dict[str, object], hints: PublisherHints) -> None:
    assert hints_from_metadata(metadata) == hints
