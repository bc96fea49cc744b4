"""What manifests say about a rendition: codec strings (RFC 6381), H.264 levels and bandwidths.

HLS (`CODECS`, `BANDWIDTH`, `AVERAGE-BANDWIDTH`, RFC 8216bis §4.4.6.2) and DASH (`@codecs`, `@bandwidth`,
ISO/IEC 23009-1 §5.3.5.2) read the same figures from here, so the two manifests of one segment set agree.
The encoder settings make them true: the pipeline sets the profile and level named here.
"""

from __future__ import annotations

import math

from streamforge_media.ladder import AUDIO_BITRATE_KBPS, Rendition
from streamforge_media.segment_format import SegmentFormat

AAC_LC_CODEC = "mp4a.40.2"
"""MPEG-4 audio, object type 2 (AAC LC): what the pipeline encodes (RFC 6381 §3.3)."""
HIGH_PROFILE_IDC = 0x64
AUDIO_SAMPLE_RATE = 48000
AUDIO_CHANNELS = 2
AAC_FRAME_SAMPLES = 1024
"""Samples per AAC LC frame (ISO/IEC 14496-3 §4.5.2.1): an audio sample of the pipeline lasts 1024/48000 s."""

# (level, max macroblocks per frame, max macroblocks per second), H.264 Annex A table A-1.
_AVC_LEVELS = ((30, 1620, 40500), (31, 3600, 108000), (32, 5120, 216000), (40, 8192, 245760),
               (42, 8704, 522240), (50, 22080, 589824), (51, 36864, 983040), (52, 36864, 2073600))


def avc_level(width: int, height: int, fps: float) -> int:
    """The lowest H.264 level (times ten) that admits this size (pixels) and frame rate (frames per second)."""
    mbs = math.ceil(width / 16) * math.ceil(height / 16)
    for level, max_frame, max_rate in _AVC_LEVELS:
        if mbs <= max_frame and mbs * fps <= max_rate:
            return level
    return _AVC_LEVELS[-1][0]


def video_codec(rendition: Rendition, fps: float) -> str:
    """`avc1.PPCCLL` for the High profile at the rendition's level (RFC 6381 §3.3, ISO/IEC 14496-15 §E.3)."""
    return f"avc1.{HIGH_PROFILE_IDC:02x}00{avc_level(rendition.width, rendition.height, fps):02x}"


def variant_codecs(rendition: Rendition, fps: float, *, with_audio: bool) -> str:
    """Every codec a player needs for this rendition, plus the audio that goes with it, comma-separated."""
    if rendition.audio_only:
        return AAC_LC_CODEC
    video = video_codec(rendition, fps)
    return f"{video},{AAC_LC_CODEC}" if with_audio else video


def bandwidth(rendition: Rendition, fmt: SegmentFormat, *, with_audio: bool) -> tuple[int, int]:
    """(peak, average) bits per second of the rendition's segments, with the audio played beside it.

    The peak is the encoder's VBV maximum rate plus audio, the average its target rate plus audio; both
    times the container's overhead (`SegmentFormat.peak_overhead`, `average_overhead`).
    """
    if rendition.audio_only:
        return (round(rendition.bitrate_kbps * 1000 * fmt.peak_overhead),
                round(rendition.bitrate_kbps * 1000 * fmt.average_overhead))
    audio_kbps = AUDIO_BITRATE_KBPS if with_audio else 0
    return (round((rendition.maxrate_kbps + audio_kbps) * 1000 * fmt.peak_overhead),
            round((rendition.bitrate_kbps + audio_kbps) * 1000 * fmt.average_overhead))
