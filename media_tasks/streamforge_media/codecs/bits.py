"""Bit-level reading and writing for codec headers: fixed-width fields and exp-Golomb codes.

H.264 and H.265 share the bitstream syntax (ITU-T H.264 §7.2, H.265 §7.2): `u(n)` fields, `ue(v)` and
`se(v)` exp-Golomb codes (§9.1), and emulation prevention bytes (H.264 §7.4.1, H.265 §7.4.2). AAC's
AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) uses the fixed-width fields only.
"""

from __future__ import annotations

from streamforge_media.codecs.errors import CodecError

# ue(v) codes of a conforming stream never need more than 31 leading zeros (values < 2**32 - 1).
_MAX_EXP_GOLOMB_ZEROS = 31


def unescape_rbsp(data: bytes) -> bytes:
    """Drop the emulation-prevention byte of every 0x00 0x00 0x03 sequence (H.264 §7.4.1, H.265 §7.4.2)."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """Reads big-endian bit fields; running past the end raises `error` (a `CodecError` subclass)."""

    def __init__(self, data: bytes, error: type[CodecError] = CodecError, what: str = "data") -> None:
        # One big integer: header fields are short, and shifting it is simpler than byte bookkeeping.
        self._value = int.from_bytes(data, "big")
        self._size = len(data) * 8
        self._pos = 0
        self._error = error
        self._what = what

    @property
    def remaining(self) -> int:
        """Bits not read yet."""
        return self._size - self._pos

    def bits(self, count: int) -> int:
        if self._pos + count > self._size:
            raise self._error(f"{self._what} truncated")
        self._pos += count
        return (self._value >> (self._size - self._pos)) & ((1 << count) - 1)

    def skip(self, count: int) -> None:
        self.bits(count)

    def flag(self) -> bool:
        return self.bits(1) == 1

    def ue(self) -> int:
        zeros = 0
        while self.bits(1) == 0:
            zeros += 1
            if zeros > _MAX_EXP_GOLOMB_ZEROS:
                raise self._error(f"{self._what}: exp-Golomb code too long")
        return (1 << zeros) - 1 + (self.bits(zeros) if zeros else 0)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


class BitWriter:
    """Appends big-endian bit fields; `getvalue` pads the last byte with zero bits."""

    def __init__(self) -> None:
        self._value = 0
        self._size = 0

    def bits(self, count: int, value: int) -> None:
        if value < 0 or value >> count:
            raise ValueError(f"{value} does not fit in {count} bits")
        self._value = (self._value << count) | value
        self._size += count

    def getvalue(self) -> bytes:
        pad = -self._size % 8
        return (self._value << pad).to_bytes((self._size + pad) // 8, "big")
