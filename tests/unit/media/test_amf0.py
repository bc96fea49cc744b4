from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamforge_media.ingest.rtmp import amf0
from streamforge_media.ingest.rtmp.amf3 import Amf3Error

pytestmark = pytest.mark.unit

keys = st.text(max_size=20)
scalars = st.one_of(
    st.floats(allow_nan=False), st.booleans(), st.text(max_size=50), st.none(), st.just(amf0.UNDEFINED_VALUE),
    st.builds(amf0.Date, st.floats(allow_nan=False, allow_infinity=False), st.integers(-32768, 32767)))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(keys, inner, max_size=5),
    st.dictionaries(keys, inner, max_size=5).map(amf0.EcmaArray)), max_leaves=30)


@given(st.lists(values, max_size=5))
def test_round_trip(items: list[object]) -> None:
    decoded = amf0.decode(amf0.encode(*items))
    assert decoded == items
    assert [type(v) for v in decoded] == [type(v) for v in items]


def test_known_connect_bytes() -> None:
    data = amf0.encode("connect", 1, {"app": "live"})
    assert data == (b"\x02\x00\x07connect" + b"\x00" + struct.pack(">d", 1.0)
                    + b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09")


def test_long_string_and_ints() -> None:
    long = "x" * 70000
    assert amf0.decode(amf0.encode(long, 3)) == [long, 3.0]


def test_typed_object_decodes_as_dict() -> None:
    data = b"\x10\x00\x03Foo\x00\x01a\x00" + struct.pack(">d", 2.0) + b"\x00\x00\x09"
    assert amf0.decode(data) == [{"a": 2.0}]


@pytest.mark.parametrize("data", [
    b"\x02\x00\x05ab",  # truncated string
    b"\x00\x01",  # truncated number
    b"\x07\x00\x01",  # reference: refused
    b"\x0a\xff\xff\xff\xff",  # strict array count larger than the payload
    b"\x03\x00\x01a",  # object without a value
    b"\x02\x00\x02\xff\xfe",  # invalid UTF-8
    b"\x03" * 100,  # nesting bomb
])
def test_malformed_raises_amf0_error(data: bytes) -> None:
    with pytest.raises(amf0.Amf0Error):
        amf0.decode(data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_amf_errors(data: bytes) -> None:
    with contextlib.suppress(amf0.Amf0Error, Amf3Error):  # 0x11 switches to AMF3
        amf0.decode(data)


def test_infinity_round_trips() -> None:
    assert math.isinf(amf0.decode(amf0.encode(math.inf))[0])
