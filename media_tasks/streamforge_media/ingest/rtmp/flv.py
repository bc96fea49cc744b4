"""RTMP audio/video messages (FLV tag bodies) → `Track`s and `AccessUnit`s; onMetaData → `PublisherHints`.

An RTMP media message's payload is an FLV AUDIODATA/VIDEODATA body (FLV spec v10.1 E.4.2, E.4.3), or
its Enhanced RTMP form (veovera enhanced-rtmp v2, "Enhanced Audio", "Enhanced Video"), which puts a
FourCC where the 4-bit codec id was. `TagConverter` reads both, one instance per publisher connection,
because a frame is only meaningful with the sequence header (decoder configuration) sent before it.

What the platform takes: H.264 (legacy id 7, `avc1`), HEVC (id 12 as some encoders send it, `hvc1`),
AAC (10, `mp4a`), MP3 (2, 14, `.mp3`), Opus (`Opus`), Speex (11), G.711 A-law (7) and µ-law (8).
Anything else is refused with `UnsupportedMedia`, whose message is meant for the publisher.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from streamforge_media.codecs import CodecError, audio_track, h264, hevc, nal, video_track
from streamforge_media.media import AccessUnit, Codec, MediaKind, PublisherHints, Track

log = logging.getLogger(__name__)

# FourCCs for the connect negotiation (enhanced-rtmp v2, "Enhancing NetConnection connect Command").
VIDEO_FOURCCS = {"avc1": Codec.H264, "hvc1": Codec.HEVC}
AUDIO_FOURCCS = {"Opus": Codec.OPUS, "mp4a": Codec.AAC, ".mp3": Codec.MP3}
SUPPORTED_FOURCCS = (*VIDEO_FOURCCS, *AUDIO_FOURCCS)
SUPPORTED = "H.264 or HEVC video, AAC, Opus, MP3, Speex or G.711 audio"

_LEGACY_VIDEO = {7: Codec.H264, 12: Codec.HEVC}
_LEGACY_VIDEO_NAMES = {1: "JPEG", 2: "Sorenson H.263", 3: "Screen video", 4: "On2 VP6",
                       5: "On2 VP6 with alpha", 6: "Screen video v2"}
_VIDEO_FOURCC_NAMES = {"av01": "AV1", "vp09": "VP9", "vp08": "VP8", "vvc1": "VVC"}
_SOUND_NAMES = {0: "linear PCM", 1: "ADPCM", 3: "linear PCM", 4: "Nellymoser", 5: "Nellymoser",
                6: "Nellymoser", 15: "device-specific sound"}
_AUDIO_FOURCC_NAMES = {"fLaC": "FLAC", "ac-3": "AC-3", "ec-3": "E-AC-3"}
_SOUND_RATES = (5512, 11025, 22050, 44100)  # the SoundRate field, E.4.2.1

# VideoFrameType (E.4.3.1 and enhanced-rtmp): 1 key, 2 inter, 3 disposable, 4 generated key, 5 command.
_KEY_FRAMES = (1, 4)
_COMMAND_FRAME = 5
# Legacy AVCPacketType / AACPacketType.
_SEQUENCE_HEADER, _NALU = 0, 1
# Enhanced VideoPacketType / AudioPacketType; MPEG2TSSequenceStart (5, AV1 only) and unknown types are refused.
_SEQUENCE_START, _CODED_FRAMES, _SEQUENCE_END, _CODED_FRAMES_X, _METADATA = 0, 1, 2, 3, 4
_VIDEO_MULTITRACK, _AUDIO_MULTICHANNEL_CONFIG, _AUDIO_MULTITRACK, _MOD_EX = 6, 4, 5, 7
_SOUND_EX_HEADER = 9
_SOUND_AAC, _SOUND_MP3, _SOUND_MP3_8K, _SOUND_SPEEX, _SOUND_ALAW, _SOUND_MULAW = 10, 2, 14, 11, 7, 8


class UnsupportedMedia(ValueError):
    """The publisher sends media the platform cannot take (a codec, a packet type, a corrupt configuration).

    The message says what was sent and what is supported, for the publisher's status; it never holds the key.
    """


def _unsupported(what: str) -> UnsupportedMedia:
    return UnsupportedMedia(f"{what} is not supported; send {SUPPORTED}")


def _si24(data: bytes) -> int:
    value = int.from_bytes(data[:3], "big")
    return value - (1 << 24) if value & 0x800000 else value


def _fourcc(data: bytes) -> str:
    return data.decode("latin-1")


def _name(names: Mapping[str, str], fourcc: str) -> str:
    return f"{names[fourcc]} ({fourcc!r})" if fourcc in names else repr(fourcc)


def _skip_mod_ex(payload: bytes, packet_type: int, pos: int) -> tuple[int, int]:
    """Step over ModEx prefixes (enhanced-rtmp v2): returns the real packet type and where its body starts.

    The only ModEx defined, TimestampOffsetNano, shifts a frame by under a millisecond: ignored, since
    every timestamp downstream is in milliseconds.
    """
    while packet_type == _MOD_EX:
        if len(payload) < pos + 1:
            raise UnsupportedMedia("truncated ModEx header")
        size = payload[pos] + 1
        pos += 1
        if size == 256:
            size = int.from_bytes(payload[pos:pos + 2], "big") + 1
            pos += 2
        pos += size
        if len(payload) < pos + 1:
            raise UnsupportedMedia("truncated ModEx header")
        packet_type = payload[pos] & 0x0F
        pos += 1
    return packet_type, pos


class TagConverter:
    """One publisher connection's media messages → access units, keeping the current track of each kind.

    `video`/`audio` take the RTMP message timestamp (ms, the publisher's clock, not normalised) and the
    payload, and return an `AccessUnit`, or None for what carries no frame (sequence headers, end of
    sequence, command frames, metadata frames, silence, frames before their configuration). A sequence
    header resent byte-identical keeps the same `Track`; a changed one makes a new one. Raises
    `UnsupportedMedia`.
    """

    def __init__(self) -> None:
        self.video_track: Track | None = None
        self.audio_track: Track | None = None
        self._video_config = b""  # as the publisher sent it, to recognise a resend
        self._nal_length_size = 4
        self._audio_config: tuple[Codec, bytes, int, int] | None = None
        self._warned = False

    def video(self, timestamp: int, payload: bytes) -> AccessUnit | None:
        """One VIDEODATA body (E.4.3.1) or ExVideoTagHeader + body (enhanced-rtmp v2, "Enhanced Video")."""
        if not payload:
            return None
        frame_type = (payload[0] >> 4) & 0x07
        if not payload[0] & 0x80:
            if frame_type == _COMMAND_FRAME:
                return None
            codec_id = payload[0] & 0x0F
            codec = _LEGACY_VIDEO.get(codec_id)
            if codec is None:
                name = _LEGACY_VIDEO_NAMES.get(codec_id, f"codec id {codec_id}")
                raise _unsupported(f"video codec {name}")
            if len(payload) < 5:
                return None
            packet_type = payload[1]
            if packet_type == _SEQUENCE_HEADER:
                self._set_video_config(codec, payload[5:])
            elif packet_type == _NALU:
                return self._video_unit(codec, timestamp, _si24(payload[2:5]), frame_type, payload[5:])
            return None  # end of sequence: the next sequence header says what follows
        packet_type, pos = _skip_mod_ex(payload, payload[0] & 0x0F, 1)
        if frame_type == _COMMAND_FRAME and packet_type != _METADATA:
            return None
        if packet_type == _VIDEO_MULTITRACK:
            raise _unsupported("multitrack video")
        fourcc = _fourcc(payload[pos:pos + 4])
        pos += 4
        codec = VIDEO_FOURCCS.get(fourcc)
        if codec is None:
            raise _unsupported(f"video codec {_name(_VIDEO_FOURCC_NAMES, fourcc)}")
        if packet_type == _SEQUENCE_START:
            self._set_video_config(codec, payload[pos:])
            return None
        if packet_type == _CODED_FRAMES:
            return self._video_unit(codec, timestamp, _si24(payload[pos:pos + 3]), frame_type, payload[pos + 3:])
        if packet_type == _CODED_FRAMES_X:
            return self._video_unit(codec, timestamp, 0, frame_type, payload[pos:])
        if packet_type in (_SEQUENCE_END, _METADATA):  # metadata frames carry HDR colour info: not needed
            return None
        raise _unsupported(f"video packet type {packet_type} for {fourcc!r}")

    def audio(self, timestamp: int, payload: bytes) -> AccessUnit | None:
        """One AUDIODATA body (E.4.2.1) or ExAudioTagHeader + body (enhanced-rtmp v2, "Enhanced Audio")."""
        if not payload:
            return None  # the "audio silence" message
        sound_format = payload[0] >> 4
        if sound_format == _SOUND_EX_HEADER:
            return self._ex_audio(timestamp, payload)
        rate = _SOUND_RATES[(payload[0] >> 2) & 0x03]
        channels = 2 if payload[0] & 0x01 else 1
        if sound_format == _SOUND_AAC:
            if len(payload) < 2:
                return None
            if payload[1] == _SEQUENCE_HEADER:
                self._set_audio(Codec.AAC, payload[2:], rate, channels)
                return None
            return self._audio_unit(Codec.AAC, timestamp, payload[2:])
        if sound_format in (_SOUND_MP3, _SOUND_MP3_8K):
            codec, rate = Codec.MP3, 8000 if sound_format == _SOUND_MP3_8K else rate
        elif sound_format == _SOUND_SPEEX:
            codec, rate, channels = Codec.SPEEX, 16000, 1  # E.4.2.1: Speex is always 16 kHz mono
        elif sound_format in (_SOUND_ALAW, _SOUND_MULAW):
            codec, rate = (Codec.PCM_ALAW if sound_format == _SOUND_ALAW else Codec.PCM_MULAW), 8000
        else:
            name = _SOUND_NAMES.get(sound_format, f"sound format {sound_format}")
            raise _unsupported(f"audio codec {name}")
        self._set_audio(codec, b"", rate, channels)
        return self._audio_unit(codec, timestamp, payload[1:])

    def _ex_audio(self, timestamp: int, payload: bytes) -> AccessUnit | None:
        packet_type, pos = _skip_mod_ex(payload, payload[0] & 0x0F, 1)
        if packet_type == _AUDIO_MULTITRACK:
            raise _unsupported("multitrack audio")
        fourcc = _fourcc(payload[pos:pos + 4])
        pos += 4
        codec = AUDIO_FOURCCS.get(fourcc)
        if codec is None:
            raise _unsupported(f"audio codec {_name(_AUDIO_FOURCC_NAMES, fourcc)}")
        if packet_type == _SEQUENCE_START:
            # mp4a: AudioSpecificConfig; Opus: OpusHead, possibly empty; .mp3: nothing defined, nothing needed.
            self._set_audio(codec, b"" if codec is Codec.MP3 else payload[pos:], 0, 0)
            return None
        if packet_type == _CODED_FRAMES:
            if codec is not Codec.AAC and (self.audio_track is None or self.audio_track.codec is not codec):
                self._set_audio(codec, b"", 0, 0)  # Opus and MP3 frames decode without a sequence start
            return self._audio_unit(codec, timestamp, payload[pos:])
        if packet_type in (_SEQUENCE_END, _AUDIO_MULTICHANNEL_CONFIG):  # channel layout: the decoder's business
            return None
        raise _unsupported(f"audio packet type {packet_type} for {fourcc!r}")

    def _set_video_config(self, codec: Codec, config: bytes) -> None:
        if self.video_track is not None and self.video_track.codec is codec and config == self._video_config:
            return
        try:
            records = h264 if codec is Codec.H264 else hevc
            length_size = records.nal_length_size(config)
            # Units are re-framed with 4-byte lengths (`_video_unit`), so the record must say so too.
            track = video_track(codec, config if length_size == 4 else records.with_nal_length_size(config))
        except CodecError as exc:
            raise UnsupportedMedia(f"corrupt {codec} decoder configuration ({exc}); send {SUPPORTED}") from exc
        self.video_track, self._video_config, self._nal_length_size = track, config, length_size
        log.debug("video track %s", track.describe())

    def _video_unit(self, codec: Codec, timestamp: int, composition: int, frame_type: int,
                    data: bytes) -> AccessUnit | None:
        track = self.video_track
        if track is None or track.codec is not codec or not data:
            return None  # no configuration yet (or for another codec): undecodable
        if self._nal_length_size != 4:
            try:
                data = nal.relength(data, self._nal_length_size)
            except CodecError as exc:
                self._warn(f"dropping a malformed {codec} frame: {exc}")
                return None
        return AccessUnit(track, timestamp, timestamp + composition, frame_type in _KEY_FRAMES, data)

    def _set_audio(self, codec: Codec, config: bytes, rate: int, channels: int) -> None:
        key = (codec, config, rate, channels)
        if key == self._audio_config:
            return
        try:
            track = audio_track(codec, config, sample_rate=rate, channels=channels)
        except CodecError as exc:
            raise UnsupportedMedia(f"corrupt {codec} decoder configuration ({exc}); send {SUPPORTED}") from exc
        self.audio_track, self._audio_config = track, key
        log.debug("audio track %s", track.describe())

    def _audio_unit(self, codec: Codec, timestamp: int, data: bytes) -> AccessUnit | None:
        track = self.audio_track
        if track is None or track.codec is not codec or not data:
            return None
        return AccessUnit(track, timestamp, timestamp, True, data)

    def _warn(self, message: str) -> None:
        # Once per connection: a broken encoder would otherwise log every frame.
        if not self._warned:
            self._warned = True
            log.warning("%s", message)


def hints_from_metadata(metadata: Mapping[str, Any]) -> PublisherHints:
    """onMetaData's properties (FLV spec v10.1 E.5, enhanced-rtmp v2 "Enhancing onMetaData") → `PublisherHints`.

    A kind is announced by a `videocodecid`/`audiocodecid` that is present and not empty, zero or false
    (a number, or a FourCC as a number or string); with neither present, `kinds` is None. Sizes come
    from `width`/`height`, the frame rate from `framerate`, `videoframerate` or `fps`; values that are
    not positive finite numbers are left out (0).
    """
    kinds: set[MediaKind] = set()
    announced = False
    for key, kind in (("videocodecid", MediaKind.VIDEO), ("audiocodecid", MediaKind.AUDIO)):
        if key in metadata:
            announced = True
            value = metadata[key]
            if isinstance(value, str | int | float) and value and not isinstance(value, bool):
                kinds.add(kind)
    frame_rate = next((rate for key in ("framerate", "videoframerate", "fps")
                       if (rate := _positive(metadata.get(key)))), 0.0)
    return PublisherHints(kinds=frozenset(kinds) if announced else None,
                          width=round(_positive(metadata.get("width"))),
                          height=round(_positive(metadata.get("height"))),
                          frame_rate=frame_rate)


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    number = float(value)
    return number if math.isfinite(number) and number > 0 else 0.0
