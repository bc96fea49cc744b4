"""A second, in-memory protocol through the unchanged core: Annex-B H.264 and ADTS AAC, as WebRTC or
MPEG-TS sources deliver them, become tracks and access units in a few lines of adapter, and the session
manager, the track rules, the real ffmpeg ladder and the HLS packager take them like RTMP's.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from streamforge_media import codecs
from streamforge_media.codecs import aac, h264, nal
from streamforge_media.media import AccessUnit, Codec, MediaKind, PublisherHints
from streamforge_media.ports import PublishHandler

from tests.support.wait import wait_for_async
from tests.unit.media.media_support import (
    SEGMENT_FORMAT,
    STREAM_ID,
    STREAM_KEY,
    MemoryObjectStore,
    have,
    make_config,
    running_task,
)

pytestmark = [pytest.mark.component, pytest.mark.skipif(not have("ffmpeg"), reason="ffmpeg not installed")]

FPS = 25
SECONDS = 5
AAC_FRAME_MS = 1024 * 1000 / 48000


class MemoryPublisher:
    """The whole adapter of the in-memory protocol: Annex-B frames and ADTS frames in, the ports out."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def disconnect(self, reason: str) -> None:
        self.closed.set()

    async def publish(self, handler: PublishHandler, key: str, frames: list[bytes], adts: list[bytes]) -> None:
        sink = await handler.start_publish(key, self)
        assert sink is not None
        await sink.on_hints(PublisherHints(frozenset({MediaKind.VIDEO, MediaKind.AUDIO})))
        units = self._video_units(frames) + self._audio_units(adts)
        for unit in sorted(units, key=lambda u: u.dts_ms):
            await sink.on_unit(unit)
            await asyncio.sleep(0)
        await sink.on_unpublish()

    @staticmethod
    def _video_units(frames: list[bytes]) -> list[AccessUnit]:
        units = []
        track = None
        for index, frame in enumerate(frames):
            nals = nal.split_annexb(frame)
            sps = [n for n in nals if n[0] & 0x1F == 7]
            pps = [n for n in nals if n[0] & 0x1F == 8]
            if sps and pps:  # in-band parameter sets: the decoder configuration, as WebRTC sends it
                track = codecs.video_track(Codec.H264, h264.decoder_config_from_parameter_sets(sps[0], pps[0]))
            assert track is not None
            keyframe = any(n[0] & 0x1F == 5 for n in nals)
            picture = b"".join(len(n).to_bytes(4, "big") + n for n in nals if n[0] & 0x1F not in (7, 8, 9))
            t = index * 1000 // FPS
            units.append(AccessUnit(track, t, t, keyframe, picture))
        return units

    @staticmethod
    def _audio_units(adts: list[bytes]) -> list[AccessUnit]:
        header = adts[0]
        profile, rate_index, channels = (header[2] >> 6) + 1, (header[2] >> 2) & 0xF, \
            ((header[2] & 1) << 2) | (header[3] >> 6)
        config = aac.audio_specific_config(profile, (96000, 88200, 64000, 48000, 44100)[rate_index], channels)
        track = codecs.audio_track(Codec.AAC, config)
        units = []
        for index, frame in enumerate(adts):
            head = 7 if frame[1] & 1 else 9  # protection_absent: no CRC
            t = round(index * AAC_FRAME_MS)
            units.append(AccessUnit(track, t, t, True, frame[head:]))
        return units


def annexb_frames(stream: bytes) -> list[bytes]:
    """Split an Annex-B elementary stream into access units at its access unit delimiters (AUD, type 9)."""
    frames: list[bytes] = []
    for unit in nal.split_annexb(stream):
        if unit[0] & 0x1F == 9 or not frames:
            frames.append(b"")
        frames[-1] += b"\x00\x00\x00\x01" + unit
    return frames


def adts_frames(stream: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos + 7 <= len(stream):
        length = ((stream[pos + 3] & 3) << 11) | (stream[pos + 4] << 3) | (stream[pos + 5] >> 5)
        frames.append(stream[pos:pos + length])
        pos += length
    return frames


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], list[bytes]]:
    work = tmp_path_factory.mktemp("annexb")
    video, audio = work / "v.h264", work / "a.aac"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x240:rate={FPS}:duration={SECONDS}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-bsf:v", "h264_metadata=aud=insert", "-g", str(FPS), "-bf", "0", "-f", "h264", str(video)],
                   check=True, timeout=60)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate=48000:duration={SECONDS}", "-c:a", "aac", "-f", "adts",
                    str(audio)], check=True, timeout=60)
    return annexb_frames(video.read_bytes()), adts_frames(audio.read_bytes())


def test_annexb_h264_and_adts_aac_through_the_unchanged_core(
        tmp_path: Path, source: tuple[list[bytes], list[bytes]]) -> None:
    frames, adts = source

    async def scenario() -> None:
        # A grace period, so the session outlives this faster-than-real-time publish long enough to go live.
        async with running_task(make_config(tmp_path, reconnect_grace_s=2), MemoryObjectStore()) as h:
            await MemoryPublisher().publish(h.manager, STREAM_KEY, frames, adts)
            await wait_for_async(lambda: h.store.sessions and all(
                s["status"] == "ended" for s in h.store.sessions.values()), 30)
            master = h.objects.text(f"live/{STREAM_ID}/master.m3u8")
            assert "RESOLUTION=320x240" in master and "RESOLUTION=214x160" in master
            assert 'CODECS="avc1.64001e,mp4a.40.2"' in master

            def probe(rendition: str) -> set[str]:
                """What the rendition's first segment carries (after its init segment, if it has one)."""
                keys = h.objects.keys(f"live/{STREAM_ID}/{rendition}/ses_")
                segments = [k for k in keys if k.endswith(SEGMENT_FORMAT.extension)]
                assert len(segments) >= 2
                path = tmp_path / f"{rendition}{SEGMENT_FORMAT.extension}"
                path.write_bytes(b"".join(h.objects.objects[k].body for k in keys if k.endswith(".mp4"))
                                 + h.objects.objects[segments[0]].body)
                return set(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height",
                                           "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                                          check=True).stdout.split())
            if SEGMENT_FORMAT.audio_rendition:  # audio encoded once, in its own rendition
                assert probe("240p") == {"video,320,240"} and probe("audio") == {"audio"}
            else:
                assert probe("240p") == {"audio", "video,320,240"}  # (a TS lists its streams once more per program)
            (session,) = h.store.sessions.values()
            assert SECONDS - 2.5 <= session["duration_s"] <= SECONDS + 0.5
            lifecycle = [t for t in h.events.types() if t != "Ingest Health"]
            assert lifecycle[0] == "Stream Live" and lifecycle[-1] == "Session Recorded"
    asyncio.run(scenario())

