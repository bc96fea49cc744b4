"""WebRTC's encoded frames → neutral tracks and access units (sans-I/O).

aiortc hands the adapter each track's frames still encoded (see `passthrough`): an H.264 access unit in
Annex B as the RTP depacketiser (RFC 6184 §5) rebuilt it, or one Opus packet (RFC 7587), each with its
RTP timestamp rebased to 0 for that track, and the monotonic time it left the jitter buffer.

Timestamps: each track's RTP clock (90 kHz video, 48 kHz Opus) counts from that track's first frame, and
aiortc drops the RTCP sender reports that would align the two tracks, so a track's first frame is placed at
its arrival time after the publish began, and the rest of the track follows its own RTP clock. The skew
left is the difference in the two tracks' network and jitter-buffer delays (tens of ms). WHIP senders
(browsers, OBS) send no B-frames, so PTS = DTS.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamforge_media import codecs
from streamforge_media.codecs import CodecError, h264, nal
from streamforge_media.media import AccessUnit, Codec, MediaKind, Track

H264_CLOCK_HZ = 90_000  # RFC 6184 §8.2.1
OPUS_CLOCK_HZ = 48_000  # RFC 7587 §4.1
_SPS, _PPS, _AUD, _IDR = 7, 8, 9, 5


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One frame as it left aiortc's jitter buffer: `data` (Annex B H.264 or one Opus packet), the track's
    RTP `timestamp` (rebased to 0 at the track's first frame) and `arrived` (time.monotonic(), seconds)."""

    data: bytes
    timestamp: int
    arrived: float


class _TrackClock:
    def __init__(self, clock_hz: int, started: float) -> None:
        self.clock_hz = clock_hz
        self.started = started
        self.origin_ms: int | None = None

    def ms(self, frame: EncodedFrame) -> int:
        if self.origin_ms is None:
            self.origin_ms = max(0, round((frame.arrived - self.started) * 1000))
        return self.origin_ms + frame.timestamp * 1000 // self.clock_hz


class H264Frames:
    """Annex B H.264 access units → `AccessUnit`s with a `Track` made from the in-band SPS and PPS.

    Frames before the first SPS/PPS pair cannot be decoded and give None; a new SPS or PPS that differs
    from the current ones gives a new `Track` (14496-15 §5.3.3.1 avcC built from them). Units are 4-byte
    length-prefixed NAL units without the parameter sets and access unit delimiters (the track holds those).
    """

    def __init__(self, started: float) -> None:
        self._clock = _TrackClock(H264_CLOCK_HZ, started)
        self.track: Track | None = None
        self._sps: bytes | None = None
        self._pps: bytes | None = None

    def unit(self, frame: EncodedFrame) -> AccessUnit | None:
        """The access unit of `frame`, or None when it cannot be decoded yet; raises CodecError on bad data."""
        units = nal.split_annexb(frame.data)
        sps = next((u for u in units if u[0] & 0x1F == _SPS), None)
        pps = next((u for u in units if u[0] & 0x1F == _PPS), None)
        if (sps is not None and sps != self._sps) or (pps is not None and pps != self._pps):
            self._sps, self._pps = sps or self._sps, pps or self._pps
            if self._sps is not None and self._pps is not None:
                config = h264.decoder_config_from_parameter_sets(self._sps, self._pps)
                self.track = codecs.video_track(Codec.H264, config)
        pictures = [u for u in units if u[0] & 0x1F not in (_SPS, _PPS, _AUD)]
        if self.track is None or not pictures:
            return None
        ms = self._clock.ms(frame)
        keyframe = any(u[0] & 0x1F == _IDR for u in pictures)
        return AccessUnit(self.track, ms, ms, keyframe, nal.length_prefixed(pictures))


class OpusFrames:
    """Opus packets → `AccessUnit`s of one 48 kHz stereo track (WebRTC's `opus/48000/2`, RFC 7587 §7)."""

    def __init__(self, started: float) -> None:
        self._clock = _TrackClock(OPUS_CLOCK_HZ, started)
        self.track = codecs.audio_track(Codec.OPUS, channels=2)

    def unit(self, frame: EncodedFrame) -> AccessUnit | None:
        """The access unit of one packet; None for an empty packet (DTX carries nothing to decode)."""
        if not frame.data:
            return None
        ms = self._clock.ms(frame)
        return AccessUnit(self.track, ms, ms, True, frame.data)


def frames_for(kind: MediaKind, started: float) -> H264Frames | OpusFrames:
    """The converter for a WebRTC track of `kind` (video: H.264, audio: Opus: the only codecs answered)."""
    return H264Frames(started) if kind is MediaKind.VIDEO else OpusFrames(started)


__all__ = ["CodecError", "EncodedFrame", "H264Frames", "OpusFrames", "frames_for"]
