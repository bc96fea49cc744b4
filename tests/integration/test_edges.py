"""The local CDN and the WebSocket gateway's `@connections` API, against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from local.cdn import media_bucket_of
from tests.support.http import call
from tests.support.platform import PlatformThread
from tests.support.streams import go_live, start_viewing
from tests.support.users import create_stream, sign_up_and_log_in
from tests.support.wait import wait_for
from tests.support.ws import Listener

pytestmark = pytest.mark.integration


def s3(platform: PlatformThread) -> Any:
    return boto3.client("s3", endpoint_url=platform.urls["emulator"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_cdn_serves_objects_with_their_stored_headers_and_cors(api_platform: PlatformThread) -> None:
    bucket = media_bucket_of(api_platform.platform.template)
    s3(api_platform).put_object(Bucket=bucket, Key="live/st_cdn/720p/index.m3u8", Body=b"#EXTM3U\n",
                                ContentType="application/vnd.apple.mpegurl", CacheControl="max-age=1")
    reply = call("GET", f"{api_platform.urls['cdn']}/live/st_cdn/720p/index.m3u8",
                 headers={"Origin": "http://player.example"})
    assert reply.status == 200 and reply.raw == b"#EXTM3U\n"
    assert reply.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert reply.headers["Cache-Control"] == "max-age=1"
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


def test_cdn_range_requests_and_misses(api_platform: PlatformThread) -> None:
    bucket = media_bucket_of(api_platform.platform.template)
    s3(api_platform).put_object(Bucket=bucket, Key="vod/st_cdn/s1/seg.ts", Body=bytes(range(100)),
                                ContentType="video/mp2t", CacheControl="public, max-age=31536000, immutable")
    partial = call("GET", f"{api_platform.urls['cdn']}/vod/st_cdn/s1/seg.ts", headers={"Range": "bytes=10-19"})
    assert partial.status == 206 and partial.raw == bytes(range(10, 20))
    miss = call("GET", f"{api_platform.urls['cdn']}/live/st_cdn/none.m3u8")
    assert miss.status == 404 and miss.headers["Cache-Control"] == "max-age=1"
    outside = call("GET", f"{api_platform.urls['cdn']}/private/x")
    assert outside.status == 404


async def _websocket_round_trip(platform: PlatformThread) -> tuple[str, dict[str, Any]]:
    management = boto3.client("apigatewaymanagementapi", endpoint_url=f"http://127.0.0.1:{platform.ports.websocket}",
                              region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    ws_gateway = platform.platform.ws_gateway
    assert ws_gateway is not None
    before = set(ws_gateway.connections)
    async with aiohttp.ClientSession() as session, session.ws_connect(platform.urls["websocket"]) as socket:
        (connection_id,) = set(ws_gateway.connections) - before
        await asyncio.to_thread(management.post_to_connection, ConnectionId=connection_id,
                                Data=json.dumps({"type": "hello"}).encode())
        message = await asyncio.wait_for(socket.receive_json(), 10)
        info = await asyncio.to_thread(management.get_connection, ConnectionId=connection_id)
        assert "ConnectedAt" in info
        await asyncio.to_thread(management.delete_connection, ConnectionId=connection_id)
        closed = await asyncio.wait_for(socket.receive(), 10)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    with pytest.raises(ClientError) as gone:
        await asyncio.to_thread(management.post_to_connection, ConnectionId=connection_id, Data=b"{}")
    return gone.value.response["Error"]["Code"], message


def test_connections_api_reaches_the_socket_and_reports_gone(api_platform: PlatformThread) -> None:
    code, message = asyncio.run(_websocket_round_trip(api_platform))
    assert message == {"type": "hello"}
    assert code == "GoneException"


async def _connect_status(url: str) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url):
                return 101
        except aiohttp.WSServerHandshakeError as error:
            return error.status


def test_websocket_connect_checks_the_token(api_platform: PlatformThread) -> None:
    user = sign_up_and_log_in(api_platform.urls["api"])
    base = api_platform.urls["websocket"]
    assert asyncio.run(_connect_status(f"{base}/?token=bogus")) == 401
    assert asyncio.run(_connect_status(f"{base}/?token={user.token}")) == 101
    assert asyncio.run(_connect_status(base)) == 101


def test_subscribers_are_pushed_the_viewer_count(api_platform: PlatformThread) -> None:
    api = api_platform.urls["api"]
    stream = create_stream(api, sign_up_and_log_in(api), "viewers push")
    go_live(api_platform, stream["id"])
    with Listener(api_platform.urls["websocket"], subscribe=[stream["id"]]) as listener:
        wait_for(lambda: [m for m in listener.messages if m.get("type") == "subscribed"], 10, "the subscribe reply")
        for viewer in ("v1", "v2", "v3"):
            reply = start_viewing(api, stream["id"], viewer).heartbeat()
            assert reply.status == 202 and reply.json["counted"]
        pushed = wait_for(lambda: [m for m in listener.of_type("viewers", stream["id"]) if m["viewer_count"] == 3],
                          15, "a viewers message with 3 viewers")
    assert isinstance(pushed[0]["seq"], int) and pushed[0]["at"]
