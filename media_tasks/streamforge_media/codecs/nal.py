"""NAL unit framing: Annex B byte streams and length-prefixed samples (H.264 and H.265 alike).

Annex B (ITU-T H.264 Annex B, H.265 Annex B) separates NAL units with start codes 00 00 01 or
00 00 00 01; RTP/WebRTC depacketisers and MPEG-TS carry it. The sample format of ISO/IEC 14496-15
(§5.3.2 / §8.3.2), which MP4, Matroska and the neutral `AccessUnit` use, precedes each NAL unit with
its big-endian length on 1, 2 or 4 bytes (the decoder configuration's lengthSizeMinusOne + 1).
"""

from __future__ import annotations

from collections.abc import Iterable

from streamforge_media.codecs.errors import CodecError

_START_CODE = b"\x00\x00\x01"
_LENGTH_SIZES = (1, 2, 4)


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes; [] for empty input.

    Accepts 3- and 4-byte start codes (and any leading zero bytes before the first one). Zero bytes
    that end a unit belong to the next start code or are trailing_zero_8bits (a NAL unit never ends in
    0x00, §7.4.2 rbsp_trailing_bits), so they are dropped. Raises CodecError when the data does not open
    with a start code or when a start code is followed by no NAL unit.
    """
    if not data.strip(b"\x00"):
        if data:
            raise CodecError("Annex B data holds no NAL unit")
        return []
    first = data.find(_START_CODE)
    if first < 0 or data[:first].strip(b"\x00"):
        raise CodecError("Annex B data does not start with a start code")
    units: list[bytes] = []
    pos = first + 3
    while True:
        end = data.find(_START_CODE, pos)
        unit = data[pos:] if end < 0 else data[pos:end]
        unit = unit.rstrip(b"\x00")
        if not unit:
            raise CodecError("empty NAL unit in Annex B data")
        units.append(unit)
        if end < 0:
            return units
        pos = end + 3


def length_prefixed(units: Iterable[bytes], length_size: int = 4) -> bytes:
    """NAL units joined in the 14496-15 sample format with `length_size`-byte big-endian lengths.

    Raises CodecError for an empty unit, a unit too long for the prefix, or a size other than 1, 2, 4.
    """
    if length_size not in _LENGTH_SIZES:
        raise CodecError(f"bad NAL unit length size {length_size}")
    limit = 1 << (8 * length_size)
    parts: list[bytes] = []
    for unit in units:
        if not unit or len(unit) >= limit:
            raise CodecError(f"NAL unit of {len(unit)} bytes cannot take a {length_size}-byte length")
        parts.append(len(unit).to_bytes(length_size, "big"))
        parts.append(unit)
    return b"".join(parts)


def annexb_to_length_prefixed(data: bytes) -> bytes:
    """An Annex B byte stream (one access unit, typically) as 4-byte length-prefixed NAL units; raises CodecError."""
    return length_prefixed(split_annexb(data))


def split_length_prefixed(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of a length-prefixed sample (`length_size` of 1, 2 or 4 bytes, big-endian).

    Raises CodecError for another length size, a zero length, or a length running past the end.
    """
    if length_size not in _LENGTH_SIZES:
        raise CodecError(f"bad NAL unit length size {length_size}")
    units: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + length_size > end:
            raise CodecError("NAL unit length truncated")
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > end:
            raise CodecError(f"NAL unit length {size} with {end - pos} bytes left")
        units.append(data[pos:pos + size])
        pos += size
    return units


def relength(data: bytes, from_size: int) -> bytes:
    """A sample with `from_size`-byte NAL unit lengths (1, 2 or 4) rewritten with 4-byte lengths; raises CodecError."""
    units = split_length_prefixed(data, from_size)
    return data if from_size == 4 else length_prefixed(units)
