"""WHIP without a peer connection: RTP frames into neutral units, SDP rewriting, and which held frames are whole.
tests/component/media/test_whip.py runs the WHIP endpoint over loopback."""

from __future__ import annotations

import pytest
from streamforge_media.codecs import nal
from streamforge_media.ingest.whip.frames import EncodedFrame, H264Frames, OpusFrames
from streamforge_media.ingest.whip.sdp import advertise
from streamforge_media.media import Codec

pytestmark = pytest.mark.unit

SPS = bytes.fromhex("6742c01e8c8d40501e90f08846a0")  # 640x480 Constrained Baseline
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("6588840021ff")
SLICE = bytes.fromhex("419a0011")


def annexb(*units: bytes) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + u for u in units)


# --- frames ------------------------------------------------------------------------------------------

def test_h264_frames_wait_for_parameter_sets_then_carry_length_prefixed_pictures() -> None:
    frames = H264Frames(started=100.0)
    assert frames.unit(EncodedFrame(annexb(SLICE), 0, 100.2)) is None  # nothing decodes before SPS/PPS
    key = frames.unit(EncodedFrame(annexb(b"\x09\xf0", SPS, PPS, IDR), 3000, 100.5))
    assert key is not None and key.keyframe and key.track.codec is Codec.H264
    assert (key.track.width, key.track.height) == (640, 480)
    assert nal.split_length_prefixed(key.data) == [IDR]  # AUD, SPS and PPS live in the track
    # The track's first frame lands at its arrival after the publish began; the rest follow the RTP clock.
    assert key.dts_ms == key.pts_ms == 500 + 3000 // 90
    delta = frames.unit(EncodedFrame(annexb(SLICE), 3000 + 9000, 100.9))
    assert delta is not None and not delta.keyframe and delta.dts_ms == key.dts_ms + 100
    assert delta.track is key.track


def test_h264_frames_new_sps_is_a_new_track() -> None:
    frames = H264Frames(started=0.0)
    first = frames.unit(EncodedFrame(annexb(SPS, PPS, IDR), 0, 0.0))
    other_sps = bytes.fromhex("6742c01f8c8d40280f00f08846a0")
    second = frames.unit(EncodedFrame(annexb(other_sps, PPS, IDR), 90000, 1.0))
    same = frames.unit(EncodedFrame(annexb(other_sps, PPS, IDR), 180000, 2.0))
    assert first is not None and second is not None and same is not None
    assert first.track != second.track and same.track is second.track


def test_opus_frames_are_stereo_48k_and_skip_empty_packets() -> None:
    frames = OpusFrames(started=10.0)
    assert frames.unit(EncodedFrame(b"", 0, 10.0)) is None
    unit = frames.unit(EncodedFrame(b"\xfc\x01", 960, 10.1))
    assert unit is not None and unit.track.codec is Codec.OPUS
    assert (unit.track.sample_rate, unit.track.channels) == (48000, 2)
    assert unit.dts_ms == 100 + 20


def test_advertise_rewrites_host_candidates_and_connection_lines_only() -> None:
    answer = "\r\n".join(["v=0", "c=IN IP4 10.0.0.5", "a=candidate:1 1 udp 2130706431 10.0.0.5 50001 typ host",
                          "a=candidate:2 1 udp 1694498815 203.0.113.9 50001 typ srflx raddr 10.0.0.5 rport 50001"])
    out = advertise(answer, "198.51.100.7").split("\r\n")
    assert out[1] == "c=IN IP4 198.51.100.7"
    assert out[2] == "a=candidate:1 1 udp 2130706431 198.51.100.7 50001 typ host"
    assert out[3].endswith("203.0.113.9 50001 typ srflx raddr 10.0.0.5 rport 50001")


def test_held_frames_takes_whole_frames_up_to_the_first_gap() -> None:
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtp import RtpPacket
    from streamforge_media.ingest.whip.server import held_frames

    def packet(seq: int, ts: int, data: bytes, marker: int = 0) -> RtpPacket:
        p = RtpPacket(sequence_number=seq, timestamp=ts, marker=marker)
        p._data = data  # type: ignore[attr-defined]
        return p

    buffer = JitterBuffer(capacity=16, is_video=True)
    for p in (packet(1, 3000, b"a"), packet(2, 3000, b"b", marker=1), packet(3, 6000, b"c", marker=1),
              packet(4, 9000, b"d")):  # the last frame has not ended (no marker): it stays out
        buffer._packets[p.sequence_number % 16] = p
    buffer._origin = 1
    assert held_frames(buffer, video=True) == [(b"ab", 3000), (b"c", 6000)]
    assert held_frames(buffer, video=False) == [(b"ab", 3000), (b"c", 6000), (b"d", 9000)]
    buffer._packets[3 % 16] = None  # a gap ends what can be taken
    assert held_frames(buffer, video=True) == [(b"ab", 3000)]
