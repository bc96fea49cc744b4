from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamforge_media.rtmp.chunk import (
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


def parser(**kwargs: int) -> ChunkParser:
    return ChunkParser(max_message_size=kwargs.get("max_message_size", 1 << 20),
                       max_chunk_size=kwargs.get("max_chunk_size", 1 << 16))


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


def test_chunk_size_limit() -> None:
    data = ChunkWriter().encode(control_message(SET_CHUNK_SIZE, 1 << 20))
    with pytest.raises(ProtocolError):
        list(parser(max_chunk_size=65536).feed(data))


def test_interleaved_partial_messages_are_bounded() -> None:
    writer = ChunkWriter(128)
    data = b"".join(writer.encode(Message(9, 1, 0, bytes(1000), csid))[:140] for csid in range(3, 40))
    with pytest.raises(ProtocolError):
        list(parser(max_message_size=2000).feed(data))


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_fuzz_only_protocol_errors(data: bytes) -> None:
    p = parser(max_message_size=4096, max_chunk_size=4096)
    try:
        for message in p.feed(data):
            assert len(message.payload) <= 4096
    except ProtocolError:
        pass
    assert p.buffered <= len(data)
