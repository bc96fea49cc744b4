"""AMF0 encoding and decoding (the subset RTMP encoders actually send, plus dates and strict arrays).

Decoding is defensive: every length is bounds-checked and nesting is capped, because the bytes
come straight from the network. A value behind the avmplus marker (0x11, AMF0 spec §3.1) is AMF3 and
is decoded by `amf3`, whose own `Amf3Error` it may raise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
NULL = 0x05
UNDEFINED = 0x06
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C
TYPED_OBJECT = 0x10
AVMPLUS = 0x11

MAX_DEPTH = 32


class Amf0Error(ValueError):
    """The bytes are not valid AMF0 (or use a feature we refuse, such as references)."""


class Undefined:
    """AMF0 `undefined`, kept distinct from `null` so values round-trip."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED_VALUE = Undefined()


class EcmaArray(dict[str, Any]):
    """An associative array (what onMetaData carries); a plain dict encodes as an AMF0 object."""


@dataclass(frozen=True)
class Date:
    milliseconds: float
    timezone: int = 0


def encode(*values: Any) -> bytes:
    out = bytearray()
    for value in values:
        _encode_value(out, value, 0)
    return bytes(out)


def _encode_utf8(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise Amf0Error("short string too long")
    out += struct.pack(">H", len(raw)) + raw


def _encode_properties(out: bytearray, props: dict[str, Any], depth: int) -> None:
    for name, item in props.items():
        _encode_utf8(out, name)
        _encode_value(out, item, depth + 1)
    out += b"\x00\x00" + bytes([OBJECT_END])


def _encode_value(out: bytearray, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Amf0Error("nesting too deep")
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        out += bytes([BOOLEAN, 1 if value else 0])
    elif isinstance(value, int | float):
        out += bytes([NUMBER]) + struct.pack(">d", float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out += bytes([STRING]) + struct.pack(">H", len(raw)) + raw
        else:
            out += bytes([LONG_STRING]) + struct.pack(">I", len(raw)) + raw
    elif value is None:
        out.append(NULL)
    elif isinstance(value, Undefined):
        out.append(UNDEFINED)
    elif isinstance(value, Date):
        out += bytes([DATE]) + struct.pack(">dh", value.milliseconds, value.timezone)
    elif isinstance(value, EcmaArray):
        out += bytes([ECMA_ARRAY]) + struct.pack(">I", len(value))
        _encode_properties(out, value, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_properties(out, value, depth)
    elif isinstance(value, list | tuple):
        out += bytes([STRICT_ARRAY]) + struct.pack(">I", len(value))
        for item in value:
            _encode_value(out, item, depth + 1)
    else:
        raise Amf0Error(f"cannot encode {type(value).__name__}")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise Amf0Error("truncated AMF0 value")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def utf8(self, length_bytes: int) -> str:
        (length,) = struct.unpack(">H" if length_bytes == 2 else ">I", self.take(length_bytes))
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Amf0Error("invalid UTF-8 in string") from exc


def decode(data: bytes) -> list[Any]:
    """Decode every value in `data` (a command is a sequence of values). Raises Amf0Error or amf3.Amf3Error."""
    reader = _Reader(data)
    values = []
    while reader.pos < len(data):
        values.append(_decode_value(reader, 0))
    return values


def _decode_properties(reader: _Reader, depth: int, into: dict[str, Any]) -> dict[str, Any]:
    while True:
        name = reader.utf8(2)
        if name == "" and reader.pos < len(reader.data) and reader.data[reader.pos] == OBJECT_END:
            reader.pos += 1
            return into
        into[name] = _decode_value(reader, depth + 1)


def _decode_value(reader: _Reader, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Amf0Error("nesting too deep")
    marker = reader.take(1)[0]
    if marker == NUMBER:
        return struct.unpack(">d", reader.take(8))[0]
    if marker == BOOLEAN:
        return reader.take(1)[0] != 0
    if marker == STRING:
        return reader.utf8(2)
    if marker == LONG_STRING:
        return reader.utf8(4)
    if marker == OBJECT:
        return _decode_properties(reader, depth, {})
    if marker == TYPED_OBJECT:
        reader.utf8(2)  # class name: meaningless to us
        return _decode_properties(reader, depth, {})
    if marker == NULL:
        return None
    if marker == UNDEFINED:
        return UNDEFINED_VALUE
    if marker == ECMA_ARRAY:
        reader.take(4)  # the count is only a hint; the end marker is authoritative
        return _decode_properties(reader, depth, EcmaArray())
    if marker == STRICT_ARRAY:
        (count,) = struct.unpack(">I", reader.take(4))
        # Each element takes at least one byte: refuse counts the payload cannot hold.
        if count > len(reader.data) - reader.pos:
            raise Amf0Error("strict array count exceeds payload")
        return [_decode_value(reader, depth + 1) for _ in range(count)]
    if marker == DATE:
        millis, tz = struct.unpack(">dh", reader.take(10))
        return Date(millis, tz)
    if marker == AVMPLUS:
        # Imported here because amf3 builds on this module's value types (EcmaArray, UNDEFINED_VALUE).
        from streamforge_media.ingest.rtmp import amf3

        value, reader.pos = amf3.decode_value(reader.data, reader.pos, depth)
        return value
    raise Amf0Error(f"unsupported AMF0 marker 0x{marker:02x}")
