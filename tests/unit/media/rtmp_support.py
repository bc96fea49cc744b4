"""Bytes for the RTMP adapter tests: decoder configurations, FLV/Enhanced RTMP tag bodies, a client encoder."""

from __future__ import annotations

import struct
from typing import Any

from streamforge_media.codecs import aac, h264, hevc
from streamforge_media.ingest.rtmp import amf0
from streamforge_media.ingest.rtmp.chunk import (
    COMMAND_AMF0,
    SET_CHUNK_SIZE,
    ChunkParser,
    ChunkWriter,
    Message,
    control_message,
)

# Parameter sets written by ffmpeg's libx264 / libx265 for testsrc2 (320x240, and 640x360 for the second SPS).
H264_SPS = bytes.fromhex("6764000dacd94141fb0110000003001000000303c0f1429960")
H264_SPS_360P = bytes.fromhex("6764001eacd940a02ff970110000030001000003003c0f162d96")
H264_PPS = bytes.fromhex("68ebe3cb22c0")
HEVC_VPS = bytes.fromhex("40010c01ffff01600000030090000003000003003c959809")
HEVC_SPS = bytes.fromhex("42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003c10")
HEVC_PPS = bytes.fromhex("4401c172b46240")

AVCC = h264.decoder_config_from_parameter_sets(H264_SPS, H264_PPS)
AVCC_360P = h264.decoder_config_from_parameter_sets(H264_SPS_360P, H264_PPS)
HVCC = hevc.decoder_config_from_parameter_sets(HEVC_VPS, HEVC_SPS, HEVC_PPS)
ASC_48K_STEREO = aac.audio_specific_config(2, 48000, 2)
OPUS_HEAD = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", 312, 48000, 0, 0)

IDR = b"\x00\x00\x00\x05\x65\x88\x84\x00\x10"  # one 4-byte-length NAL unit
HEVC_IDR = b"\x00\x00\x00\x06\x26\x01\xaf\x00\x10\x20"

KEY, INTER, COMMAND = 1, 2, 5


def si24(value: int) -> bytes:
    return (value & 0xFFFFFF).to_bytes(3, "big")


def avc_tag(frame_type: int, packet_type: int, composition: int = 0, body: bytes = b"", codec_id: int = 7) -> bytes:
    """A legacy VIDEODATA body (FLV E.4.3.1) for AVC (7) or HEVC as codec id 12."""
    return bytes([frame_type << 4 | codec_id, packet_type]) + si24(composition) + body


def ex_video(frame_type: int, packet_type: int, fourcc: bytes, body: bytes = b"") -> bytes:
    """An Enhanced RTMP video body: IsExHeader, FrameType, PacketType, FourCC, then the body as given."""
    return bytes([0x80 | frame_type << 4 | packet_type]) + fourcc + body


def aac_tag(packet_type: int, body: bytes) -> bytes:
    return bytes([0xAF, packet_type]) + body  # AAC, 44 kHz, 16-bit, stereo: what every encoder writes


def ex_audio(packet_type: int, fourcc: bytes, body: bytes = b"") -> bytes:
    return bytes([0x90 | packet_type]) + fourcc + body


class ClientBytes:
    """The publisher's side of a connection after the handshake, as bytes."""

    def __init__(self) -> None:
        self.writer = ChunkWriter()

    def message(self, type_id: int, payload: bytes, *, stream_id: int = 0, timestamp: int = 0, csid: int = 3) -> bytes:
        return self.writer.encode(Message(type_id, stream_id, timestamp, payload, csid))

    def command(self, *values: Any, stream_id: int = 0) -> bytes:
        return self.message(COMMAND_AMF0, amf0.encode(*values), stream_id=stream_id)

    def chunk_size(self, size: int) -> bytes:
        data = self.writer.encode(control_message(SET_CHUNK_SIZE, size))
        self.writer.chunk_size = size
        return data

    def connect(self, app: str = "live", **extra: Any) -> bytes:
        return self.command("connect", 1.0, {"app": app, "type": "nonprivate", "tcUrl": f"rtmp://x/{app}", **extra})

    def publish(self, key: str, app: str = "live") -> bytes:
        """What OBS sends: connect, releaseStream, FCPublish, createStream, publish."""
        return (self.connect(app) + self.command("releaseStream", 2.0, None, key)
                + self.command("FCPublish", 3.0, None, key) + self.command("createStream", 4.0, None)
                + self.command("publish", 5.0, None, key, "live", stream_id=1))

    def video(self, payload: bytes, timestamp: int = 0) -> bytes:
        return self.message(9, payload, stream_id=1, timestamp=timestamp, csid=6)

    def audio(self, payload: bytes, timestamp: int = 0) -> bytes:
        return self.message(8, payload, stream_id=1, timestamp=timestamp, csid=4)

    def metadata(self, properties: dict[str, Any]) -> bytes:
        return self.message(18, amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(properties)),
                            stream_id=1, csid=4)


class ServerReplies:
    """Decodes what the server sends: (type id, AMF values or raw payload) per message."""

    def __init__(self) -> None:
        self.parser = ChunkParser(max_message_size=1 << 24)

    def feed(self, data: bytes) -> list[Message]:
        return list(self.parser.feed(data))


def commands(messages: list[Message]) -> list[list[Any]]:
    return [amf0.decode(m.payload) for m in messages if m.type_id == COMMAND_AMF0]


def codes(messages: list[Message]) -> list[str]:
    """The status codes of `_result`, `_error` and `onStatus` replies, in order."""
    return [c[3]["code"] for c in commands(messages)
            if c[0] in ("onStatus", "_result", "_error") and len(c) > 3 and isinstance(c[3], dict)]
