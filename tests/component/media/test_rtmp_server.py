"""Protocol-level behaviour of the RTMP server, with a fake pipeline (no ffmpeg) and fake store/S3."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from streamforge_media.ingest.rtmp.server import RtmpLimits
from streamforge_media.media import AccessUnit
from streamforge_media.packaging.timeline import EncodedSegment
from streamforge_media.transcode.pipeline import SegmentSink, TranscodePlan

from tests.support.wait import wait_for_async
from tests.unit.media.media_support import STREAM_ID, STREAM_KEY, RawRtmpClient, make_config, running_harness

pytestmark = pytest.mark.component

# An AVC sequence header (AVCDecoderConfigurationRecord of libx264's 320x240 SPS and PPS), then frames.
AVC_HEADER = bytes.fromhex("1700000000" "0142c00dffe100166742c00dda0507ec0440000003004000000f23c50aa801000468ce0fc8")
KEYFRAME = bytes([0x17, 0x01, 0, 0, 0]) + b"\x00\x00\x00\x05\x65frame"
INTERFRAME = bytes([0x27, 0x01, 0, 0, 0]) + b"\x00\x00\x00\x05\x41frame"
GOP = 15  # 0.5 s: more than the track rules watch a publisher without metadata for


def send_gop(client: RawRtmpClient, start_ms: int = 0) -> None:
    """A keyframe and the frames after it, 33 ms apart, on the publish stream."""
    for index in range(GOP):
        client.send(9, KEYFRAME if index == 0 else INTERFRAME, stream_id=1, timestamp=start_ms + 33 * index, csid=6)


class FakeTranscoder:
    instances: ClassVar[list[FakeTranscoder]] = []

    def __init__(self, plan: TranscodePlan, workdir: Path, sink: SegmentSink) -> None:
        self.plan = plan
        self.workdir = workdir
        self.sink = sink
        self.fed: list[AccessUnit] = []
        self.closed = False
        FakeTranscoder.instances.append(self)

    async def start(self) -> None:
        """One made-up segment per rendition, so the session's manifests are stored and it goes live."""
        self.sink.generation_started()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for r in self.plan.renditions:
            path, init = self.workdir / f"{r.name}.seg", self.workdir / f"{r.name}.init"
            path.write_bytes(b"segment")
            init.write_bytes(b"init")
            self.sink.segment_ready(EncodedSegment(r.name, path, 0, 2000, 1000, time.time(), init))

    async def feed(self, unit: AccessUnit) -> None:
        self.fed.append(unit)

    async def close(self, timeout_s: float = 10.0) -> None:
        self.closed = True


def harness(tmp_path: Path, **overrides: Any) -> Any:
    FakeTranscoder.instances.clear()
    return running_harness(make_config(tmp_path, **overrides), transcoder_factory=FakeTranscoder)


async def publish_ok(port: int, key: str = STREAM_KEY) -> tuple[RawRtmpClient, list[list[Any]]]:
    client = await RawRtmpClient.connect(port)
    await client.publish(key)
    return client, await client.read_commands(0.5)


def codes(commands: list[list[Any]]) -> list[str]:
    return [c[3]["code"] for c in commands if c[0] in ("onStatus", "_result", "_error")
            and len(c) > 3 and isinstance(c[3], dict)]


def test_good_key_publishes_and_media_reaches_pipeline(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            client, commands = await publish_ok(h.server.port)
            assert codes(commands) == ["NetConnection.Connect.Success", "NetStream.Publish.Start"]
            # Not live before its first manifests are stored.
            assert h.store.streams[STREAM_ID]["status"] == "offline" and not h.events.events
            client.send(18, b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00"
                        b"\x00\x05width\x00@t\x00\x00\x00\x00\x00\x00\x00\x06height\x00@n\x00\x00\x00\x00\x00\x00"
                        b"\x00\x00\x09", stream_id=1)
            client.send(9, AVC_HEADER, stream_id=1, csid=6)
            send_gop(client, 40)
            await wait_for_async(lambda: FakeTranscoder.instances and len(FakeTranscoder.instances[0].fed) == GOP, 2)
            pipe = FakeTranscoder.instances[0]
            assert [r.name for r in pipe.plan.renditions] == ["240p", "160p"]  # 320x240 source
            assert pipe.fed[0].track.config == AVC_HEADER[5:] and pipe.fed[0].keyframe
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "live", 3)
            assert f"live/{STREAM_ID}/master.m3u8" in h.objects.objects
            client.close()
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "reconnecting", 2)
            assert pipe.closed
    asyncio.run(scenario())


@pytest.mark.parametrize("key", ["sk_wrong", STREAM_KEY + "x", ""])
def test_bad_key_gets_badname_and_close_within_1s(tmp_path: Path, key: str) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            client = await RawRtmpClient.connect(h.server.port)
            started = time.monotonic()
            await client.publish(key)
            client.send(9, KEYFRAME, stream_id=1, csid=6)
            commands = await client.read_commands(3)
            elapsed = time.monotonic() - started
            assert codes(commands)[-1] == "NetStream.Publish.BadName"
            assert next(c for c in commands if c[0] == "onStatus")[3]["level"] == "error"
            assert elapsed < 1.0
            assert not h.store.sessions and h.store.streams[STREAM_ID]["status"] == "offline"
            assert not FakeTranscoder.instances and not h.objects.objects and not h.events.events
    asyncio.run(scenario())


def test_wrong_app_is_rejected(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            client = await RawRtmpClient.connect(h.server.port)
            await client.publish(STREAM_KEY, app="other")
            assert codes(await client.read_commands(2)) == ["NetConnection.Connect.Rejected"]
            assert not h.store.sessions
    asyncio.run(scenario())


def test_query_string_is_stripped_from_the_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            _, commands = await publish_ok(h.server.port, STREAM_KEY + "?bandwidth=6000")
            assert codes(commands)[-1] == "NetStream.Publish.Start"
    asyncio.run(scenario())


def test_second_publisher_refused_then_accepted_in_grace(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path, reconnect_grace_s=5) as h:
            first, _ = await publish_ok(h.server.port)
            first.send(9, AVC_HEADER, stream_id=1, csid=6)
            send_gop(first)
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "live", 3)
            _second, commands = await publish_ok(h.server.port)
            assert codes(commands)[-1] == "NetStream.Publish.BadName"
            session = h.store.streams[STREAM_ID]["current_session_id"]
            first.close()
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "reconnecting", 2)
            _third, commands = await publish_ok(h.server.port)
            assert codes(commands)[-1] == "NetStream.Publish.Start"
            assert h.store.streams[STREAM_ID]["current_session_id"] == session
            assert h.store.streams[STREAM_ID]["status"] == "live"
            assert len(h.store.sessions) == 1
    asyncio.run(scenario())


def test_grace_expiry_ends_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path, reconnect_grace_s=1) as h:
            client, _ = await publish_ok(h.server.port)
            client.close()
            await wait_for_async(lambda: "current_session_id" not in h.store.streams[STREAM_ID], 4)
            (session,) = h.store.sessions.values()
            assert session["status"] == "ended" and session["vod_url"] is None  # no segments, no VOD
            # Never live (nothing was published), so never offline either: only the session's record.
            assert h.store.streams[STREAM_ID]["status"] == "offline"
            assert h.events.types() == ["Session Recorded"]
            assert [d["seq"] for _, d in h.events.events] == [1]
    asyncio.run(scenario())


def test_revoked_key_disconnects_and_ends_without_grace(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path, reconnect_grace_s=60) as h:
            client, _ = await publish_ok(h.server.port)
            h.store.revoke()
            started = time.monotonic()
            await client.read_commands(5)  # returns when the server closes the connection
            assert time.monotonic() - started < 5
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "offline", 3)
    asyncio.run(scenario())


def test_deleting_the_stream_disconnects_its_publisher_and_refuses_the_next(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path, reconnect_grace_s=60) as h:
            client, _ = await publish_ok(h.server.port)
            with h.store.lock:  # what DELETE /v1/streams/{id} leaves behind: a tombstone
                h.store.streams[STREAM_ID]["deleted_at"] = "2026-11-25T00:00:00.000Z"
            await client.read_commands(5)  # returns when the server closes the connection
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "offline", 3)
            _, commands = await publish_ok(h.server.port)
            assert codes(commands)[-1] == "NetStream.Publish.BadName"
            assert len(h.store.sessions) == 1
    asyncio.run(scenario())


def test_idle_publisher_dropped(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = RtmpLimits(handshake_timeout_s=1, idle_timeout_s=0.6)
        async with harness(tmp_path, limits=limits) as h:
            started = time.monotonic()
            client, _ = await publish_ok(h.server.port)
            await client.read_commands(10)
            # Closed by the server (not by the read's deadline), and not before the idle timeout.
            assert client.reader.at_eof() or client.writer.transport.is_closing()
            assert time.monotonic() - started > 0.5
            await wait_for_async(lambda: h.manager.streams[STREAM_ID].connection is None, 2)  # in grace
    asyncio.run(scenario())


def test_media_before_publish_is_dropped(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            client = await RawRtmpClient.connect(h.server.port)
            client.command("connect", 1.0, {"app": "live"})
            client.send(9, AVC_HEADER, stream_id=1, csid=6)
            for index in range(GOP):  # a whole GOP, before any publish
                early = (KEYFRAME if index == 0 else INTERFRAME).replace(b"frame", b"early")
                client.send(9, early, stream_id=1, timestamp=33 * index, csid=6)
            # Then the same connection publishes. The server handles a connection's messages in order, so once the
            # published GOP has reached the transcoder the early frames have been handled too: none may be there.
            client.command("createStream", 2.0, None)
            client.command("publish", 0.0, None, STREAM_KEY, "live", stream_id=1)
            client.send(9, AVC_HEADER, stream_id=1, csid=6)
            send_gop(client, 33 * GOP)
            await wait_for_async(lambda: FakeTranscoder.instances and len(FakeTranscoder.instances[0].fed) >= GOP, 2)
            fed = FakeTranscoder.instances[0].fed
            assert [u.data[-5:] for u in fed] == [b"frame"] * GOP
            assert len(FakeTranscoder.instances) == 1
    asyncio.run(scenario())


GARBAGE = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS ClientHello
    b"\x03" + bytes(100),  # truncated C1
    b"\x06" + bytes(1536),  # RTMPE
    b"\x03" + bytes(3072) + b"\x03\xff\xff\xff\xff\xff\xff\x14" + bytes(4),  # absurd message length
    b"\x03" + bytes(3072) + b"\x02\x00\x00\x00\x00\x00\x04\x01" + bytes(4) + b"\x00\x00\x00\x00",  # chunk size 0
    b"\x03" + bytes(3072) + b"\x44" + bytes(10),  # fmt 1 on an unopened chunk stream
    b"\x03" + bytes(3072) + b"\x03" + bytes(3) + b"\x00\x00\x05\x14" + bytes(4) + b"\x07\x00\x01xx",  # bad AMF
]


def test_garbage_closes_only_that_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = RtmpLimits(handshake_timeout_s=0.5, idle_timeout_s=5, max_connections_per_ip=64,
                            max_message_size=1 << 20)
        async with harness(tmp_path, limits=limits) as h:
            good, commands = await publish_ok(h.server.port)
            assert codes(commands)[-1] == "NetStream.Publish.Start"
            for payload in GARBAGE:
                reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
                writer.write(payload)
                started = time.monotonic()
                async with asyncio.timeout(3):
                    while await reader.read(65536):
                        pass
                assert time.monotonic() - started < 1.5
                writer.close()
            good.send(9, AVC_HEADER, stream_id=1, csid=6)
            send_gop(good)
            await wait_for_async(lambda: FakeTranscoder.instances and FakeTranscoder.instances[0].fed, 2)
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "live", 3)
    asyncio.run(scenario())


def test_connections_per_ip_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = RtmpLimits(handshake_timeout_s=2, max_connections_per_ip=3)
        async with harness(tmp_path, limits=limits) as h:
            held = [await asyncio.open_connection("127.0.0.1", h.server.port) for _ in range(3)]
            await wait_for_async(lambda: h.server.connection_count == 3, 2)
            reader, _ = await asyncio.open_connection("127.0.0.1", h.server.port)
            async with asyncio.timeout(2):
                assert await reader.read(10) == b""
            for _, writer in held:
                writer.close()
            await wait_for_async(lambda: h.server.connection_count == 0, 2)
            _, commands = await publish_ok(h.server.port)
            assert codes(commands)[-1] == "NetStream.Publish.Start"
    asyncio.run(scenario())


def test_per_stream_grace_override(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path, reconnect_grace_s=60) as h:
            h.store.streams[STREAM_ID]["reconnect_grace_s"] = 0
            client, _ = await publish_ok(h.server.port)
            client.close()
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "offline", 3)
    asyncio.run(scenario())


def test_config_replace_keeps_types(tmp_path: Path) -> None:
    config = replace(make_config(tmp_path), reconnect_grace_s=3)
    assert config.reconnect_grace_s == 3
