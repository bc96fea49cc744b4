"""Matroska as the transcoder's input container (RFC 9559), for tracks the first-choice container cannot
carry: HEVC, Opus, and any combination with them.

A small EBML writer for a live stream: the Segment and every Cluster have the "unknown" size (RFC 9559
§6.2, RFC 8794 §6.2), so nothing is ever seeked back to or buffered beyond one unit. Timestamps are in
milliseconds (TimestampScale 1 000 000 ns).
"""

from __future__ import annotations

import struct
from typing import Any

from streamforge_media.codecs import OPUS_SAMPLE_RATE, CodecError, h264, hevc, opus_head
from streamforge_media.media import AccessUnit, Codec, MediaKind, Track
from streamforge_media.transcode.inputs.probe import input_options

# Element IDs (RFC 8794 §11.2 for the EBML header, RFC 9559 §5.1 for Matroska); each keeps its marker bits.
_EBML = 0x1A45DFA3
_EBML_VERSION = 0x4286
_EBML_READ_VERSION = 0x42F7
_EBML_MAX_ID_LENGTH = 0x42F2
_EBML_MAX_SIZE_LENGTH = 0x42F3
_DOC_TYPE = 0x4282
_DOC_TYPE_VERSION = 0x4287
_DOC_TYPE_READ_VERSION = 0x4285
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMESTAMP_SCALE = 0x2AD7B1
_MUXING_APP = 0x4D80
_WRITING_APP = 0x5741
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_NUMBER = 0xD7
_TRACK_UID = 0x73C5
_TRACK_TYPE = 0x83
_FLAG_LACING = 0x9C
_CODEC_ID = 0x86
_CODEC_PRIVATE = 0x63A2
_DEFAULT_DURATION = 0x23E383
_CODEC_DELAY = 0x56AA
_SEEK_PRE_ROLL = 0x56BB
_VIDEO = 0xE0
_PIXEL_WIDTH = 0xB0
_PIXEL_HEIGHT = 0xBA
_AUDIO = 0xE1
_SAMPLING_FREQUENCY = 0xB5
_CHANNELS = 0x9F
_CLUSTER = 0x1F43B675
_CLUSTER_TIMESTAMP = 0xE7
_SIMPLE_BLOCK = 0xA3

_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"  # an 8-byte VINT with all value bits set (RFC 8794 §6.2)
_TRACK_TYPE_VIDEO, _TRACK_TYPE_AUDIO = 1, 2
_KEYFRAME_FLAG = 0x80  # SimpleBlock flags (RFC 9559 §10.1)
_MIN_RELATIVE, _MAX_RELATIVE = -(1 << 15), (1 << 15) - 1  # a block's timestamp is an int16 from its cluster's
_AUDIO_ONLY_CLUSTER_MS = 1000
_OPUS_SEEK_PRE_ROLL_NS = 80_000_000  # RFC 9559 §A.11 / the Opus mapping's recommended 80 ms
_CODEC_IDS = {Codec.H264: "V_MPEG4/ISO/AVC", Codec.HEVC: "V_MPEGH/ISO/HEVC", Codec.AAC: "A_AAC",
              Codec.OPUS: "A_OPUS", Codec.MP3: "A_MPEG/L3"}


# --- EBML (RFC 8794) -------------------------------------------------------------------------------

def _vint_size(size: int) -> bytes:
    """An element data size as the shortest VINT (§4): the all-ones value of each length means "unknown"."""
    for length in range(1, 9):
        if size < (1 << (7 * length)) - 1:
            return (size | 1 << (7 * length)).to_bytes(length, "big")
    raise ValueError(f"EBML size {size} too large")


def _element(element_id: int, payload: bytes) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + _vint_size(len(payload)) + payload


def _uint(element_id: int, value: int) -> bytes:
    return _element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _float(element_id: int, value: float) -> bytes:
    return _element(element_id, struct.pack(">d", value))


def _string(element_id: int, value: str) -> bytes:
    return _element(element_id, value.encode("ascii"))


def _unknown_size(element_id: int) -> bytes:
    """The head of a master element whose end is wherever the next element of its level or above begins."""
    return element_id.to_bytes(4, "big") + _UNKNOWN_SIZE


# --- Tracks --------------------------------------------------------------------------------------------

def _minimal_opus_head(channels: int) -> bytes:
    """An OpusHead (RFC 7845 §5.1) for a track that came without one: family 0, no pre-skip, 48 kHz, no gain."""
    return b"OpusHead" + bytes([1, channels]) + (0).to_bytes(2, "little") + OPUS_SAMPLE_RATE.to_bytes(4, "little") \
        + bytes(3)


def _opus_config(track: Track) -> bytes:
    return track.config if track.config else _minimal_opus_head(track.channels or 2)


def _opus_delay_ns(head: bytes) -> int:
    """CodecDelay (RFC 9559 §5.1.4.1.18): the head's pre-skip (48 kHz samples) the decoder discards, in ns."""
    _, pre_skip, _ = opus_head(head)
    return pre_skip * 1_000_000_000 // OPUS_SAMPLE_RATE


def _audio_fits(track: Track) -> bool:
    if track.codec is Codec.AAC:
        return bool(track.config)
    if track.codec is Codec.OPUS:
        if not track.config:  # the minimal head's channel mapping family 0 only says mono or stereo
            return track.channels in (0, 1, 2)
        try:
            opus_head(track.config)
        except CodecError:
            return False
        return True
    return track.codec is Codec.MP3


def _track_entry(number: int, track: Track) -> bytes:
    fields = [_uint(_TRACK_NUMBER, number), _uint(_TRACK_UID, number), _uint(_FLAG_LACING, 0),
              _string(_CODEC_ID, _CODEC_IDS[track.codec])]
    if track.kind is MediaKind.VIDEO:
        # Units always carry 4-byte NAL unit lengths: the record must say so, whatever the source used.
        relabel = h264.with_nal_length_size if track.codec is Codec.H264 else hevc.with_nal_length_size
        fields += [_uint(_TRACK_TYPE, _TRACK_TYPE_VIDEO), _element(_CODEC_PRIVATE, relabel(track.config, 4))]
        if track.frame_rate > 0:
            fields.append(_uint(_DEFAULT_DURATION, round(1e9 / track.frame_rate)))  # ns per frame
        fields.append(_element(_VIDEO, _uint(_PIXEL_WIDTH, track.width) + _uint(_PIXEL_HEIGHT, track.height)))
        return _element(_TRACK_ENTRY, b"".join(fields))
    sample_rate, channels = track.sample_rate, track.channels
    fields.append(_uint(_TRACK_TYPE, _TRACK_TYPE_AUDIO))
    if track.codec is Codec.OPUS:
        head = _opus_config(track)
        channels, _, _ = opus_head(head)
        sample_rate = OPUS_SAMPLE_RATE
        fields += [_element(_CODEC_PRIVATE, head), _uint(_CODEC_DELAY, _opus_delay_ns(head)),
                   _uint(_SEEK_PRE_ROLL, _OPUS_SEEK_PRE_ROLL_NS)]
    elif track.config:
        fields.append(_element(_CODEC_PRIVATE, track.config))
    audio = [_float(_SAMPLING_FREQUENCY, float(sample_rate))] if sample_rate else []
    if channels:
        audio.append(_uint(_CHANNELS, channels))
    fields.append(_element(_AUDIO, b"".join(audio)))
    return _element(_TRACK_ENTRY, b"".join(fields))


class MatroskaInput:
    """Writes a live Matroska stream: EBML header, Segment, Info, Tracks, then Clusters of SimpleBlocks.

    Video: H.264 (`V_MPEG4/ISO/AVC`, CodecPrivate the avcC) or HEVC (`V_MPEGH/ISO/HEVC`, the hvcC).
    Audio: AAC (`A_AAC`, the AudioSpecificConfig), Opus (`A_OPUS`, the OpusHead, a minimal one when the
    track has none) or MP3 (`A_MPEG/L3`). Block timestamps are presentation times (ms) relative to their
    cluster's as int16 (RFC 9559 §10.1): a cluster starts at each video keyframe (without video: every
    second) and whenever a unit's PTS would not fit. Raises ValueError for tracks it cannot carry.
    """

    def __init__(self, video: Track | None, audio: Track | None) -> None:
        if not self.can_carry(video, audio):
            raise ValueError(f"Matroska input cannot carry {video and video.describe()} + "
                             f"{audio and audio.describe()}")
        self._video = video
        self._audio = audio
        self._numbers = {MediaKind.VIDEO: 1, MediaKind.AUDIO: 1 if video is None else 2}
        # The VINT track number of each kind, prefixed to every block (numbers < 127 take one byte).
        self._block_prefix = {kind: bytes([0x80 | n]) for kind, n in self._numbers.items()}
        # A block's timestamp minus CodecDelay is when it plays, so Opus blocks are written that much later
        # for the units to play at their own PTS (rounded half up, as the demuxer rounds the delay to ms).
        delay_ns = _opus_delay_ns(_opus_config(audio)) if audio is not None and audio.codec is Codec.OPUS else 0
        self._delay_ms = {MediaKind.VIDEO: 0, MediaKind.AUDIO: (delay_ns + 500_000) // 1_000_000}
        self._cluster_ms: int | None = None
        self.input_options: dict[str, Any] = input_options("matroska")

    @staticmethod
    def can_carry(video: Track | None, audio: Track | None) -> bool:
        """Whether these tracks fit: at least one; H.264 / HEVC with a decoder configuration; AAC with its
        AudioSpecificConfig, Opus (with an OpusHead, or at most 2 channels) or MP3."""
        if video is None and audio is None:
            return False
        if video is not None and (video.codec not in (Codec.H264, Codec.HEVC) or not video.config):
            return False
        return audio is None or _audio_fits(audio)

    def header(self) -> bytes:
        """EBML header (RFC 8794 §11.2), the unknown-size Segment, Info and Tracks."""
        ebml = _element(_EBML, b"".join((
            _uint(_EBML_VERSION, 1), _uint(_EBML_READ_VERSION, 1), _uint(_EBML_MAX_ID_LENGTH, 4),
            _uint(_EBML_MAX_SIZE_LENGTH, 8), _string(_DOC_TYPE, "matroska"), _uint(_DOC_TYPE_VERSION, 4),
            _uint(_DOC_TYPE_READ_VERSION, 2))))
        info = _element(_INFO, _uint(_TIMESTAMP_SCALE, 1_000_000) + _string(_MUXING_APP, "streamforge")
                        + _string(_WRITING_APP, "streamforge"))
        entries = [_track_entry(self._numbers[t.kind], t) for t in (self._video, self._audio) if t is not None]
        return ebml + _unknown_size(_SEGMENT) + info + _element(_TRACKS, b"".join(entries))

    def unit(self, unit: AccessUnit, dts_ms: int, pts_ms: int) -> bytes:
        """A SimpleBlock for `unit` at `pts_ms` (ms, ≥ 0), behind a new Cluster when one starts here.

        `dts_ms` is not written (Matroska blocks carry presentation times; the demuxer keeps decode order
        from the block order). Opus blocks are stamped CodecDelay later, so that they play at `pts_ms`.
        Raises ValueError for a unit of a codec this writer was not made for.
        """
        track = self._video if unit.kind is MediaKind.VIDEO else self._audio
        if track is None or unit.track.codec is not track.codec:
            raise ValueError(f"this Matroska input has no {unit.track.codec} track")
        block_ms = pts_ms + self._delay_ms[unit.kind]
        out = b""
        if self._starts_cluster(unit, block_ms):
            self._cluster_ms = block_ms
            out = _unknown_size(_CLUSTER) + _uint(_CLUSTER_TIMESTAMP, block_ms)
        assert self._cluster_ms is not None
        relative = block_ms - self._cluster_ms
        head = self._block_prefix[unit.kind] + relative.to_bytes(2, "big", signed=True) \
            + bytes([_KEYFRAME_FLAG if unit.keyframe else 0])
        size = len(head) + len(unit.data)
        return b"".join((out, _SIMPLE_BLOCK.to_bytes(1, "big"), _vint_size(size), head, unit.data))

    def _starts_cluster(self, unit: AccessUnit, block_ms: int) -> bool:
        if self._cluster_ms is None:
            return True
        relative = block_ms - self._cluster_ms
        if not _MIN_RELATIVE <= relative <= _MAX_RELATIVE:
            return True
        if self._video is not None:
            return unit.kind is MediaKind.VIDEO and unit.keyframe
        return relative >= _AUDIO_ONLY_CLUSTER_MS
