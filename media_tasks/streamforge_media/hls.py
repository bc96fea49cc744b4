"""HLS playlists: reading ffmpeg's local ones and writing the ones we publish."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from streamforge_media.ladder import AUDIO_BITRATE_KBPS, Rendition

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_CONTENT_TYPE = "video/mp2t"
PLAYLIST_CACHE_CONTROL = "max-age=1"
SEGMENT_CACHE_CONTROL = "public, max-age=31536000, immutable"
AAC_LC_CODEC = "mp4a.40.2"
HIGH_PROFILE_IDC = 0x64

# (level, max macroblocks per frame, max macroblocks per second), H.264 Annex A table A-1.
_AVC_LEVELS = ((30, 1620, 40500), (31, 3600, 108000), (32, 5120, 216000), (40, 8192, 245760),
               (42, 8704, 522240), (50, 22080, 589824), (51, 36864, 983040), (52, 36864, 2073600))


@dataclass(frozen=True)
class LocalSegment:
    uri: str
    duration: float


@dataclass(frozen=True)
class PlaylistEntry:
    uri: str
    duration: float
    discontinuity: bool = False


def parse_media_playlist(text: str) -> list[LocalSegment]:
    segments = []
    duration: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:"):].split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            segments.append(LocalSegment(line, duration))
            duration = None
    return segments


def target_duration(durations: Sequence[float], floor: int = 2) -> int:
    # RFC 8216 §4.3.3.1 compares against EXTINF rounded to the nearest integer.
    return max([floor, *(math.floor(d + 0.5) for d in durations)])


def render_media_playlist(entries: Sequence[PlaylistEntry], *, target: int, media_sequence: int,
                          discontinuity_sequence: int = 0, ended: bool = False, vod: bool = False) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}"]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    if vod:
        lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    for entry in entries:
        if entry.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [f"#EXTINF:{entry.duration:.3f},", entry.uri]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def avc_level(width: int, height: int, fps: float) -> int:
    """The lowest H.264 level (times ten) that admits this size and frame rate."""
    mbs = math.ceil(width / 16) * math.ceil(height / 16)
    for level, max_frame, max_rate in _AVC_LEVELS:
        if mbs <= max_frame and mbs * fps <= max_rate:
            return level
    return _AVC_LEVELS[-1][0]


def codecs(level: int, has_audio: bool) -> str:
    video = f"avc1.{HIGH_PROFILE_IDC:02x}00{level:02x}"
    return f"{video},{AAC_LC_CODEC}" if has_audio else video


def render_master(renditions: Sequence[Rendition], *, fps: float, has_audio: bool) -> str:
    """The master playlist (RFC 8216 §4.3.4.2): one variant per rendition; an audio-only one says so in CODECS."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio_kbps = AUDIO_BITRATE_KBPS if has_audio else 0
    for r in renditions:
        if r.audio_only:
            lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={r.bitrate_kbps * 1100},"
                         f'AVERAGE-BANDWIDTH={r.bitrate_kbps * 1050},CODECS="{AAC_LC_CODEC}"')
        else:
            # BANDWIDTH is a peak: the VBV max rate plus audio plus ~10% MPEG-TS overhead.
            peak = int((r.maxrate_kbps + audio_kbps) * 1100)
            average = int((r.bitrate_kbps + audio_kbps) * 1050)
            lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},"
                         f"RESOLUTION={r.width}x{r.height},FRAME-RATE={fps:.3f},"
                         f'CODECS="{codecs(avc_level(r.width, r.height, fps), has_audio)}"')
        lines.append(f"{r.name}/index.m3u8")
    return "\n".join(lines) + "\n"
