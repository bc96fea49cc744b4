"""The RTMP server over a real socket, with a fake PublishHandler and MediaSink (no session layer)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from streamforge_media.ingest.rtmp import amf0
from streamforge_media.ingest.rtmp.chunk import Message
from streamforge_media.ingest.rtmp.server import RtmpLimits, RtmpServer
from streamforge_media.media import AccessUnit, PublisherHints
from streamforge_media.ports import Disconnector, MediaSink

from tests.support.wait import wait_for_async
from tests.unit.media.rtmp_support import AVCC, IDR, KEY, ClientBytes, ServerReplies, avc_tag, codes, commands, ex_video

pytestmark = pytest.mark.component

STREAM_KEY = "sk_" + "k" * 43


class FakeSink:
    def __init__(self) -> None:
        self.hints: list[PublisherHints] = []
        self.units: list[AccessUnit] = []
        self.unpublished = 0

    async def on_hints(self, hints: PublisherHints) -> None:
        self.hints.append(hints)

    async def on_unit(self, unit: AccessUnit) -> None:
        self.units.append(unit)

    async def on_unpublish(self) -> None:
        self.unpublished += 1


class FakeHandler:
    """Accepts STREAM_KEY only, with a new FakeSink each time."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.sinks: list[FakeSink] = []
        self.controls: list[Disconnector] = []

    async def start_publish(self, stream_key: str, control: Disconnector) -> MediaSink | None:
        self.keys.append(stream_key)
        if stream_key != STREAM_KEY:
            return None
        self.sinks.append(FakeSink())
        self.controls.append(control)
        return self.sinks[-1]


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.out = ClientBytes()
        self.replies = ServerReplies()
        self.received: list[Message] = []
        self.closed_by_server = False

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x03" + bytes(1536))
        await reader.readexactly(1 + 2 * 1536)
        writer.write(bytes(1536))
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self, timeout_s: float) -> list[Message]:
        """Messages until the server closes the connection or `timeout_s` passes."""
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout_s):
                while data := await self.reader.read(65536):
                    self.received += self.replies.feed(data)
                self.closed_by_server = True
        return self.received

    def close(self) -> None:
        self.writer.transport.abort()


@contextlib.asynccontextmanager
async def serving(limits: RtmpLimits | None = None) -> AsyncIterator[tuple[RtmpServer, FakeHandler]]:
    handler = FakeHandler()
    server = RtmpServer(handler, limits or RtmpLimits(handshake_timeout_s=2, idle_timeout_s=5))
    await server.start("127.0.0.1", 0)
    try:
        yield server, handler
    finally:
        await server.close()


def test_publish_with_a_128_mib_chunk_size() -> None:
    async def scenario() -> None:
        async with serving() as (server, handler):
            client = await Client.connect(server.port)
            big_frame = b"\x00\x04\x93\xe0" + b"\x65" + bytes(300_000 - 1)  # one 300 kB NAL unit
            client.send(client.out.chunk_size(128 << 20) + client.out.publish(STREAM_KEY)
                        + client.out.video(avc_tag(KEY, 0, body=AVCC))
                        + client.out.video(avc_tag(KEY, 1, 0, big_frame), 40))
            await wait_for_async(lambda: handler.sinks and handler.sinks[0].units, 2)
            assert codes(await client.read(0.2))[-1] == "NetStream.Publish.Start"
            (unit,) = handler.sinks[0].units
            assert unit.data == big_frame and unit.dts_ms == 40 and unit.track.width == 320
            client.close()
            await wait_for_async(lambda: handler.sinks[0].unpublished == 1, 2)
    asyncio.run(scenario())


def test_key_in_the_app() -> None:
    async def scenario() -> None:
        async with serving() as (server, handler):
            client = await Client.connect(server.port)
            client.send(client.out.publish("", app=f"live/{STREAM_KEY}"))
            assert codes(await client.read(0.3))[-1] == "NetStream.Publish.Start"
            assert handler.keys == [STREAM_KEY]
    asyncio.run(scenario())


def test_amf3_and_undecodable_metadata_keep_the_publisher() -> None:
    async def scenario() -> None:
        async with serving() as (server, handler):
            client = await Client.connect(server.port)
            amf3_metadata = (b"\x00" + amf0.encode("@setDataFrame", "onMetaData")
                             + b"\x11\x0a\x0b\x01\x0bwidth\x04\x8f\x00\x0dheight\x04\x85\x50\x01")
            client.send(client.out.publish(STREAM_KEY) + client.out.message(15, amf3_metadata, stream_id=1, csid=4)
                        + client.out.message(18, b"\x02\x00\x0aonMetaData\x11\x08\x01", stream_id=1, csid=4)
                        + client.out.video(avc_tag(KEY, 0, body=AVCC)) + client.out.video(avc_tag(KEY, 1, 0, IDR)))
            await wait_for_async(lambda: handler.sinks and handler.sinks[0].units, 2)
            assert handler.sinks[0].hints == [PublisherHints(width=1920, height=720)]
            # Still publishing: a frame sent after the metadata it could not decode reaches the sink too.
            client.send(client.out.video(avc_tag(KEY, 1, 0, IDR), 40))
            await wait_for_async(lambda: len(handler.sinks[0].units) == 2, 2)
            assert handler.sinks[0].unpublished == 0 and not client.reader.at_eof()
    asyncio.run(scenario())


def test_unsupported_fourcc_is_rejected_and_closed() -> None:
    async def scenario() -> None:
        async with serving() as (server, handler):
            client = await Client.connect(server.port)
            client.send(client.out.publish(STREAM_KEY))
            await wait_for_async(lambda: handler.sinks, 2)
            started = time.monotonic()
            client.send(client.out.video(ex_video(KEY, 0, b"av01", b"\x81\x00\x0c\x00")))
            received = await client.read(3)
            assert client.closed_by_server and time.monotonic() - started < 1.0
            status = commands(received)[-1]
            assert status[3]["code"] == "NetStream.Publish.Rejected" and "AV1" in status[3]["description"]
            await wait_for_async(lambda: handler.sinks[0].unpublished == 1, 2)
            assert not handler.sinks[0].units
    asyncio.run(scenario())


@pytest.mark.parametrize("key", ["sk_wrong", ""])
def test_bad_key_gets_badname_and_a_close_within_1s(key: str) -> None:
    async def scenario() -> None:
        async with serving() as (server, handler):
            client = await Client.connect(server.port)
            started = time.monotonic()
            client.send(client.out.publish(key) + client.out.video(avc_tag(KEY, 0, body=AVCC)))
            received = await client.read(3)
            assert client.closed_by_server and time.monotonic() - started < 1.0
            assert codes(received)[-1] == "NetStream.Publish.BadName"
            assert not handler.sinks and handler.keys == ([key] if key else [])
    asyncio.run(scenario())


def test_disconnect_ends_the_publish_once() -> None:
    async def scenario() -> None:
        async with serving() as (server, handler):
            client = await Client.connect(server.port)
            client.send(client.out.publish(STREAM_KEY))
            await wait_for_async(lambda: handler.controls, 2)
            handler.controls[0].disconnect("key revoked")
            await client.read(2)
            assert client.closed_by_server
            await wait_for_async(lambda: server.connection_count == 0, 2)
            assert handler.sinks[0].unpublished == 1
    asyncio.run(scenario())


def test_idle_timeout_counts_bytes_not_media() -> None:
    async def scenario() -> None:
        async with serving(RtmpLimits(handshake_timeout_s=1, idle_timeout_s=0.4)) as (server, handler):
            talker, silent = await Client.connect(server.port), await Client.connect(server.port)
            for client in (talker, silent):
                client.send(client.out.publish(STREAM_KEY))
            await wait_for_async(lambda: len(handler.sinks) == 2, 2)
            started = time.monotonic()
            while time.monotonic() - started < 1.0:  # metadata only: bytes, never a frame
                talker.send(talker.out.metadata({"width": 320.0}))
                await asyncio.sleep(0.1)
            await silent.read(0.1)
            assert silent.closed_by_server and not talker.reader.at_eof()
            talker.close()
    asyncio.run(scenario())
