"""SRT ingest: the stream id and TS packet conversion alone, then the listener in-process over the system
libsrt with ffmpeg as the caller (`-f mpegts srt://...?streamid=...`), the real session manager (fake store,
in-memory S3) and the real ffmpeg ladder.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from media_support import (
    STREAM_ID,
    STREAM_KEY,
    FakeStore,
    Harness,
    MemoryObjectStore,
    have,
    make_config,
    running_harness,
    wait_for,
)
from streamforge_media.codecs import CodecError, nal
from streamforge_media.ingest.srt import libsrt
from streamforge_media.ingest.srt.demux import PacketUnits, TsPacket, adts_frames
from streamforge_media.ingest.srt.server import SrtServer, SrtSettings
from streamforge_media.ingest.srt.streamid import StreamIdError, parse_stream_id
from streamforge_media.media import Codec

pytestmark = [pytest.mark.unit]


def _libsrt_missing() -> str | None:
    try:
        libsrt.LibSrt.load()
    except OSError as exc:
        return str(exc)
    return None


needs_srt = pytest.mark.skipif(not have("ffmpeg") or _libsrt_missing() is not None,
                               reason="ffmpeg with libsrt1.5-gnutls not installed (make test installs ffmpeg)")
SPS = bytes.fromhex("6742c01e8c8d40501e90f08846a0")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("6588840021ff")
TB = Fraction(1, 90000)
PASSPHRASE = "correct-horse-battery"


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return sync


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


# --- the listener ------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def srt_harness(tmp_path: Path, **stream: Any) -> AsyncIterator[tuple[Harness[MemoryObjectStore], SrtServer]]:
    store = FakeStore()
    store.add_stream(**stream)
    async with running_harness(make_config(tmp_path / "work", health_interval_s=1.0), store=store) as h:
        server = SrtServer(h.manager, SrtSettings())
        await server.start("127.0.0.1", 0)
        try:
            yield h, server
        finally:
            await server.close()


async def caller(server: SrtServer, stream_id: str, seconds: float, *options: str) -> asyncio.subprocess.Process:
    url = f"srt://127.0.0.1:{server.port}?streamid={stream_id}" + "".join(f"&{o}" for o in options)
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi",
        "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
        "-g", "60", "-c:a", "aac", "-f", "mpegts", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


@needs_srt
@run
async def test_refused_in_the_handshake_before_any_session(tmp_path: Path) -> None:
    async with srt_harness(tmp_path, srt_passphrase=PASSPHRASE) as (h, server):
        for stream_id in (f"#!::r=live/sk_{'z' * 43},m=publish", f"#!::r=live/{STREAM_KEY},m=request", "a,b",
                          f"#!::r=live/{STREAM_KEY},m=publish"):  # the last: right key, no passphrase
            started = time.monotonic()
            process = await caller(server, stream_id, 5)
            assert await asyncio.wait_for(process.wait(), 5) != 0
            assert time.monotonic() - started < 1.0, f"{stream_id[:12]}… refused only after 1 s"
        assert h.store.sessions == {} and h.events.events == [] and h.manager.streams == {}
        assert not h.objects.keys(), "a refused caller reached the transcoder or S3"


@needs_srt
@run
async def test_publish_second_caller_and_grace_to_offline(tmp_path: Path) -> None:
    async with srt_harness(tmp_path, srt_passphrase=PASSPHRASE) as (h, server):
        stream_id = f"#!::r=live/{STREAM_KEY},m=publish"
        good = await caller(server, stream_id, 30, f"passphrase={PASSPHRASE}")
        playlist = f"live/{STREAM_ID}/240p/index.m3u8"
        await wait_for(lambda: playlist in h.objects.objects and "#EXTINF" in h.objects.text(playlist), 20)
        second = await caller(server, stream_id, 5, f"passphrase={PASSPHRASE}")
        assert await asyncio.wait_for(second.wait(), 5) != 0, "a second caller on a live stream was taken"
        health = await wait_for(lambda: [d for t, d in h.events.events if t == "Ingest Health" and d.get("fps")], 10)
        assert "packet_loss_pct" in health[-1] and health[-1]["rtt_ms"] >= 0
        assert "mp4a.40.2" in h.objects.text(f"live/{STREAM_ID}/master.m3u8")
        good.kill()  # no goodbye: libsrt notices the silence, then grace (2 s) runs out, as for RTMP
        await good.wait()
        # libsrt declares a silent peer gone after ~5 s (its peer idle timeout and expiry count), measured 5.2 s.
        await wait_for(lambda: h.store.streams[STREAM_ID]["status"] == "reconnecting", 10)
        await wait_for(lambda: h.store.streams[STREAM_ID]["status"] == "offline", 10)
        assert h.events.types()[-2:] == ["Stream Offline", "Session Recorded"]
        assert len(h.store.sessions) == 1
