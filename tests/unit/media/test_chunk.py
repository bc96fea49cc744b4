from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamforge_media.ingest.rtmp.chunk import (
    SET_CHUNK_SIZE,
    ChunkParser,
    ChunkWriter,
    Message,
    ProtocolError,
    control_message,
)

pytestmark = pytest.mark.unit

messages = st.builds(
    Message,
    type_id=st.sampled_from([8, 9, 18, 20]),
    stream_id=st.integers(0, 5),
    timestamp=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=1000),
    csid=st.integers(3, 400),
)


def parser(max_message_size: int = 1 << 20) -> ChunkParser:
    return ChunkParser(max_message_size=max_message_size)


@given(st.lists(messages, max_size=10), st.integers(1, 300), st.lists(st.integers(1, 50), min_size=1))
def test_writer_parser_round_trip_with_any_split(msgs: list[Message], chunk_size: int, cuts: list[int]) -> None:
    writer = ChunkWriter(128)
    stream = writer.encode(control_message(SET_CHUNK_SIZE, chunk_size))
    writer.chunk_size = chunk_size
    stream += b"".join(writer.encode(m) for m in msgs)
    p = parser()
    out: list[Message] = []
    pos, i = 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += p.feed(stream[pos:pos + step])
        pos, i = pos + step, i + 1
    assert out[1:] == msgs
    assert p.chunk_size == chunk_size


def test_compressed_headers_and_extended_timestamps() -> None:
    # fmt 0 with extended timestamp, then fmt 1, fmt 2 and fmt 3 (delta repeated) on chunk stream 4.
    ext = 0x01000000
    data = bytes([0x04]) + b"\xff\xff\xff" + (3).to_bytes(3, "big") + b"\x09" + struct.pack("<I", 1)
    data += struct.pack(">I", ext) + b"abc"
    data += bytes([0x44]) + (40).to_bytes(3, "big") + (2).to_bytes(3, "big") + b"\x08" + b"de"
    data += bytes([0x84]) + (33).to_bytes(3, "big") + b"fg"
    data += bytes([0xC4]) + b"hi"
    out = list(parser().feed(data))
    assert [(m.timestamp, m.type_id, m.stream_id, m.payload) for m in out] == [
        (ext, 9, 1, b"abc"), (ext + 40, 8, 1, b"de"), (ext + 73, 8, 1, b"fg"), (ext + 106, 8, 1, b"hi")]


def test_extended_timestamp_repeated_in_continuation_chunks() -> None:
    writer = ChunkWriter(128)
    message = Message(9, 1, 0xFFFFFFF0, bytes(300), 6)
    assert list(parser().feed(writer.encode(message))) == [message]


@pytest.mark.parametrize("data", [
    bytes([0x44]) + bytes(7),  # fmt 1 on a chunk stream never opened
    bytes([0xC5]),  # fmt 3 likewise
    bytes([0x03]) + bytes(3) + (1 << 23).to_bytes(3, "big") + b"\x09" + bytes(4),  # absurd message length
])
def test_protocol_violations(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(parser(max_message_size=1 << 20).feed(data))


@pytest.mark.parametrize("size", [1, 65536, 128 << 20, 0x7FFFFFFF])
def test_any_chunk_size_the_spec_allows(size: int) -> None:
    writer = ChunkWriter()
    data = writer.encode(control_message(SET_CHUNK_SIZE, size))
    writer.chunk_size = size
    message = Message(9, 1, 40, bytes(range(256)) * 20, 6)
    p = parser()
    assert list(p.feed(data + writer.encode(message)))[1:] == [message]
    assert p.chunk_size == size


def test_chunk_size_zero_is_refused() -> None:
    with pytest.raises(ProtocolError):
        list(parser().feed(ChunkWriter().encode(control_message(SET_CHUNK_SIZE, 0))))


def test_huge_chunk_size_buffers_no_more_than_a_message() -> None:
    # 128 MiB chunks (a Go publisher's choice) with a 64 KiB message limit: a longer message is refused at
    # its header, before its body arrives, and an accepted one is never held beyond its own length.
    writer = ChunkWriter()
    p = parser(max_message_size=65536)
    list(p.feed(writer.encode(control_message(SET_CHUNK_SIZE, 128 << 20))))
    writer.chunk_size = 128 << 20
    ok = writer.encode(Message(9, 1, 0, bytes(65536), 6))
    assert len(list(p.feed(ok[:-1]))) == 0 and p.buffered == len(ok) - 1
    assert len(list(p.feed(ok[-1:]))) == 1 and p.buffered == 0
    too_long = writer.encode(Message(9, 1, 0, bytes(65537), 6))
    with pytest.raises(ProtocolError):
        list(p.feed(too_long[:16]))


def test_partial_data_limit_is_checked_before_the_piece_is_buffered() -> None:
    writer = ChunkWriter()
    p = parser(max_message_size=1500)
    list(p.feed(writer.encode(control_message(SET_CHUNK_SIZE, 1000))))
    writer.chunk_size = 1000
    # Three first halves fill the allowance (twice the message limit); a fourth is refused from its header.
    halves = b"".join(writer.encode(Message(9, 1, 0, bytes(1500), csid))[:1012] for csid in (4, 5, 6))
    assert not list(p.feed(halves))
    with pytest.raises(ProtocolError):
        list(p.feed(writer.encode(Message(9, 1, 0, bytes(1500), 7))[:12]))


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_fuzz_only_protocol_errors(data: bytes) -> None:
    p = parser(max_message_size=4096)
    try:
        for message in p.feed(data):
            assert len(message.payload) <= 4096
    except ProtocolError:
        pass
    assert p.buffered <= len(data)
