"""The AMF3 decoder, against a tiny encoder written here (inline values, string and traits references)."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamforge_media.ingest.rtmp import amf0
from streamforge_media.ingest.rtmp.amf3 import Amf3Error, decode_value

pytestmark = pytest.mark.unit


class Encoder:
    """Writes strings by reference after their first use, and every dict's traits by reference after the first."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.strings: dict[str, int] = {}
        self.traits_written = False

    def u29(self, n: int) -> None:
        if n < 0x80:
            self.out.append(n)
        elif n < 0x4000:
            self.out += bytes([n >> 7 | 0x80, n & 0x7F])
        elif n < 0x200000:
            self.out += bytes([n >> 14 | 0x80, (n >> 7) & 0x7F | 0x80, n & 0x7F])
        else:
            self.out += bytes([n >> 22 | 0x80, (n >> 15) & 0x7F | 0x80, (n >> 8) & 0x7F | 0x80, n & 0xFF])

    def string(self, text: str) -> None:
        if text in self.strings:
            self.u29(self.strings[text] << 1)
            return
        raw = text.encode()
        self.u29(len(raw) << 1 | 1)
        self.out += raw
        if text:
            self.strings[text] = len(self.strings)

    def value(self, value: Any) -> None:
        if value is None:
            self.out.append(0x01)
        elif value is amf0.UNDEFINED_VALUE:
            self.out.append(0x00)
        elif isinstance(value, bool):
            self.out.append(0x03 if value else 0x02)
        elif isinstance(value, int):
            self.out.append(0x04)
            self.u29(value & 0x1FFFFFFF)
        elif isinstance(value, float):
            self.out += b"\x05" + struct.pack(">d", value)
        elif isinstance(value, str):
            self.out.append(0x06)
            self.string(value)
        elif isinstance(value, list):
            self.out.append(0x09)
            self.u29(len(value) << 1 | 1)
            self.string("")
            for item in value:
                self.value(item)
        elif isinstance(value, amf0.EcmaArray):  # associative only
            self.out += b"\x09\x01"
            self.pairs(value)
        else:
            self.out.append(0x0A)
            if self.traits_written:
                self.u29(0b0001)  # inline object, traits reference 0
            else:
                self.u29(0b1011)  # inline object, inline traits, dynamic, no sealed members
                self.string("")  # anonymous
                self.traits_written = True
            self.pairs(value)

    def pairs(self, items: dict[str, Any]) -> None:
        for name, item in items.items():
            self.string(name)
            self.value(item)
        self.string("")


def encode(value: Any) -> bytes:
    encoder = Encoder()
    encoder.value(value)
    return bytes(encoder.out)


names = st.text(min_size=1, max_size=8)
scalars = st.one_of(st.none(), st.just(amf0.UNDEFINED_VALUE), st.booleans(), st.integers(-(1 << 28), (1 << 28) - 1),
                    st.floats(allow_nan=False), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(names, inner, max_size=5),
    st.dictionaries(names, inner, min_size=1, max_size=5).map(amf0.EcmaArray)), max_leaves=30)


@given(values)
def test_round_trip(value: Any) -> None:
    data = encode(value)
    decoded, end = decode_value(data)
    assert decoded == value
    assert type(decoded) is type(value)
    assert end == len(data)


@given(st.integers(0, (1 << 29) - 1))
def test_u29_every_width(n: int) -> None:
    encoder = Encoder()
    encoder.out.append(0x04)
    encoder.u29(n)
    assert decode_value(bytes(encoder.out))[0] == (n - (1 << 29) if n >= 1 << 28 else n)


def test_known_bytes() -> None:
    assert decode_value(b"\x04\xff\xff\xff\xff")[0] == -1
    assert decode_value(b"\x04\xbf\xff\xff\xff")[0] == (1 << 28) - 1
    # A string, then the same string by reference inside one array.
    assert decode_value(b"\x09\x05\x01\x06\x05ab\x06\x00") == (["ab", "ab"], 9)


def test_mixed_array_is_an_ecma_array_with_indices() -> None:
    data = b"\x09\x05" + b"\x03a\x04\x01" + b"\x01" + b"\x03\x02"
    decoded, _ = decode_value(data)
    assert decoded == {"a": 1, "0": True, "1": False} and isinstance(decoded, amf0.EcmaArray)


def test_object_reference_is_the_same_object() -> None:
    # [ {} , <object reference 1> ]: index 0 is the array itself.
    decoded, _ = decode_value(b"\x09\x05\x01" + b"\x0a\x0b\x01\x01" + b"\x0a\x02")
    assert decoded[0] is decoded[1] == {}


def test_sealed_members_of_a_typed_object() -> None:
    # Traits: inline, not dynamic, 2 sealed members, class "Foo"; then the two values.
    data = b"\x0a" + bytes([2 << 4 | 0b0011]) + b"\x07Foo" + b"\x03x\x03y" + b"\x04\x05" + b"\x02"
    assert decode_value(data)[0] == {"x": 5, "y": False}


def test_amf0_switches_to_amf3_behind_the_avmplus_marker() -> None:
    metadata = encode({"width": 1280, "height": 720.0, "videocodecid": "avc1"})
    values = amf0.decode(amf0.encode("onMetaData") + b"\x11" + metadata + amf0.encode(1.0))
    assert values == ["onMetaData", {"width": 1280, "height": 720.0, "videocodecid": "avc1"}, 1.0]


@pytest.mark.parametrize(("data", "message"), [
    (b"\x08\x01" + bytes(8), "Date"),
    (b"\x0c\x03x", "ByteArray"),
    (b"\x0d\x01", "Vector<int>"),
    (b"\x11\x01", "Dictionary"),
    (b"\x0a\x07\x01", "externalizable"),
    (b"\x06\x02", "string reference 1 out of range"),
    (b"\x0a\x01", "traits reference 0 out of range"),
    (b"\x09\x00", "object reference 0 out of range"),
    (b"\x06\x09ab", "truncated"),
    (b"\x06\x03\xff", "UTF-8"),
    (b"\x09\xff\xff\xff\x7f\x01", "exceeds payload"),
    (b"\x09\x03\x01" * 100, "nesting"),
    (b"\x20", "0x20"),
])
def test_refusals(data: bytes, message: str) -> None:
    with pytest.raises(Amf3Error, match=message):
        decode_value(data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_amf3_error(data: bytes) -> None:
    with contextlib.suppress(Amf3Error):
        decode_value(data)
