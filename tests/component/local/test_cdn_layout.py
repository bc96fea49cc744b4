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
