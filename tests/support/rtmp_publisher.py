"""A scripted RTMP publisher for the e2e tier, to send exactly what a given field encoder sends.

Synchronous, on a plain socket: the simple handshake, then messages encoded with the media task's own
`ChunkWriter` and `amf0`; a reader thread decodes the server's replies with its `ChunkParser`. Media comes
from FLV files made with the local ffmpeg (`read_flv`), sent in real time by their timestamps (`play`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from streamforge_media.ingest.rtmp import amf0
from streamforge_media.ingest.rtmp.chunk import (
    AUDIO,
    COMMAND_AMF0,
    COMMAND_AMF3,
    DATA_AMF0,
    DATA_AMF3,
    SET_CHUNK_SIZE,
    VIDEO,
    ChunkParser,
    ChunkWriter,
    Message,
    control_message,
)

HANDSHAKE_SIZE = 1536
# Chunk streams as ffmpeg and OBS use them: commands, audio and data, video, publish-time commands.
COMMAND_CSID, AUDIO_CSID, VIDEO_CSID, STREAM_COMMAND_CSID = 3, 4, 6, 8
PUBLISH_START = "NetStream.Publish.Start"


@dataclass(frozen=True)
class FlvTag:
    type_id: int  # AUDIO, VIDEO or DATA_AMF0: the same numbers as the RTMP message types
    timestamp: int  # ms
    payload: bytes


def read_flv(path: Path) -> list[FlvTag]:
    """The tags of an FLV file (FLV spec v10.1 E.2, E.3)."""
    data = path.read_bytes()
    if data[:3] != b"FLV":
        raise ValueError(f"{path} is not an FLV file")
    pos = struct.unpack(">I", data[5:9])[0] + 4  # the header, then PreviousTagSize0
    tags = []
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        timestamp = int.from_bytes(data[pos + 4:pos + 7], "big") | data[pos + 7] << 24
        tags.append(FlvTag(data[pos] & 0x1F, timestamp, data[pos + 11:pos + 11 + size]))
        pos += 11 + size + 4
    return tags


def amf3_object(properties: dict[str, float | str]) -> bytes:
    """An anonymous AMF3 object with dynamic members (AMF3 spec §3.12), as an AS3 client writes metadata."""

    def string(text: str) -> bytes:
        raw = text.encode()
        if len(raw) >= 1 << 13:
            raise ValueError("only short strings are written")
        return _u29(len(raw) << 1 | 1) + raw

    out = bytearray(b"\x0a\x0b\x01")  # object marker; traits inline, dynamic, no sealed members; class ""
    for name, value in properties.items():
        out += string(name)
        out += b"\x06" + string(value) if isinstance(value, str) else b"\x05" + struct.pack(">d", float(value))
    return bytes(out + b"\x01")  # the empty name that ends the dynamic members


def _u29(value: int) -> bytes:
    if value < 0x80:
        return bytes([value])
    return bytes([0x80 | value >> 7, value & 0x7F])


class RtmpPublisher:
    """One publisher connection. `url` is the ingest URL without the key (rtmp://host:port/app).

    `chunk_size` is announced with Set Chunk Size after the handshake and used for everything sent after.
    """

    def __init__(self, url: str, *, chunk_size: int = 4096, timeout: float = 10.0) -> None:
        parsed = urlparse(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 1935
        self.app = parsed.path.strip("/")
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.stream_id = 0
        self.close_reason: str | None = None
        self._sock: socket.socket | None = None
        self._writer = ChunkWriter()
        self._replies: list[list[Any]] = []
        self._changed = threading.Condition()
        self._send_lock = threading.Lock()
        self._txid = 0
        self._stop = threading.Event()
        self._player: threading.Thread | None = None

    # -- connection --------------------------------------------------------------------------------
    def connect(self, *, app: str | None = None, tc_url: str | None = None, **properties: Any) -> list[Any]:
        """Handshake, Set Chunk Size, then `connect`; returns the server's `_result` or `_error` values."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"\x03" + struct.pack(">II", 0, 0) + os.urandom(HANDSHAKE_SIZE - 8))
        s0s1s2 = self._read_exactly(sock, 1 + 2 * HANDSHAKE_SIZE)
        sock.sendall(s0s1s2[1:1 + HANDSHAKE_SIZE])  # C2 echoes S1
        sock.settimeout(None)
        self._sock = sock
        threading.Thread(target=self._read, daemon=True, name="rtmp-publisher-reader").start()
        self.send(control_message(SET_CHUNK_SIZE, self.chunk_size))
        self._writer.chunk_size = self.chunk_size
        app = self.app if app is None else app
        command = {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
                   "tcUrl": tc_url or f"rtmp://{self.host}:{self.port}/{app}", **properties}
        self.command("connect", command)
        return self.reply(("_result", "_error"))

    def publish(self, key: str, *, amf3_commands: bool = False) -> str:
        """releaseStream, FCPublish, createStream, publish (as OBS sends them); returns the onStatus code.

        `amf3_commands`: send them as AMF3 command messages (type 17), as Flash/AS3 clients do.
        """
        if not amf3_commands:
            self.command("releaseStream", None, key)
            self.command("FCPublish", None, key)
        txid = self.command("createStream", None, amf3=amf3_commands)
        created = self.reply(("_result", "_error"), txid=txid)
        if created[0] != "_result":
            return f"createStream refused: {created}"
        self.stream_id = int(created[3]) if len(created) > 3 and isinstance(created[3], float) else 1
        self.command("publish", None, key, "live", stream_id=self.stream_id, amf3=amf3_commands)
        return str(self.status().get("code"))

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        """The information object of the next onStatus; raises AssertionError if none comes."""
        values = self.reply(("onStatus",), timeout=timeout)
        info = values[3] if len(values) > 3 else None
        return info if isinstance(info, dict) else {}

    @property
    def alive(self) -> bool:
        return self.close_reason is None

    def wait_closed(self, timeout: float) -> bool:
        """True once the server has closed the connection (within `timeout` seconds)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.close_reason is not None, timeout)

    def close(self) -> None:
        """Stop playing, unpublish politely if still connected, and close the socket."""
        self._stop.set()
        if self._player is not None:
            self._player.join(10)
        if self._sock is None:
            return
        if self.alive and self.stream_id:
            with contextlib.suppress(OSError):
                self.command("FCUnpublish", None, "")
                self.command("deleteStream", None, float(self.stream_id))
        with self._changed:
            self.close_reason = self.close_reason or "closed by the publisher"
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def __enter__(self) -> RtmpPublisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------------------
    def send(self, message: Message) -> None:
        if self._sock is None:
            raise RuntimeError("not connected")
        with self._send_lock:
            self._sock.sendall(self._writer.encode(message))

    def command(self, name: str, *values: Any, stream_id: int = 0, amf3: bool = False) -> int:
        """Send a command with the next transaction id; AMF3 command messages start with a 0 format byte."""
        self._txid += 1
        body = amf0.encode(name, float(self._txid), *values)
        csid = STREAM_COMMAND_CSID if stream_id else COMMAND_CSID
        if amf3:
            self.send(Message(COMMAND_AMF3, stream_id, 0, b"\x00" + body, csid))
        else:
            self.send(Message(COMMAND_AMF0, stream_id, 0, body, csid))
        return self._txid

    def send_metadata(self, properties: dict[str, Any]) -> None:
        """@setDataFrame onMetaData, as a live encoder sends it before its first frame."""
        body = amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(properties))
        self.send(Message(DATA_AMF0, self.stream_id, 0, body, AUDIO_CSID))

    def send_amf3_metadata(self, properties: dict[str, float | str]) -> None:
        """@setDataFrame as an AMF3 data message (type 15): the metadata object AMF3-encoded behind 0x11."""
        body = b"\x00" + amf0.encode("@setDataFrame", "onMetaData") + b"\x11" + amf3_object(properties)
        self.send(Message(DATA_AMF3, self.stream_id, 0, body, AUDIO_CSID))

    def send_tag(self, tag: FlvTag, timestamp: int | None = None) -> None:
        at = tag.timestamp if timestamp is None else timestamp
        if tag.type_id == VIDEO:
            self.send(Message(VIDEO, self.stream_id, at, tag.payload, VIDEO_CSID))
        elif tag.type_id == AUDIO:
            self.send(Message(AUDIO, self.stream_id, at, tag.payload, AUDIO_CSID))
        elif tag.type_id == DATA_AMF0:
            payload = tag.payload
            if amf0.decode(payload)[:1] == ["onMetaData"]:  # a file's script tag, sent as an encoder does
                payload = amf0.encode("@setDataFrame") + payload
            self.send(Message(DATA_AMF0, self.stream_id, at, payload, AUDIO_CSID))

    def play(self, tags: Iterable[FlvTag], ts_map: Callable[[FlvTag], int] | None = None) -> int:
        """Send `tags` in real time by their own timestamps; `ts_map` gives the timestamp sent instead.

        Stops early when the server closes the connection or `close` is called; returns the tags sent.
        """
        started = time.monotonic()
        first: int | None = None
        sent = 0
        for tag in tags:
            first = tag.timestamp if first is None else first
            if self._stop.wait(max(0.0, started + (tag.timestamp - first) / 1000 - time.monotonic())):
                break
            if not self.alive:
                break
            try:
                self.send_tag(tag, None if ts_map is None else ts_map(tag))
            except OSError as exc:
                self._closed(f"send failed: {exc}")
                break
            sent += 1
        return sent

    def play_in_background(self, tags: Iterable[FlvTag],
                           ts_map: Callable[[FlvTag], int] | None = None) -> threading.Thread:
        """`play` on a thread; `close` stops it. Join the thread to wait for the end of the media."""
        self._player = threading.Thread(target=self.play, args=(list(tags), ts_map), daemon=True,
                                        name="rtmp-publisher-player")
        self._player.start()
        return self._player

    # -- receiving ---------------------------------------------------------------------------------
    def reply(self, names: tuple[str, ...], *, txid: int | None = None, timeout: float | None = None) -> list[Any]:
        """Take the first command reply named in `names` (for `txid`, if given); AssertionError if none comes."""

        def matching() -> list[Any] | None:
            for index, values in enumerate(self._replies):
                if values and values[0] in names and (txid is None or values[1:2] == [float(txid)]):
                    return self._replies.pop(index)
            return None

        with self._changed:
            found = self._changed.wait_for(lambda: matching() or self.close_reason, timeout or self.timeout)
        if not isinstance(found, list):
            raise AssertionError(f"no {'/'.join(names)} from the server: {self.close_reason or 'timed out'}")
        return found

    def _read(self) -> None:
        assert self._sock is not None
        parser = ChunkParser(max_message_size=16 * 1024 * 1024)
        try:
            while data := self._sock.recv(65536):
                for message in parser.feed(data):
                    if message.type_id in (COMMAND_AMF0, COMMAND_AMF3):
                        body = message.payload[1:] if message.type_id == COMMAND_AMF3 else message.payload
                        with self._changed:
                            self._replies.append(amf0.decode(body))
                            self._changed.notify_all()
            self._closed("the server closed the connection")
        except (OSError, ValueError) as exc:  # ProtocolError and AMF errors are ValueErrors
            self._closed(f"connection lost: {exc}")

    def _closed(self, reason: str) -> None:
        with self._changed:
            self.close_reason = self.close_reason or reason
            self._changed.notify_all()

    @staticmethod
    def _read_exactly(sock: socket.socket, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            piece = sock.recv(size - len(data))
            if not piece:
                raise ConnectionError("the server closed the connection during the handshake")
            data += piece
        return bytes(data)


def open_publisher(ingest_url: str, key: str, **kwargs: Any) -> tuple[RtmpPublisher, str]:
    """Connect and publish `key` at the stream's ingest URL; returns the publisher and the onStatus code."""
    publisher = RtmpPublisher(ingest_url, **kwargs)
    connected = publisher.connect()
    if connected[0] != "_result":
        publisher.close()
        return publisher, f"connect refused: {connected}"
    return publisher, publisher.publish(key)
