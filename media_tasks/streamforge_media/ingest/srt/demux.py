"""An SRT caller's MPEG-TS (ISO/IEC 13818-1) → neutral tracks and access units.

PyAV's MPEG-TS demuxer (libavformat, with its parsers) reads the caller's bytes and hands over one packet
per access unit, each with its PES timestamps on the 90 kHz clock; `PacketUnits` turns those packets into
`AccessUnit`s, so the session's rules (timestamp normaliser, track rules, health, the no-media rule) treat
SRT exactly as RTMP:

- H.264 (stream type 0x1B) and HEVC (0x24) arrive in Annex B (H.264 Annex B, H.265 Annex B) with their
  parameter sets in band: the track's avcC/hvcC is built from them, and a changed set is a new track.
- AAC (0x0F) arrives as ADTS frames (ISO/IEC 14496-3 §1.A.2): the header gives the AudioSpecificConfig
  and is stripped. MP3 frames pass as they are.
- Any other stream (MPEG-2 video, AC-3, SCTE-35, teletext) is ignored, once logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from streamforge_media import codecs
from streamforge_media.codecs import CodecError, aac, h264, hevc, nal
from streamforge_media.media import AccessUnit, Codec, Track

log = logging.getLogger(__name__)

# PyAV input options: choose streams after at most 64 KiB / 0.5 s (the PMT names every codec at once).
DEMUX_OPTIONS = {"probesize": "65536", "analyzeduration": "500000"}
AAC_FRAME_SAMPLES = 1024
ADTS_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_H264_SPS, _H264_PPS, _H264_AUD, _H264_IDR = 7, 8, 9, 5
_HEVC_VPS, _HEVC_SPS, _HEVC_PPS, _HEVC_AUD = 32, 33, 34, 35
_HEVC_IRAP = range(16, 24)


@dataclass(frozen=True, slots=True)
class TsPacket:
    """One demuxed packet: ffmpeg's codec name, payload, and PTS/DTS in `time_base` seconds (DTS None: = PTS)."""

    codec: str
    data: bytes
    pts: int
    dts: int | None
    time_base: Fraction


def _ms(ticks: int, time_base: Fraction) -> int:
    return int(ticks * time_base * 1000)


class _Video:
    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.track: Track | None = None
        self.sets: dict[int, bytes] = {}

    def unit(self, data: bytes, dts_ms: int, pts_ms: int) -> AccessUnit | None:
        units = nal.split_annexb(data)
        hevc_codec = self.codec is Codec.HEVC
        kinds = (_HEVC_VPS, _HEVC_SPS, _HEVC_PPS) if hevc_codec else (_H264_SPS, _H264_PPS)
        changed = False
        for unit in units:
            kind = hevc.nal_type(unit) if hevc_codec else unit[0] & 0x1F
            if kind in kinds and self.sets.get(kind) != unit:
                self.sets[kind] = unit
                changed = True
        if changed and all(k in self.sets for k in kinds):
            if hevc_codec:
                config = hevc.decoder_config_from_parameter_sets(*(self.sets[k] for k in kinds))
            else:
                config = h264.decoder_config_from_parameter_sets(*(self.sets[k] for k in kinds))
            self.track = codecs.video_track(self.codec, config)
        if hevc_codec:
            pictures = [u for u in units if hevc.nal_type(u) not in (*kinds, _HEVC_AUD)]
            keyframe = any(hevc.nal_type(u) in _HEVC_IRAP for u in pictures)
        else:
            pictures = [u for u in units if u[0] & 0x1F not in (*kinds, _H264_AUD)]
            keyframe = any(u[0] & 0x1F == _H264_IDR for u in pictures)
        if self.track is None or not pictures:
            return None  # before the first parameter sets nothing decodes
        return AccessUnit(self.track, dts_ms, pts_ms, keyframe, nal.length_prefixed(pictures))


def adts_frames(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(AudioSpecificConfig, raw frame) for each ADTS frame in `data`; raises CodecError on a bad header."""
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 7]
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
            raise CodecError("not an ADTS frame (no syncword)")
        protection_absent = header[1] & 1
        object_type = (header[2] >> 6) + 1
        rate_index = (header[2] >> 2) & 0xF
        channels = ((header[2] & 1) << 2) | (header[3] >> 6)
        length = ((header[3] & 3) << 11) | (header[4] << 3) | (header[5] >> 5)
        head = 7 if protection_absent else 9
        if rate_index >= len(ADTS_SAMPLE_RATES) or channels == 0 or length <= head or pos + length > len(data):
            raise CodecError("ADTS header with a reserved rate, no channel configuration or a bad length")
        config = aac.audio_specific_config(object_type, ADTS_SAMPLE_RATES[rate_index], channels)
        yield config, data[pos + head:pos + length]
        pos += length


class PacketUnits:
    """Demuxed packets → access units, per codec as described in the module docstring."""

    def __init__(self) -> None:
        self._video: dict[str, _Video] = {}
        self._audio_track: Track | None = None
        self._ignored: set[str] = set()

    def units(self, packet: TsPacket) -> list[AccessUnit]:
        """The access units in one packet ([] for what cannot be decoded yet or is ignored); raises CodecError."""
        pts_ms = _ms(packet.pts, packet.time_base)
        dts_ms = pts_ms if packet.dts is None else _ms(packet.dts, packet.time_base)
        if packet.codec in ("h264", "hevc"):
            video = self._video.setdefault(packet.codec, _Video(Codec(packet.codec)))
            unit = video.unit(packet.data, dts_ms, pts_ms)
            return [] if unit is None else [unit]
        if packet.codec == "aac":
            units: list[AccessUnit] = []
            for config, frame in adts_frames(packet.data):
                if self._audio_track is None or self._audio_track.config != config:
                    self._audio_track = codecs.audio_track(Codec.AAC, config)
                offset = len(units) * AAC_FRAME_SAMPLES * 1000 // self._audio_track.sample_rate
                units.append(AccessUnit(self._audio_track, dts_ms + offset, pts_ms + offset, True, frame))
            return units
        if packet.codec == "mp3":
            if self._audio_track is None or self._audio_track.codec is not Codec.MP3:
                self._audio_track = codecs.audio_track(Codec.MP3)
            return [AccessUnit(self._audio_track, dts_ms, pts_ms, True, packet.data)]
        if packet.codec not in self._ignored:
            self._ignored.add(packet.codec)
            log.info("SRT: ignoring a %s stream (not transcoded)", packet.codec)
        return []


def demux(read: Callable[[int], bytes]) -> Iterator[AccessUnit]:
    """Access units from an MPEG-TS byte source `read(size)` (b"" at the end), as they are demuxed.

    Blocks in `read` (run it in a thread). Stops at the end of the source; raises av.FFmpegError when the
    bytes are not MPEG-TS. A packet that does not parse (CodecError) is dropped with a log line.
    """
    import av  # PyAV comes with aiortc; imported here so the module loads without it for its unit tests

    class _Source:
        def read(self, size: int) -> bytes:
            return read(size)

    container = av.open(_Source(), mode="r", format="mpegts", options=DEMUX_OPTIONS)
    try:
        converter = PacketUnits()
        wanted = [s for s in container.streams if s.type in ("video", "audio")]
        for packet in container.demux(*wanted):
            if packet.pts is None or packet.size == 0 or packet.time_base is None:
                continue
            ts_packet = TsPacket(packet.stream.codec_context.name, bytes(packet), int(packet.pts),
                                 None if packet.dts is None else int(packet.dts), Fraction(packet.time_base))
            try:
                yield from converter.units(ts_packet)
            except CodecError as exc:
                log.info("SRT: dropping a %s packet: %s", ts_packet.codec, exc)
    finally:
        container.close()


__all__ = ["PacketUnits", "TsPacket", "adts_frames", "demux"]
