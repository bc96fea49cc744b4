"""Segment formats: everything that differs between CMAF and MPEG-TS segments, defined here and only here.

`STREAMFORGE_SEGMENT_FORMAT` picks one (`cmaf`, the default, or `ts`). A format fixes:
- the segment's extension and Content-Type, and whether it needs an init segment (a CMAF header,
  ISO/IEC 23000-19 §7.3.2.1, named by `EXT-X-MAP`, RFC 8216bis §4.4.4.5, and by the MPD's
  `SegmentTemplate@initialization`, ISO/IEC 23009-1 §5.3.9.4);
- ffmpeg's HLS muxer options that write such segments, and the local file names ffmpeg uses;
- the HLS compatibility version its playlists need (RFC 8216bis §8: EXT-X-MAP without I-frames needs 6;
  Apple's authoring specification asks 7 for fMP4);
- whether audio is encoded once as its own rendition (CMAF: an `EXT-X-MEDIA TYPE=AUDIO` rendition and a DASH
  audio AdaptationSet) or muxed into every video rung (MPEG-TS, as players that only read TS expect);
- whether a DASH MPD can be written over the segments (ISO BMFF segments only);
- the container's overhead over the encoders' bitrates, for BANDWIDTH and AVERAGE-BANDWIDTH.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_PLAYLIST = "index.m3u8"
LOCAL_INIT = "init.mp4"


@dataclass(frozen=True)
class SegmentFormat:
    name: str
    extension: str
    content_type: str
    init_content_type: str | None
    """None: segments decode alone (no init segment)."""
    hls_segment_type: str
    playlist_version: int
    audio_rendition: bool
    dash: bool
    peak_overhead: float
    """BANDWIDTH = (video maxrate + audio) x this: the container's bytes over the encoders' peak."""
    average_overhead: float

    @property
    def has_init(self) -> bool:
        return self.init_content_type is not None

    def muxer_options(self, rendition_dir: Path, *, segment_s: float, list_size: int) -> dict[str, Any]:
        """ffmpeg HLS muxer options writing this format's segments into `rendition_dir`, its playlist at
        `rendition_dir / LOCAL_PLAYLIST` (the output's file name, given separately to ffmpeg)."""
        options: dict[str, Any] = {
            "f": "hls", "hls_time": f"{segment_s:g}", "hls_list_size": list_size, "start_number": 0,
            "hls_segment_type": self.hls_segment_type,
            "hls_segment_filename": str(rendition_dir / f"seg_%06d{self.extension}"),
        }
        if self.has_init:
            options["hls_fmp4_init_filename"] = LOCAL_INIT
        return options


CMAF = SegmentFormat(
    name="cmaf", extension=".m4s", content_type="video/mp4", init_content_type="video/mp4",
    hls_segment_type="fmp4", playlist_version=7, audio_rendition=True, dash=True,
    peak_overhead=1.05, average_overhead=1.02)

TS = SegmentFormat(
    name="ts", extension=".ts", content_type="video/mp2t", init_content_type=None,
    hls_segment_type="mpegts", playlist_version=3, audio_rendition=False, dash=False,
    # MPEG-TS spends ~4% on 188-byte packet headers and more on PES headers and PCR/PAT/PMT at low rates.
    peak_overhead=1.10, average_overhead=1.05)

FORMATS = {f.name: f for f in (CMAF, TS)}
DEFAULT = CMAF


def segment_format(name: str) -> SegmentFormat:
    """The format called `name` (`cmaf` or `ts`, case-insensitive); ValueError for another."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown segment format {name!r} (one of {', '.join(FORMATS)})") from None
