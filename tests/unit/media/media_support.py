"""Fakes and helpers for the media tests: in-memory store/events/S3, an in-process server, publishers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError
from streamforge.events import StreamEvent
from streamforge.keys import hash_stream_key
from streamforge_media.config import MediaConfig
from streamforge_media.ingest.rtmp.server import RtmpLimits, RtmpServer
from streamforge_media.ladder import Rung
from streamforge_media.publisher import ObjectStore
from streamforge_media.segment_format import DEFAULT, segment_format
from streamforge_media.session import SessionManager, TranscoderFactory
from streamforge_media.store import ENDED, OFFLINE, IngestLease, KeyRecord, StreamRecord
from streamforge_media.transcode.pipeline import EncoderSettings

SMALL_LADDER = (Rung("240p", 240, 400), Rung("160p", 160, 200))
SEGMENT_FORMAT = segment_format(os.environ.get("STREAMFORGE_SEGMENT_FORMAT") or DEFAULT.name)
"""The format the media tests run the task with: the platform's setting, so `STREAMFORGE_SEGMENT_FORMAT=ts` runs
the suite on MPEG-TS."""
STREAM_ID = "st_aaaaaaaaaaaaaaaa"
STREAM_KEY = "sk_" + "k" * 43


class FakeStore:
    """StreamStore in memory, with the same conditional semantics as the DynamoDB one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, KeyRecord] = {}
        self.streams: dict[str, dict[str, Any]] = {}
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self.key_used: dict[str, str] = {}

    def add_stream(self, stream_id: str = STREAM_ID, key: str = STREAM_KEY, **fields: Any) -> None:
        with self.lock:
            self.streams[stream_id] = {"stream_id": stream_id, "status": OFFLINE, "record": True, **fields}
            self.keys[hash_stream_key(key)] = KeyRecord(hash_stream_key(key), stream_id)

    def revoke(self, key: str = STREAM_KEY) -> None:
        with self.lock:
            self.keys.pop(hash_stream_key(key), None)

    def get_key(self, key_hash: str) -> KeyRecord | None:
        with self.lock:
            return self.keys.get(key_hash)

    def get_stream(self, stream_id: str) -> StreamRecord | None:
        with self.lock:
            item = self.streams.get(stream_id)
            if item is None or "deleted_at" in item:
                return None
            return StreamRecord(stream_id, item.get("current_session_id"),
                                item.get("reconnect_grace_s"), bool(item.get("record", True)),
                                item.get("srt_passphrase"), item.get("dvr_window_s"), item.get("last_ended_at"),
                                item.get("ingest_address"), item.get("ingest_lease_until", 0.0))

    def mark_key_used(self, key_hash: str, at: str) -> None:
        with self.lock:
            if key_hash in self.keys:
                self.key_used[key_hash] = at

    def start_session(self, stream_id: str, session_id: str, started_at: str, *, lease: IngestLease) -> bool:
        with self.lock:
            stream = self.streams.get(stream_id)
            if stream is None or "deleted_at" in stream:
                return False
            holder, until = stream.get("ingest_owner"), stream.get("ingest_lease_until", 0.0)
            if holder not in (None, lease.owner) and until >= lease.now:
                return False
            self.sessions.setdefault((stream_id, session_id), {"status": "live", "started_at": started_at})
            # Offline until the session's first manifests are stored (then `set_status` live).
            stream.update(status=OFFLINE, current_session_id=session_id, started_at=started_at,
                          ingest_owner=lease.owner, ingest_lease_until=lease.until, ingest_address=lease.address)
            return True

    def renew_lease(self, stream_id: str, session_id: str, lease: IngestLease) -> bool:
        with self.lock:
            stream = self.streams.get(stream_id)
            if stream is None or stream.get("ingest_owner") != lease.owner \
                    or stream.get("current_session_id") != session_id:
                return False
            stream["ingest_lease_until"] = lease.until
            return True

    def set_status(self, stream_id: str, session_id: str, status: str, at: str) -> None:
        with self.lock:
            stream = self.streams.get(stream_id)
            if stream and stream.get("current_session_id") == session_id:
                stream["status"] = status
            session = self.sessions.get((stream_id, session_id))
            if session and session["status"] != ENDED:
                session["status"] = status

    def update_live_info(self, stream_id: str, session_id: str, fields: Mapping[str, Any], at: str) -> None:
        with self.lock:
            stream = self.streams.get(stream_id)
            if stream and stream.get("current_session_id") == session_id:
                stream.update(fields)

    def end_session(self, stream_id: str, session_id: str, *, ended_at: str, duration_s: float,
                    vod_url: str | None, vod_dash_url: str | None = None) -> None:
        with self.lock:
            session = self.sessions.get((stream_id, session_id))
            if session is not None:
                session.update(status=ENDED, ended_at=ended_at, duration_s=duration_s, vod_url=vod_url,
                               vod_dash_url=vod_dash_url)
            stream = self.streams.get(stream_id)
            if stream and stream.get("current_session_id") == session_id:
                stream["status"] = OFFLINE
                stream["last_ended_at"] = ended_at
                for name in ("current_session_id", "ingest_owner", "ingest_lease_until"):
                    stream.pop(name, None)


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._seq: dict[str, int] = {}

    def publish(self, event: StreamEvent) -> dict[str, Any]:
        self._seq[event.stream_id] = self._seq.get(event.stream_id, 0) + 1
        detail = {**event.fields(), "stream_id": event.stream_id, "session_id": event.session_id,
                  "seq": self._seq[event.stream_id]}
        self.events.append((event.DETAIL_TYPE, detail))
        return detail

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


@dataclass
class StoredObject:
    body: bytes
    content_type: str
    cache_control: str


@dataclass
class MemoryObjectStore:
    """ObjectStore in memory; `fail_until` (monotonic) makes every put fail with throttling or a 5xx."""

    objects: dict[str, StoredObject] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    fail_until: float = 0.0
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put_object(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        with self.lock:
            if time.monotonic() < self.fail_until:
                self.failures += 1
                code, status = ("SlowDown", 503) if self.failures % 2 else ("InternalError", 500)
                raise ClientError({"Error": {"Code": code, "Message": "injected"},
                                   "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")
            self.objects[key] = StoredObject(body, content_type, cache_control)
            self.log.append(key)

    def keys(self, prefix: str = "") -> list[str]:
        with self.lock:
            return sorted(k for k in self.objects if k.startswith(prefix))

    def text(self, key: str) -> str:
        with self.lock:
            return self.objects[key].body.decode()


def make_config(work_dir: Path, **overrides: Any) -> MediaConfig:
    config = MediaConfig(
        streams_table="Streams", stream_keys_table="Keys", sessions_table="Sessions", media_bucket="media",
        event_bus_name="streamforge", cdn_base_url="http://cdn.test", rtmp_host="127.0.0.1", rtmp_port=0,
        reconnect_grace_s=2, ladder=SMALL_LADDER, key_poll_s=0.2, health_interval_s=1.0, finalize_timeout_s=20.0,
        work_dir=work_dir, limits=RtmpLimits(handshake_timeout_s=2.0, idle_timeout_s=10.0),
        encoder=EncoderSettings(thumbnail_interval_s=1.0, segment_format=SEGMENT_FORMAT))
    return replace(config, **overrides)


ObjectsT = TypeVar("ObjectsT", bound=ObjectStore)


@dataclass
class Harness(Generic[ObjectsT]):
    config: MediaConfig
    store: FakeStore
    events: FakeEvents
    objects: ObjectsT
    manager: SessionManager
    server: RtmpServer

    def url(self, key: str = STREAM_KEY) -> str:
        return f"rtmp://127.0.0.1:{self.server.port}/live/{key}"


@contextlib.asynccontextmanager
async def running_task(config: MediaConfig, objects: ObjectsT, *, transcoder_factory: TranscoderFactory | None = None,
                       store: FakeStore | None = None) -> AsyncIterator[Harness[ObjectsT]]:
    """A media task in-process; `store` is shared when given (several tasks, one table), else a new one."""
    events = FakeEvents()
    if store is None:
        store = FakeStore()
        store.add_stream()
    executor = ThreadPoolExecutor(8)
    manager = SessionManager(config, store, events, objects, executor, transcoder_factory)
    server = RtmpServer(manager, config.limits)
    await server.start("127.0.0.1", 0)
    try:
        yield Harness(config, store, events, objects, manager, server)
    finally:
        await server.close()
        await manager.shutdown()
        executor.shutdown(wait=True)


def running_harness(
    config: MediaConfig, *, objects: MemoryObjectStore | None = None,
    transcoder_factory: TranscoderFactory | None = None, store: FakeStore | None = None,
) -> contextlib.AbstractAsyncContextManager[Harness[MemoryObjectStore]]:
    """`running_task` with objects kept in memory."""
    return running_task(config, objects or MemoryObjectStore(), transcoder_factory=transcoder_factory, store=store)


def have(binary: str) -> bool:
    return shutil.which(binary) is not None


class RawRtmpClient:
    """A minimal RTMP publisher built from the server's own codec, for protocol-level tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from streamforge_media.ingest.rtmp.chunk import ChunkParser, ChunkWriter

        self.reader, self.writer = reader, writer
        self.parser = ChunkParser(max_message_size=1 << 24)
        self.chunks = ChunkWriter()

    @classmethod
    async def connect(cls, port: int) -> RawRtmpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        writer.write(b"\x03" + bytes(1536))
        await reader.readexactly(1 + 1536 * 2)
        writer.write(bytes(1536))
        return client

    def send(self, type_id: int, payload: bytes, stream_id: int = 0, timestamp: int = 0, csid: int = 3) -> None:
        from streamforge_media.ingest.rtmp.chunk import Message

        self.writer.write(self.chunks.encode(Message(type_id, stream_id, timestamp, payload, csid)))

    def command(self, *values: Any, stream_id: int = 0) -> None:
        from streamforge_media.ingest.rtmp import amf0

        self.send(20, amf0.encode(*values), stream_id)

    async def read_commands(self, timeout_s: float = 2.0) -> list[list[Any]]:
        """Commands received until the server closes the connection or the timeout passes."""
        from streamforge_media.ingest.rtmp import amf0

        received = []
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout_s):
                while data := await self.reader.read(65536):
                    for message in self.parser.feed(data):
                        if message.type_id == 1:
                            self.parser.chunk_size = int.from_bytes(message.payload[:4], "big")
                        if message.type_id == 20:
                            received.append(amf0.decode(message.payload))
        return received

    async def publish(self, key: str, app: str = "live") -> None:
        self.command("connect", 1.0, {"app": app, "type": "nonprivate", "tcUrl": f"rtmp://x/{app}"})
        self.command("createStream", 2.0, None)
        self.command("publish", 0.0, None, key, "live", stream_id=1)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.transport.abort()
