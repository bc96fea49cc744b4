"""FLV muxing of RTMP audio/video messages (RTMP tags are FLV tag bodies, so this is only framing)."""

from __future__ import annotations

import struct

AUDIO_TAG = 8
VIDEO_TAG = 9
SCRIPT_TAG = 18
AVC_CODEC_ID = 7
AAC_FORMAT = 10


def header(*, has_audio: bool, has_video: bool = True) -> bytes:
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes([flags]) + struct.pack(">I", 9) + b"\x00\x00\x00\x00"


_TAG_HEAD = struct.Struct(">I3sB3x")  # type and size, timestamp (low 24 bits), its high byte, stream id 0
TAG_HEADER_SIZE = 11


def tag(tag_type: int, timestamp_ms: int, payload: bytes) -> bytes:
    ts = timestamp_ms & 0xFFFFFFFF
    size = len(payload)
    head = _TAG_HEAD.pack(tag_type << 24 | size, (ts & 0xFFFFFF).to_bytes(3, "big"), ts >> 24)
    # One copy of the payload: this runs for every audio and video message of every publisher.
    return b"".join((head, payload, struct.pack(">I", TAG_HEADER_SIZE + size)))


def is_video_keyframe(payload: bytes) -> bool:
    return bool(payload) and payload[0] >> 4 == 1


def is_avc(payload: bytes) -> bool:
    return bool(payload) and payload[0] & 0x0F == AVC_CODEC_ID


def is_avc_sequence_header(payload: bytes) -> bool:
    return len(payload) > 1 and payload[0] & 0x0F == AVC_CODEC_ID and payload[1] == 0


def is_aac_sequence_header(payload: bytes) -> bool:
    return len(payload) > 1 and payload[0] >> 4 == AAC_FORMAT and payload[1] == 0
