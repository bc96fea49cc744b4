"""SRT ingest: the stream id and TS packet conversion alone, then the listener in-process over the system
libsrt with ffmpeg as the caller (`-f mpegts srt://...?streamid=...`), the real session manager (fake store,
in-memory S3) and the real ffmpeg ladder.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from streamforge_media.ingest.srt import libsrt
from streamforge_media.ingest.srt.server import SrtServer, SrtSettings

from tests.support.publishers import start_ffmpeg
from tests.support.wait import wait_for_async
from tests.unit.media.media_support import (
    STREAM_ID,
    STREAM_KEY,
    FakeStore,
    Harness,
    MemoryObjectStore,
    have,
    make_config,
    running_harness,
)

pytestmark = [pytest.mark.component]


def _libsrt_missing() -> str | None:
    try:
        libsrt.LibSrt.load()
    except OSError as exc:
        return str(exc)
    return None


needs_srt = pytest.mark.skipif(not have("ffmpeg") or _libsrt_missing() is not None,
                               reason="ffmpeg with libsrt1.5-gnutls not installed (make test installs ffmpeg)")
PASSPHRASE = "correct-horse-battery"


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return sync


# --- the listener ------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def srt_harness(tmp_path: Path, **stream: Any) -> AsyncIterator[tuple[Harness[MemoryObjectStore], SrtServer]]:
    store = FakeStore()
    store.add_stream(**stream)
    async with running_harness(make_config(tmp_path / "work", health_interval_s=1.0), store=store) as h:
        server = SrtServer(h.manager, SrtSettings())
        await server.start("127.0.0.1", 0)
        try:
            yield h, server
        finally:
            await server.close()


async def caller(server: SrtServer, stream_id: str, seconds: float, *options: str) -> asyncio.subprocess.Process:
    url = f"srt://127.0.0.1:{server.port}?streamid={stream_id}" + "".join(f"&{o}" for o in options)
    return await start_ffmpeg(url, seconds, container="mpegts")


@needs_srt
@run
async def test_refused_in_the_handshake_before_any_session(tmp_path: Path) -> None:
    async with srt_harness(tmp_path, srt_passphrase=PASSPHRASE) as (h, server):
        for stream_id in (f"#!::r=live/sk_{'z' * 43},m=publish", f"#!::r=live/{STREAM_KEY},m=request", "a,b",
                          f"#!::r=live/{STREAM_KEY},m=publish"):  # the last: right key, no passphrase
            started = time.monotonic()
            process = await caller(server, stream_id, 5)
            assert await asyncio.wait_for(process.wait(), 5) != 0
            assert time.monotonic() - started < 1.0, f"{stream_id[:12]}… refused only after 1 s"
        assert h.store.sessions == {} and h.events.events == [] and h.manager.streams == {}
        assert not h.objects.keys(), "a refused caller reached the transcoder or S3"


@needs_srt
@run
async def test_publish_second_caller_and_grace_to_offline(tmp_path: Path) -> None:
    async with srt_harness(tmp_path, srt_passphrase=PASSPHRASE) as (h, server):
        stream_id = f"#!::r=live/{STREAM_KEY},m=publish"
        good = await caller(server, stream_id, 30, f"passphrase={PASSPHRASE}")
        playlist = f"live/{STREAM_ID}/240p/index.m3u8"
        await wait_for_async(lambda: playlist in h.objects.objects and "#EXTINF" in h.objects.text(playlist), 20)
        second = await caller(server, stream_id, 5, f"passphrase={PASSPHRASE}")
        assert await asyncio.wait_for(second.wait(), 5) != 0, "a second caller on a live stream was taken"
        health = await wait_for_async(
            lambda: [d for t, d in h.events.events if t == "Ingest Health" and d.get("fps")], 10)
        assert "packet_loss_pct" in health[-1] and health[-1]["rtt_ms"] >= 0
        # The master is stored once every rendition's playlist is, which may be after the 240p one and health.
        master = f"live/{STREAM_ID}/master.m3u8"
        await wait_for_async(lambda: master in h.objects.objects, 10)
        assert "mp4a.40.2" in h.objects.text(master)
        good.kill()  # no goodbye: libsrt notices the silence, then grace (2 s) runs out, as for RTMP
        await good.wait()
        # libsrt declares a silent peer gone after ~5 s (its peer idle timeout and expiry count), measured 5.2 s.
        await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "reconnecting", 10)
        await wait_for_async(lambda: h.store.streams[STREAM_ID]["status"] == "offline", 10)
        # The events follow the store's offline write.
        await wait_for_async(lambda: h.events.types()[-2:] == ["Stream Offline", "Session Recorded"], 10)
        assert len(h.store.sessions) == 1
