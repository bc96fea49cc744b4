"""SPS parsing against real libx264 output, and the ingest's use of it when onMetaData has no size."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from streamforge_media import codecs
from streamforge_media.codecs import h264
from streamforge_media.ladder import Rung
from streamforge_media.media import Codec
from streamforge_media.session import plan_for
from streamforge_media.tracks import Generation
from test_rtmp_server import GOP, KEYFRAME, FakeTranscoder, send_gop

from tests.support.wait import wait_for_async
from tests.unit.media.media_support import STREAM_KEY, RawRtmpClient, have, make_config, running_harness

pytestmark = pytest.mark.component

needs_ffmpeg = pytest.mark.skipif(not have("ffmpeg"), reason="ffmpeg not installed")


def annexb_nals(stream: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes of 3 or 4 bytes)."""
    # A NAL unit never ends in a zero byte (rbsp_trailing_bits), so trailing zeros belong to a 4-byte start code.
    return [n for n in (chunk.rstrip(b"\x00") for chunk in stream.split(b"\x00\x00\x01")[1:]) if n]


def encode_sps(width: int, height: int, profile: str, pix_fmt: str = "yuv420p", *extra: str) -> bytes:
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
         # testsrc2 rounds odd sizes down to even ones; the scale filter makes the exact (maybe odd) size.
         "-i", f"testsrc2=size={width}x{height}:rate=30", "-vf", f"scale={width}:{height}", "-frames:v", "1",
         "-pix_fmt", pix_fmt,
         "-c:v", "libx264", "-profile:v", profile, *extra, "-f", "h264", "-"],
        capture_output=True, check=True, timeout=60).stdout
    return next(n for n in annexb_nals(out) if n[0] & 0x1F == 7)


def avc_sequence_header(sps: bytes) -> bytes:
    record = bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps
    record += bytes([1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])  # one (dummy) PPS
    return bytes([0x17, 0x00, 0, 0, 0]) + record


SIZES = [(640, 360), (1920, 1080), (854, 480), (426, 240), (322, 182), (176, 144)]


@needs_ffmpeg
@pytest.mark.parametrize("profile", ["baseline", "main", "high"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_sps_size_from_libx264(profile: str, width: int, height: int) -> None:
    sps = encode_sps(width, height, profile)
    info = h264.parse_sps(sps)
    assert (info.width, info.height) == (width, height)
    assert info.profile_idc == {"baseline": 66, "main": 77, "high": 100}[profile]
    assert h264.decoder_config_size(avc_sequence_header(sps)[5:]) == (width, height)  # the tag body's avcC


@needs_ffmpeg
@pytest.mark.parametrize(("width", "height", "pix_fmt", "profile", "chroma"), [
    (321, 181, "yuv444p", "high444", 3),  # crop unit 1x1
    (322, 181, "yuv422p", "high422", 2),  # crop unit 2x1
    (321, 181, "gray", "high", 0),  # monochrome: crop unit 1x1
    (1920, 1080, "yuv420p10le", "high10", 1),
])
def test_sps_size_other_chroma_formats(width: int, height: int, pix_fmt: str, profile: str, chroma: int) -> None:
    try:
        sps = encode_sps(width, height, profile, pix_fmt)
    except subprocess.CalledProcessError:
        pytest.skip(f"this libx264 cannot encode {pix_fmt}")
    info = h264.parse_sps(sps)
    assert (info.width, info.height, info.chroma_format_idc) == (width, height, chroma)


@needs_ffmpeg
def test_sps_size_interlaced() -> None:
    sps = encode_sps(1920, 1080, "high", "yuv420p", "-flags", "+ildct", "-x264-params", "interlaced=1")
    info = h264.parse_sps(sps)
    assert not info.frame_mbs_only
    assert (info.width, info.height) == (1920, 1080)


def test_emulation_prevention_removed() -> None:
    assert h264.unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03") == b"\x00\x00\x01\x00\x00\x00\x00"
    assert h264.unescape_rbsp(b"\x01\x02") == b"\x01\x02"


@needs_ffmpeg
def test_the_ladder_follows_the_sps_whatever_the_metadata_says(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    track = codecs.video_track(Codec.H264, avc_sequence_header(encode_sps(320, 180, "main"))[5:])
    plan = plan_for(config, Generation(track, None, 30.0))
    assert [(r.width, r.height) for r in plan.renditions] == [(284, 160)]


@needs_ffmpeg
def test_publisher_without_metadata_gets_ladder_capped_at_sps_height(tmp_path: Path) -> None:
    ladder = (Rung("720p", 720, 3000), Rung("360p", 360, 800), Rung("160p", 160, 200))
    header = avc_sequence_header(encode_sps(426, 240, "main"))

    async def scenario() -> None:
        FakeTranscoder.instances.clear()
        async with running_harness(make_config(tmp_path, ladder=ladder), transcoder_factory=FakeTranscoder) as h:
            client = await RawRtmpClient.connect(h.server.port)
            await client.publish(STREAM_KEY)
            await client.read_commands(0.3)
            client.send(9, KEYFRAME, stream_id=1, csid=6)  # before any sequence header: not a reason to guess
            client.send(9, header, stream_id=1, timestamp=0, csid=6)
            send_gop(client, 40)
            await wait_for_async(lambda: FakeTranscoder.instances and len(FakeTranscoder.instances[0].fed) == GOP, 2)
            pipe = FakeTranscoder.instances[0]
            assert [(r.name, r.width, r.height) for r in pipe.plan.renditions] == [("160p", 284, 160)]
            assert pipe.fed[0].track.config == header[5:] and pipe.fed[1].dts_ms - pipe.fed[0].dts_ms == 33
            client.close()
    asyncio.run(scenario())
