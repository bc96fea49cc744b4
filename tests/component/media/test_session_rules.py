"""Session rules that hold for every protocol: takeover of a silent publisher, and the no-media rule."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from test_rtmp_server import AVC_HEADER, GOP, FakeTranscoder, codes, publish_ok, send_gop

from tests.support.wait import wait_for_async
from tests.unit.media.media_support import STREAM_ID, RawRtmpClient, make_config, running_harness

pytestmark = pytest.mark.component


def closed_by_server(client: RawRtmpClient) -> bool:
    """The server closed the connection: a FIN (end of stream) or an abort (reset)."""
    return client.reader.at_eof() or client.reader.exception() is not None


def test_a_silent_publisher_is_replaced_at_once_and_the_session_continues(tmp_path: Path) -> None:
    async def scenario() -> None:
        FakeTranscoder.instances.clear()
        config = make_config(tmp_path, reconnect_grace_s=0, takeover_silence_s=0.4)
        async with running_harness(config, transcoder_factory=FakeTranscoder) as h:
            first, _ = await publish_ok(h.server.port)
            first.send(9, AVC_HEADER, stream_id=1, csid=6)
            send_gop(first)
            await wait_for_async(lambda: FakeTranscoder.instances and len(FakeTranscoder.instances[0].fed) == GOP, 2)
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "live", 3)
            session = h.store.streams[STREAM_ID]["current_session_id"]
            # Still sending: a second publisher is refused as before.
            send_gop(first, 33 * GOP)
            _, commands = await publish_ok(h.server.port)
            assert codes(commands)[-1] == "NetStream.Publish.BadName"
            # Silent (a network drop without FIN: the socket stays open): the right key takes over.
            await asyncio.sleep(0.5)
            second, commands = await publish_ok(h.server.port)
            assert codes(commands)[-1] == "NetStream.Publish.Start"
            await first.read_commands(2)  # returns once the server has closed the silent connection
            assert closed_by_server(first)
            assert h.store.streams[STREAM_ID]["status"] == "live"
            assert h.store.streams[STREAM_ID]["current_session_id"] == session
            assert len(h.store.sessions) == 1
            assert [t for t in h.events.types() if t != "Ingest Health"] == ["Stream Live"]
            second.send(9, AVC_HEADER, stream_id=1, csid=6)
            send_gop(second)
            await wait_for_async(lambda: len(FakeTranscoder.instances) == 2 and FakeTranscoder.instances[1].fed, 2)
            assert FakeTranscoder.instances[0].closed
    asyncio.run(scenario())


def test_a_publisher_sending_no_media_is_dropped_by_the_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = make_config(tmp_path, reconnect_grace_s=5, no_media_timeout_s=0.6)
        async with running_harness(config, transcoder_factory=FakeTranscoder) as h:
            client, _ = await publish_ok(h.server.port)
            started = time.monotonic()
            client.send(9, AVC_HEADER, stream_id=1, csid=6)
            send_gop(client)
            # Bytes keep coming (acknowledgements), so only the no-media rule can close the connection.
            while not closed_by_server(client) and time.monotonic() - started < 3:
                client.send(3, (1000).to_bytes(4, "big"), csid=2)
                await client.read_commands(0.1)
            assert closed_by_server(client)
            assert 0.6 <= time.monotonic() - started < 5  # the rule, not the bytes-idle timeout (10 s here)
            # Its one GOP was published, so the stream went live; now it waits for the publisher.
            await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "reconnecting", 3)
    asyncio.run(scenario())
