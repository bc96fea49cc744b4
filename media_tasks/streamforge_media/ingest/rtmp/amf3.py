"""A minimal AMF3 decoder (Adobe AMF 3 specification §3), for metadata that publishers send as AMF3.

AMF3 reaches RTMP in two ways: a value behind the AMF0 avmplus marker 0x11 (AMF0 spec §3.1), and the
payload of a type 15/17 message, whose format byte 0 selects AMF0, which may then switch with 0x11
(enhanced-rtmp v2, "Action Message Format"). Decoded here: undefined, null, false, true, integer,
double, string, array and objects (sealed members and dynamic ones; the class name is dropped, as AMF0
typed objects are). Dates, XML, byte arrays, vectors, dictionaries and externalizable objects raise
`Amf3Error`. Every length is bounds-checked and nesting is capped: the bytes come from the network.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from streamforge_media.ingest.rtmp.amf0 import MAX_DEPTH, UNDEFINED_VALUE, EcmaArray

UNDEFINED = 0x00
NULL = 0x01
FALSE = 0x02
TRUE = 0x03
INTEGER = 0x04
DOUBLE = 0x05
STRING = 0x06
ARRAY = 0x09
OBJECT = 0x0A

_NAMES = {0x07: "XMLDocument", 0x08: "Date", 0x0B: "XML", 0x0C: "ByteArray", 0x0D: "Vector<int>",
          0x0E: "Vector<uint>", 0x0F: "Vector<Number>", 0x10: "Vector<Object>", 0x11: "Dictionary"}


class Amf3Error(ValueError):
    """The bytes are not valid AMF3, or use a type this decoder does not take (named in the message)."""


@dataclass(frozen=True)
class _Traits:
    sealed: tuple[str, ...]
    dynamic: bool


class _Decoder:
    """One AMF3 context: its string, object and traits reference tables live as long as it does."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos
        self.strings: list[str] = []
        self.objects: list[Any] = []
        self.traits: list[_Traits] = []

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise Amf3Error("truncated AMF3 value")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u29(self) -> int:
        """A variable-length unsigned 29-bit integer: 7 bits per byte for three bytes, then 8 (§1.3.1)."""
        value = 0
        for _ in range(3):
            byte = self.take(1)[0]
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                return value
        return (value << 8) | self.take(1)[0]

    def string(self) -> str:
        """UTF-8-vr (§1.3.2): a reference into the string table, or an inline string (added unless empty)."""
        header = self.u29()
        if not header & 1:
            return self._reference(self.strings, header >> 1, "string")
        try:
            text = self.take(header >> 1).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Amf3Error("invalid UTF-8 in string") from exc
        if text:
            self.strings.append(text)
        return text

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise Amf3Error("nesting too deep")
        marker = self.take(1)[0]
        if marker == UNDEFINED:
            return UNDEFINED_VALUE
        if marker == NULL:
            return None
        if marker in (FALSE, TRUE):
            return marker == TRUE
        if marker == INTEGER:
            number = self.u29()
            return number - (1 << 29) if number & (1 << 28) else number  # 29-bit two's complement
        if marker == DOUBLE:
            return struct.unpack(">d", self.take(8))[0]
        if marker == STRING:
            return self.string()
        if marker == ARRAY:
            return self._array(depth)
        if marker == OBJECT:
            return self._object(depth)
        raise Amf3Error(f"unsupported AMF3 type {_NAMES.get(marker, f'0x{marker:02x}')}")

    def _array(self, depth: int) -> Any:
        """§3.11: the associative part (name/value pairs up to an empty name), then the dense part.

        A dense-only array is a list; with named entries it is an `EcmaArray`, the dense items under
        their indices as strings (what ActionScript itself would show).
        """
        header = self.u29()
        if not header & 1:
            return self._reference(self.objects, header >> 1, "object")
        count = header >> 1
        named = EcmaArray()
        while name := self.string():
            named[name] = self.value(depth + 1)
        if count > len(self.data) - self.pos:  # each item takes at least one byte
            raise Amf3Error("array count exceeds payload")
        if not named:
            items: list[Any] = []
            self.objects.append(items)  # before the items: they may refer to the array itself
            items.extend(self.value(depth + 1) for _ in range(count))
            return items
        self.objects.append(named)
        for index in range(count):
            named[str(index)] = self.value(depth + 1)
        return named

    def _object(self, depth: int) -> dict[str, Any]:
        """§3.12: inline or referenced traits (sealed member names, dynamic flag), sealed values, dynamic pairs."""
        header = self.u29()
        if not header & 1:
            return self._reference(self.objects, header >> 1, "object")
        if not header & 2:
            traits = self._reference(self.traits, header >> 2, "traits")
        elif header & 4:
            raise Amf3Error("unsupported AMF3 externalizable object")
        else:
            self.string()  # class name: meaningless to us
            sealed_count = header >> 4
            if sealed_count > len(self.data) - self.pos:
                raise Amf3Error("sealed member count exceeds payload")
            traits = _Traits(tuple(self.string() for _ in range(sealed_count)), bool(header & 8))
            self.traits.append(traits)
        result: dict[str, Any] = {}
        self.objects.append(result)
        for name in traits.sealed:
            result[name] = self.value(depth + 1)
        if traits.dynamic:
            while name := self.string():
                result[name] = self.value(depth + 1)
        return result

    @staticmethod
    def _reference(table: list[Any], index: int, what: str) -> Any:
        if index >= len(table):
            raise Amf3Error(f"{what} reference {index} out of range")
        return table[index]


def decode_value(data: bytes, pos: int = 0, depth: int = 0) -> tuple[Any, int]:
    """Decode one AMF3 value starting at `data[pos]`, in a fresh reference context.

    Returns the value and the position after it. Python shapes: undefined → `amf0.UNDEFINED_VALUE`,
    integer → int, double → float, array → list or `EcmaArray`, object → dict. Raises `Amf3Error`.
    """
    decoder = _Decoder(data, pos)
    value = decoder.value(depth)
    return value, decoder.pos
