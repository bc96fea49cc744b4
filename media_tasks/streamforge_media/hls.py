"""HLS playlists as text (RFC 8216bis): reading ffmpeg's local ones and writing the ones we publish.

Pure functions: the HLS packager (`packaging.packagers.HlsPackager`) decides what goes in them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from streamforge_media import signalling
from streamforge_media.ladder import Rendition
from streamforge_media.segment_format import SegmentFormat

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
AUDIO_GROUP = "audio"


@dataclass(frozen=True)
class LocalSegment:
    uri: str
    duration: float


@dataclass(frozen=True)
class PlaylistEntry:
    """One segment line of a media playlist.

    `duration` in seconds (EXTINF); `program_date_time` the wall clock of its first frame, epoch seconds
    (EXT-X-PROGRAM-DATE-TIME, §4.4.4.6); `map_uri` its init segment (EXT-X-MAP, §4.4.4.5), None for
    segments that decode alone.
    """

    uri: str
    duration: float
    discontinuity: bool = False
    program_date_time: float | None = None
    map_uri: str | None = None


def parse_media_playlist(text: str) -> list[LocalSegment]:
    """The segments of a media playlist, in order (tags other than EXTINF are skipped)."""
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


def media_sequence(text: str) -> int:
    """EXT-X-MEDIA-SEQUENCE of a media playlist: the sequence number of its first segment (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            return int(line.split(":", 1)[1])
    return 0


def target_duration(durations: Sequence[float], floor: int = 2) -> int:
    # RFC 8216bis §4.4.3.1 compares against EXTINF rounded to the nearest integer.
    return max([floor, *(math.floor(d + 0.5) for d in durations)])


def format_date_time(epoch_s: float) -> str:
    """ISO 8601 with milliseconds and `Z`, as EXT-X-PROGRAM-DATE-TIME and xs:dateTime want it."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def render_media_playlist(entries: Sequence[PlaylistEntry], *, target: int, media_sequence: int,
                          discontinuity_sequence: int = 0, ended: bool = False, vod: bool = False,
                          version: int = 3) -> str:
    """A media playlist (§4.4.3, §4.4.4). Without `vod` it is a sliding live window (no EXT-X-PLAYLIST-TYPE)."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}"]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    if vod:
        lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    current_map: str | None = None
    for entry in entries:
        if entry.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if entry.map_uri is not None and entry.map_uri != current_map:
            lines.append(f'#EXT-X-MAP:URI="{entry.map_uri}"')
            current_map = entry.map_uri
        if entry.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(entry.program_date_time)}")
        lines += [f"#EXTINF:{entry.duration:.3f},", entry.uri]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def render_master(renditions: Sequence[Rendition], *, fps: float, has_audio: bool, fmt: SegmentFormat,
                  uris: Mapping[str, str] | None = None) -> str:
    """The master playlist (§4.4.6): one variant per video rendition.

    `uris` maps a rendition's name to its media playlist's URI (default `{name}/index.m3u8`). With a format
    whose audio is its own rendition, the `audio` rendition is an `EXT-X-MEDIA TYPE=AUDIO` (§4.4.6.1) named by
    every variant's AUDIO attribute; alone (an audio-only source) it is the one variant. Otherwise audio is
    muxed into every variant. BANDWIDTH, AVERAGE-BANDWIDTH and CODECS count the audio either way (§4.4.6.2).
    """
    uris = uris or {r.name: f"{r.name}/index.m3u8" for r in renditions}
    video = [r for r in renditions if not r.audio_only]
    audio = next((r for r in renditions if r.audio_only), None)
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{fmt.playlist_version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    grouped = audio is not None and bool(video)
    if grouped and audio is not None:
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,'
                     f'CHANNELS="{signalling.AUDIO_CHANNELS}",URI="{uris[audio.name]}"')
    if not video and audio is not None:
        peak, average = signalling.bandwidth(audio, fmt, with_audio=True)
        lines += [f'#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},'
                  f'CODECS="{signalling.AAC_LC_CODEC}"', uris[audio.name]]
    for r in video:
        with_audio = grouped or (has_audio and not fmt.audio_rendition)
        peak, average = signalling.bandwidth(r, fmt, with_audio=with_audio)
        attributes = (f"BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},RESOLUTION={r.width}x{r.height},"
                      f'FRAME-RATE={fps:.3f},CODECS="{signalling.variant_codecs(r, fps, with_audio=with_audio)}"')
        if grouped:
            attributes += f',AUDIO="{AUDIO_GROUP}"'
        lines += [f"#EXT-X-STREAM-INF:{attributes}", uris[r.name]]
    return "\n".join(lines) + "\n"
