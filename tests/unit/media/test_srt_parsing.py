"""SRT without a socket: stream id forms, ADTS framing, and MPEG-TS packets into neutral units.
tests/component/media/test_srt.py publishes with ffmpeg over loopback."""

from __future__ import annotations

from fractions import Fraction

import pytest
from media_support import STREAM_KEY
from streamforge_media.codecs import CodecError, nal
from streamforge_media.ingest.srt.demux import PacketUnits, TsPacket, adts_frames
from streamforge_media.ingest.srt.streamid import StreamIdError, parse_stream_id
from streamforge_media.media import Codec

pytestmark = pytest.mark.unit

SPS = bytes.fromhex("6742c01e8c8d40501e90f08846a0")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("6588840021ff")
TB = Fraction(1, 90000)


# --- stream ids --------------------------------------------------------------------------------------

def test_stream_id_forms() -> None:
    assert parse_stream_id(f"#!::r=live/{STREAM_KEY},m=publish").stream_key == STREAM_KEY
    assert parse_stream_id(f"#!::m=publish,u=ada,r={STREAM_KEY}").stream_key == STREAM_KEY
    assert parse_stream_id(STREAM_KEY).stream_key == STREAM_KEY  # a bare key is a publish
    assert STREAM_KEY not in repr(parse_stream_id(STREAM_KEY))
    with pytest.raises(StreamIdError) as request:
        parse_stream_id(f"#!::r=live/{STREAM_KEY}")  # m defaults to request: a player, not a publisher
    assert request.value.bad_mode
    for bad in ("", "#!::r", "#!::r=live/,m=publish", "#!::r=a/b/c,m=publish", "live/key", "x" * 600):
        with pytest.raises(StreamIdError) as malformed:
            parse_stream_id(bad)
        assert not malformed.value.bad_mode


# --- TS packets → units ------------------------------------------------------------------------------

def _adts(payload: bytes, rate_index: int = 3, channels: int = 2) -> bytes:
    length = 7 + len(payload)
    header = bytes([0xFF, 0xF1, (1 << 6) | (rate_index << 2) | (channels >> 2),
                    ((channels & 3) << 6) | (length >> 11), (length >> 3) & 0xFF, ((length & 7) << 5) | 0x1F, 0xFC])
    return header + payload


def test_adts_frames_give_the_config_and_strip_headers() -> None:
    frames = list(adts_frames(_adts(b"\x21\x00") + _adts(b"\x21\x01")))
    assert [f for _, f in frames] == [b"\x21\x00", b"\x21\x01"]
    assert frames[0][0] == bytes.fromhex("1190")  # AAC LC, 48 kHz, stereo
    with pytest.raises(CodecError):
        list(adts_frames(b"\x00" * 9))


def test_packets_become_units_from_the_first_parameter_sets() -> None:
    units = PacketUnits()
    annexb = b"".join(b"\x00\x00\x00\x01" + u for u in (b"\x09\xf0", SPS, PPS, IDR))
    assert units.units(TsPacket("h264", b"\x00\x00\x01" + IDR, 0, None, TB)) == []
    [video] = units.units(TsPacket("h264", annexb, 93600, 90000, TB))
    assert video.keyframe and video.track.codec is Codec.H264 and (video.dts_ms, video.pts_ms) == (1000, 1040)
    assert nal.split_length_prefixed(video.data) == [IDR]
    two = units.units(TsPacket("aac", _adts(b"\x21\x00") + _adts(b"\x21\x01"), 90000, None, TB))
    assert [u.dts_ms for u in two] == [1000, 1021] and two[0].track.sample_rate == 48000
    assert units.units(TsPacket("ac3", b"\x0b\x77", 0, None, TB)) == []
