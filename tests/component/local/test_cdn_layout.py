"""The local CDN serves the media bucket's layout as `streamforge.media_layout` defines it, and its clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from streamforge import media_layout

from local import cdn

pytestmark = pytest.mark.component


def test_the_cdn_serves_exactly_the_layouts_public_prefixes_and_clock() -> None:
    assert cdn.SERVED_PREFIXES == media_layout.SERVED_PREFIXES
    assert cdn.TIME_PATH == media_layout.TIME_PATH


def test_the_time_path_answers_now_uncached_with_cors() -> None:
    async def scenario() -> None:
        server = cdn.Cdn.__new__(cdn.Cdn)  # the clock needs no bucket
        async with TestClient(TestServer(server.app())) as client:
            before = datetime.now(UTC)
            reply = await client.get(f"/{media_layout.TIME_PATH}")
            text = await reply.text()
            after = datetime.now(UTC)
        assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        said = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= said <= after
    asyncio.run(scenario())


def test_low_latency_requests_go_to_the_media_task_with_their_query() -> None:
    from aiohttp import web

    async def scenario() -> None:
        seen: list[str] = []

        async def origin(request: web.Request) -> web.Response:
            seen.append(request.path_qs)
            return web.Response(text="#EXTM3U\n", content_type="application/vnd.apple.mpegurl",
                                headers={"Cache-Control": "max-age=60"}, status=503 if "gone" in request.path else 200)
        media = web.Application()
        media.router.add_get("/{tail:.*}", origin)
        async with TestServer(media) as task:
            server = cdn.Cdn.__new__(cdn.Cdn)  # the proxy needs no bucket
            server.ll_origin = str(task.make_url("")).rstrip("/")
            async with TestClient(TestServer(server.app())) as client:
                path = media_layout.ll_master_path("st_a").replace("master.m3u8", "720p/index.m3u8")
                reply = await client.get(f"/{path}?_HLS_msn=7&_HLS_part=2")
                assert reply.status == 200 and await reply.text() == "#EXTM3U\n"
                assert reply.headers["Cache-Control"] == "max-age=60"
                assert reply.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
                assert reply.headers["Access-Control-Allow-Origin"] == "*"
                assert (await client.get("/ll/st_a/gone/index.m3u8")).status == 503
        assert seen == [f"/{path}?_HLS_msn=7&_HLS_part=2", "/ll/st_a/gone/index.m3u8"]
        assert cdn.LL_PREFIX == media_layout.LOW_LATENCY + "/"
    asyncio.run(scenario())
