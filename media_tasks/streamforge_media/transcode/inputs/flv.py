"""FLV as the transcoder's input container (FLV spec v10.1, Annex E: the file format and its tags).

FLV carries exactly what RTMP carries, so it is the first choice whenever the tracks fit: H.264 video and
AAC / MP3 / Speex / G.711 audio. The tags are rebuilt from the neutral tracks and units, not copied from
a wire format, so any adapter's units can be written here.
"""

from __future__ import annotations

from typing import Any

from streamforge_media.codecs import h264
from streamforge_media.media import AccessUnit, Codec, MediaKind, Track
from streamforge_media.transcode.inputs.probe import input_options

_VIDEO_TAG = 9
_AUDIO_TAG = 8
_AVC = 7  # CodecID, §E.4.3.1
_KEYFRAME, _INTER_FRAME = 1, 2  # FrameType
_AVC_SEQUENCE_HEADER, _AVC_NALU = 0, 1  # AVCPacketType
_AAC_SEQUENCE_HEADER, _AAC_RAW = 0, 1  # AACPacketType
# SoundFormat (§E.4.2.1) and the SoundRate index's rates in Hz.
_SOUND_FORMAT = {Codec.MP3: 2, Codec.PCM_ALAW: 7, Codec.PCM_MULAW: 8, Codec.AAC: 10, Codec.SPEEX: 11}
_SOUND_RATES = (5512, 11025, 22050, 44100)
_AUDIO_CODECS = frozenset(_SOUND_FORMAT)
_MIN_CTS, _MAX_CTS = -(1 << 23), (1 << 23) - 1  # CompositionTime is SI24


def _audio_fits(track: Track) -> bool:
    if track.codec not in _AUDIO_CODECS:
        return False
    if track.codec is Codec.AAC:
        return bool(track.config)
    if track.codec is Codec.SPEEX:  # FLV's Speex is wideband mono only (§E.4.2.1)
        return track.sample_rate == 16000 and track.channels == 1
    if track.codec in (Codec.PCM_ALAW, Codec.PCM_MULAW):  # the demuxer decodes G.711 at 8 kHz only
        return track.sample_rate == 8000 and track.channels in (1, 2)
    return track.channels in (1, 2)


def _sound_header(track: Track) -> int:
    """The first byte of every audio tag: SoundFormat, SoundRate, SoundSize, SoundType (§E.4.2.1)."""
    if track.codec is Codec.AAC:
        return 0xAF  # the spec fixes AAC at "44 kHz, 16-bit, stereo"; the AudioSpecificConfig says the truth
    if track.codec is Codec.SPEEX:
        return 0xB6  # "11 kHz, 16-bit, mono", as ffmpeg's own muxer writes it; Speex is 16 kHz whatever it says
    stereo = 1 if track.channels >= 2 else 0
    if track.codec is Codec.MP3:
        # Format 2 at every rate: the spec's "MP3 8 kHz" (14) is unknown to ffmpeg's demuxer (5.1 leaves
        # the stream without a decoder), and the MP3 decoder reads the true rate from the frame headers.
        rate = min(range(4), key=lambda i: abs(_SOUND_RATES[i] - track.sample_rate))
        return _SOUND_FORMAT[Codec.MP3] << 4 | rate << 2 | 0x02 | stereo
    # G.711: rate index 0 and 16-bit size, as ffmpeg's muxer writes it; the demuxer fixes 8 kHz.
    return _SOUND_FORMAT[track.codec] << 4 | 0x02 | stereo


class FlvInput:
    """Writes a live FLV stream: the header with both tracks' decoder configurations, then one tag per unit.

    Tag timestamps are the unit's DTS in ms (32 bits with the extended byte, §E.4.1); H.264 tags carry
    PTS - DTS as the SI24 CompositionTime. Raises ValueError when the tracks do not fit FLV
    (`can_carry` says beforehand).
    """

    def __init__(self, video: Track | None, audio: Track | None) -> None:
        if not self.can_carry(video, audio):
            raise ValueError(f"FLV cannot carry {video and video.describe()} + {audio and audio.describe()}")
        self._video = video
        self._audio = audio
        self._sound_header = _sound_header(audio) if audio is not None else 0
        self.input_options: dict[str, Any] = input_options("flv")

    @staticmethod
    def can_carry(video: Track | None, audio: Track | None) -> bool:
        """Whether FLV can carry these tracks: at least one, H.264 with its avcC, and audio FLV has a format for."""
        if video is None and audio is None:
            return False
        if video is not None and (video.codec is not Codec.H264 or not video.config):
            return False
        return audio is None or _audio_fits(audio)

    def header(self) -> bytes:
        """The FLV header (§E.2), PreviousTagSize0, and the AVC / AAC sequence headers at timestamp 0."""
        flags = (0x04 if self._audio is not None else 0) | (0x01 if self._video is not None else 0)
        parts = [b"FLV\x01", bytes([flags]), (9).to_bytes(4, "big"), bytes(4)]
        if self._video is not None:
            # Units always carry 4-byte NAL unit lengths: the record must say so, whatever the source used.
            record = h264.with_nal_length_size(self._video.config, 4)
            parts.append(_tag(_VIDEO_TAG, 0, bytes([_KEYFRAME << 4 | _AVC, _AVC_SEQUENCE_HEADER, 0, 0, 0]) + record))
        if self._audio is not None and self._audio.codec is Codec.AAC:
            parts.append(_tag(_AUDIO_TAG, 0, bytes([self._sound_header, _AAC_SEQUENCE_HEADER]) + self._audio.config))
        return b"".join(parts)

    def unit(self, unit: AccessUnit, dts_ms: int, pts_ms: int) -> bytes:
        """One tag for `unit` at `dts_ms` (the tag timestamp) and `pts_ms` (ms, ≥ 0); raises ValueError
        for a unit of a codec this writer was not made for, or a PTS - DTS outside SI24."""
        if unit.kind is MediaKind.VIDEO:
            if self._video is None or unit.track.codec is not self._video.codec:
                raise ValueError(f"this FLV input has no {unit.track.codec} video track")
            cts = pts_ms - dts_ms
            if not _MIN_CTS <= cts <= _MAX_CTS:
                raise ValueError(f"composition time {cts} ms does not fit FLV")
            frame_type = _KEYFRAME if unit.keyframe else _INTER_FRAME
            head = bytes([frame_type << 4 | _AVC, _AVC_NALU]) + cts.to_bytes(3, "big", signed=True)
            return _tag(_VIDEO_TAG, dts_ms, head, unit.data)
        if self._audio is None or unit.track.codec is not self._audio.codec:
            raise ValueError(f"this FLV input has no {unit.track.codec} audio track")
        if self._audio.codec is Codec.AAC:
            return _tag(_AUDIO_TAG, dts_ms, bytes([self._sound_header, _AAC_RAW]), unit.data)
        return _tag(_AUDIO_TAG, dts_ms, bytes([self._sound_header]), unit.data)


def _tag(tag_type: int, timestamp_ms: int, head: bytes, body: bytes = b"") -> bytes:
    """A tag (§E.4.1) and its PreviousTagSize: type, DataSize, Timestamp + TimestampExtended, StreamID 0."""
    size = len(head) + len(body)
    ts = timestamp_ms & 0xFFFFFFFF
    header = bytes([tag_type]) + size.to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big") \
        + bytes([ts >> 24, 0, 0, 0])
    # One join: this runs for every unit of every publisher.
    return b"".join((header, head, body, (11 + size).to_bytes(4, "big")))
