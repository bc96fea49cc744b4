"""Real encoded media for the codec and transcoder-input tests: made by the local ffmpeg, cut into neutral units.

The parsing here is test-only and deliberately plain: FLV tags (FLV spec v10.1 §E.4), Annex B access units
split at access unit delimiters, Ogg pages (RFC 3533). What the production code must get right (decoder
configurations, NAL framing) goes through `streamforge_media.codecs`, so these tests exercise it too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from typing import Any

import pytest
from streamforge_media.codecs import audio_track, h264, hevc, nal, video_track
from streamforge_media.media import AccessUnit, Codec, Track

needs_ffmpeg = pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
                                  reason="ffmpeg not installed")


def ffmpeg(*args: str, timeout: float = 60) -> bytes:
    """ffmpeg's standard output for `args` (empty when they name an output file rather than "-")."""
    return subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *args],
                          capture_output=True, check=True, timeout=timeout).stdout


def lavfi_video(width: int, height: int, rate: int, seconds: float) -> list[str]:
    """Input options for a test picture of exactly that size (testsrc2 alone rounds odd sizes down)."""
    return ["-f", "lavfi", "-t", str(seconds),
            "-i", f"testsrc2=size={width}x{height}:rate={rate},scale={width}:{height}"]


def lavfi_audio(sample_rate: int, channels: int, seconds: float) -> list[str]:
    layout = {1: "mono", 2: "stereo"}[channels]
    return ["-f", "lavfi", "-t", str(seconds),
            "-i", f"sine=frequency=440:sample_rate={sample_rate},aformat=channel_layouts={layout}"]


@dataclass(frozen=True)
class Media:
    """Tracks and their units in decode order (per track; interleaved by DTS across tracks)."""

    video: Track | None
    audio: Track | None
    units: list[AccessUnit]

    def count(self, track: Track | None) -> int:
        return sum(1 for u in self.units if track is not None and u.track is track)


# --- FLV (spec v10.1 §E.4.2, §E.4.3) -------------------------------------------------------------

def _flv_audio_track(flags: int, header: bytes) -> Track:
    fmt, stereo = flags >> 4, flags & 1
    if fmt == 10:
        return audio_track(Codec.AAC, header)
    if fmt == 2:  # the tag's rate index cannot say 48 kHz: the frame header tells
        rate, channels = mp3_frame_format(header)
        return audio_track(Codec.MP3, sample_rate=rate, channels=channels)
    if fmt == 11:
        return audio_track(Codec.SPEEX)
    if fmt in (7, 8):
        return audio_track(Codec.PCM_ALAW if fmt == 7 else Codec.PCM_MULAW, channels=1 + stereo)
    raise AssertionError(f"sound format {fmt} not handled by this test helper")


def parse_flv(data: bytes) -> Media:
    """The H.264 and audio units of an FLV file; decoder configurations from the sequence headers."""
    assert data[:3] == b"FLV"
    pos = int.from_bytes(data[5:9], "big") + 4
    video: Track | None = None
    audio: Track | None = None
    units: list[AccessUnit] = []
    while pos + 11 <= len(data):
        tag_type, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | data[pos + 7] << 24
        body = data[pos + 11:pos + 11 + size]
        pos += 11 + size + 4
        if tag_type == 9:
            assert body[0] & 0x0F == 7, "H.264 only"
            if body[1] == 0:
                video = video_track(Codec.H264, body[5:])
            elif body[1] == 1:
                assert video is not None
                cts = int.from_bytes(body[2:5], "big", signed=True)
                units.append(AccessUnit(video, ts, ts + cts, body[0] >> 4 == 1, body[5:]))
        elif tag_type == 8:
            if body[0] >> 4 == 10:
                if body[1] == 0:
                    audio = _flv_audio_track(body[0], body[2:])
                    continue
                payload = body[2:]
            else:
                payload = body[1:]
                if audio is None:
                    audio = _flv_audio_track(body[0], payload)
            assert audio is not None
            units.append(AccessUnit(audio, ts, ts, True, payload))
    return Media(video, audio, units)


# --- Annex B elementary streams --------------------------------------------------------------------

def parse_annexb(stream: bytes, codec: Codec, frame_ms: int) -> Media:
    """Access units of an Annex B stream made with access unit delimiters and no B-frames.

    The decoder configuration is built from the first parameter sets, as a WebRTC adapter would.
    """
    if codec is Codec.H264:
        nal_type, aud, keyframe_types = (lambda n: n[0] & 0x1F), 9, {5}
    else:
        nal_type, aud, keyframe_types = hevc.nal_type, 35, set(range(16, 22))
    groups: list[list[bytes]] = []
    for unit in nal.split_annexb(stream):
        if nal_type(unit) == aud:
            groups.append([])
        elif groups:
            groups[-1].append(unit)
    first = {nal_type(n): n for n in reversed(groups[0])}
    if codec is Codec.H264:
        config = h264.decoder_config_from_parameter_sets(first[7], first[8])
    else:
        config = hevc.decoder_config_from_parameter_sets(first[32], first[33], first[34])
    track = video_track(codec, config, frame_rate=1000 / frame_ms)
    units = [AccessUnit(track, i * frame_ms, i * frame_ms, any(nal_type(n) in keyframe_types for n in group),
                        nal.length_prefixed(group))
             for i, group in enumerate(groups)]
    return Media(track, None, units)


# --- Ogg Opus (RFC 3533, RFC 7845) -----------------------------------------------------------------

def ogg_packets(data: bytes) -> list[bytes]:
    packets: list[bytes] = []
    partial = b""
    pos = 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS"
        count = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + count]
        pos += 27 + count
        for size in lacing:
            partial += data[pos:pos + size]
            pos += size
            if size < 255:
                packets.append(partial)
                partial = b""
    return packets


def parse_ogg_opus(data: bytes, frame_ms: int = 20) -> Media:
    """Opus packets of an Ogg file (libopus's default 20 ms frames); the OpusHead is the track's config."""
    head, _tags, *packets = ogg_packets(data)
    track = audio_track(Codec.OPUS, head)
    return Media(None, track, [AccessUnit(track, i * frame_ms, i * frame_ms, True, p) for i, p in enumerate(packets)])


def interleave(video: Media, audio: Media) -> Media:
    units = sorted(video.units + audio.units, key=lambda u: (u.dts_ms, u.kind != "video"))
    return Media(video.video, audio.audio, units)


def without_config(media: Media) -> Media:
    """The same audio units on a track with no decoder configuration (a WebRTC Opus track with no OpusHead)."""
    assert media.audio is not None
    track = replace(media.audio, config=b"")
    return Media(media.video, track, [replace(u, track=track) for u in media.units])


# --- MP3 (ISO/IEC 11172-3 §2.4.1.3, 13818-3 and the MPEG 2.5 extension) ---------------------------

_MP3_BITRATES = {3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
                 2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}  # MPEG-2 / 2.5 layer III
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frame_format(frame: bytes) -> tuple[int, int]:
    """(sample rate in Hz, channels) from an MP3 frame header."""
    version = (frame[1] >> 3) & 3
    return _MP3_RATES[version][(frame[2] >> 2) & 3], 1 if frame[3] >> 6 == 3 else 2


def parse_mp3(data: bytes) -> Media:
    """The frames of a raw layer III stream written with no ID3 tag and no Xing frame."""
    frames: list[tuple[bytes, int]] = []
    pos = 0
    while pos + 4 <= len(data):
        head = int.from_bytes(data[pos:pos + 4], "big")
        assert head >> 21 == 0x7FF, "frame sync"
        version = (head >> 19) & 3
        rate = _MP3_RATES[version][(head >> 10) & 3]
        kbps = _MP3_BITRATES[3 if version == 3 else 2][(head >> 12) & 15]
        size = (144 if version == 3 else 72) * kbps * 1000 // rate + ((head >> 9) & 1)
        frames.append((data[pos:pos + size], rate))
        pos += size
    rate, channels = mp3_frame_format(data)
    track = audio_track(Codec.MP3, sample_rate=rate, channels=channels)
    samples = 1152 if rate >= 32000 else 576
    return Media(None, track, [AccessUnit(track, i * samples * 1000 // rate, i * samples * 1000 // rate, True, f)
                               for i, (f, _) in enumerate(frames)])


def only(media: Media, kind: str) -> Media:
    """The units of one kind of `media`, as a single-track Media."""
    video = media.video if kind == "video" else None
    audio = media.audio if kind == "audio" else None
    return Media(video, audio, [u for u in media.units if u.kind == kind])


# --- ffprobe ----------------------------------------------------------------------------------------

def cli_options(options: dict[str, Any]) -> list[str]:
    """ffmpeg-python input kwargs as ffmpeg/ffprobe command-line options."""
    return [arg for key, value in options.items() for arg in (f"-{key}", str(value))]


@dataclass(frozen=True)
class Probe:
    """What ffprobe saw: streams by codec_type (with `nb_read_frames`, the frames it decoded), packet PTS
    per codec_type in the stream time base, and everything it logged at level error."""

    streams: dict[str, dict[str, Any]]
    pts: dict[str, list[int]]
    errors: str


def probe(data: bytes, input_options: dict[str, Any]) -> Probe:
    """Decode `data` with ffprobe reading stdin with `input_options`, as the transcoder reads its input."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", *cli_options(input_options), "-count_frames", "-show_streams",
         "-show_entries", "packet=codec_type,pts", "-of", "json", "-i", "pipe:0"],
        input=data, capture_output=True, check=True, timeout=60)
    out = json.loads(proc.stdout)
    pts: dict[str, list[int]] = {}
    for packet in out.get("packets", []):
        pts.setdefault(packet["codec_type"], []).append(int(packet["pts"]))
    return Probe({s["codec_type"]: s for s in out["streams"]}, pts, proc.stderr.decode(errors="replace"))
