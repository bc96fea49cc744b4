"""The media task's protocol-neutral units: tracks and access units (glossary: docs/architecture.md).

Every ingest adapter (RTMP today; WHIP and SRT next) turns its wire format into these, and everything
after the adapter (timestamp normaliser, track rules, transcoder inputs, health) reads only these.

Payload conventions, the same for every protocol:
- H.264 and HEVC access units are the ISO/IEC 14496-15 sample format: NAL units each preceded by a
  4-byte big-endian length (the form MP4 and Matroska carry). A track's `config` is the
  AVCDecoderConfigurationRecord (14496-15 §5.3.3.1) or HEVCDecoderConfigurationRecord (§8.3.3.1).
- AAC units are raw frames (no ADTS header); `config` is the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
- Opus units are raw packets (RFC 6716); `config` is the OpusHead (RFC 7845 §5.1) when known.
- MP3, Speex and G.711 units are raw frames; they need no `config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MediaKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


class Codec(StrEnum):
    """Codecs a track may carry; the values are ffmpeg's codec names."""

    H264 = "h264"
    HEVC = "hevc"
    AAC = "aac"
    MP3 = "mp3"
    OPUS = "opus"
    SPEEX = "speex"
    PCM_ALAW = "pcm_alaw"
    PCM_MULAW = "pcm_mulaw"

    @property
    def kind(self) -> MediaKind:
        return MediaKind.VIDEO if self in (Codec.H264, Codec.HEVC) else MediaKind.AUDIO


@dataclass(frozen=True, slots=True)
class Track:
    """One elementary stream of a publisher as its decoder needs it.

    A new decoder configuration (new SPS, another codec, another sample rate) is a new `Track`;
    two tracks with equal fields are the same configuration. Sizes are in pixels, `frame_rate` in
    frames per second (0: not known), `sample_rate` in Hz, `channels` a count (0: not known).
    """

    codec: Codec
    config: bytes = b""
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0
    sample_rate: int = 0
    channels: int = 0

    @property
    def kind(self) -> MediaKind:
        return self.codec.kind

    def describe(self) -> str:
        """A short human-readable form for logs: `h264 1280x720` or `aac 48000 Hz 2 ch`."""
        if self.kind is MediaKind.VIDEO:
            return f"{self.codec} {self.width}x{self.height}"
        return f"{self.codec} {self.sample_rate} Hz {self.channels} ch"


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One decodable unit of a track: a video frame or an audio frame (or packet).

    `dts_ms` and `pts_ms` are milliseconds on the publisher's clock until the timestamp normaliser has
    run, and on the broadcast's monotonic clock after it. `keyframe` marks a random access point
    (IDR/IRAP for video; every audio unit is one).
    """

    track: Track
    dts_ms: int
    pts_ms: int
    keyframe: bool
    data: bytes

    @property
    def kind(self) -> MediaKind:
        return self.track.codec.kind


@dataclass(frozen=True, slots=True)
class PublisherHints:
    """What a publisher declares before its media (RTMP onMetaData, an SDP offer): hints, never facts.

    `kinds` is the set of track kinds announced (None: nothing announced). Sizes in pixels and the frame
    rate are 0 when not announced. What actually arrives always wins over a hint.
    """

    kinds: frozenset[MediaKind] | None = None
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0
