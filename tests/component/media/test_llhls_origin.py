"""The LL-HLS origin over loopback HTTP: the CDN's secret header, and forwarding to the task that ingests a
stream (once: a forwarded request is never forwarded again)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from streamforge_media.llorigin import FORWARDED_HEADER, ORIGIN_SECRET_HEADER, LowLatencyOrigin, LowLatencyStream
from streamforge_media.segment_format import CMAF

from tests.unit.media.test_llhls import video_rendition

pytestmark = pytest.mark.component


def test_the_origin_answers_only_requests_with_the_cdn_secret() -> None:
    async def scenario() -> list[int]:
        app = web.Application()
        LowLatencyOrigin("s3cret").add_routes(app)
        async with TestClient(TestServer(app)) as client:
            statuses = []
            for headers in ({}, {ORIGIN_SECRET_HEADER: "wrong"}, {ORIGIN_SECRET_HEADER: "s3cret"}):
                statuses.append((await client.get("/ll/st_a/720p/index.m3u8", headers=headers)).status)
            return statuses
    assert asyncio.run(scenario()) == [403, 403, 404]  # 404: a stream this task does not ingest


def test_a_task_forwards_requests_for_a_stream_another_task_ingests_once() -> None:
    async def scenario() -> None:
        seen: list[tuple[str, str | None, str | None]] = []
        owner = LowLatencyOrigin("s3cret")
        stream = owner.streams["st_a"] = LowLatencyStream("st_a", CMAF, 0.5, 2.0)
        stream.renditions["720p"] = video_rendition(6)

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            seen.append((request.path_qs, request.headers.get(FORWARDED_HEADER),
                         request.headers.get(ORIGIN_SECRET_HEADER)))
            return await handler(request)
        owner_app = web.Application(middlewares=[record])
        owner.add_routes(owner_app)
        async with TestServer(owner_app) as owner_server:
            address = str(owner_server.make_url("")).rstrip("/")

            async def locate(stream_id: str) -> str | None:
                return address if stream_id == "st_a" else None
            other_app = web.Application()
            LowLatencyOrigin("s3cret", locate).add_routes(other_app)
            async with TestClient(TestServer(other_app)) as client:
                secret = {ORIGIN_SECRET_HEADER: "s3cret"}
                reply = await client.get("/ll/st_a/720p/index.m3u8?_HLS_msn=1&_HLS_part=0", headers=secret)
                assert reply.status == 200 and "#EXT-X-PART-INF" in await reply.text()
                assert reply.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
                assert (await client.get("/ll/st_b/720p/index.m3u8", headers=secret)).status == 404
                # A forwarded request that misses is not forwarded on (no loops between tasks).
                looped = await client.get("/ll/st_a/720p/index.m3u8", headers={**secret, FORWARDED_HEADER: "1"})
                assert looped.status == 404
        assert seen == [("/ll/st_a/720p/index.m3u8?_HLS_msn=1&_HLS_part=0", "1", "s3cret")]
    asyncio.run(scenario())
