"""Publisher ordering and retries against an in-memory S3 that injects throttling and 5xx."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from media_support import MemoryObjectStore, wait_for
from streamforge_media import hls
from streamforge_media.ladder import Rendition
from streamforge_media.publisher import HlsPackager, RetryPolicy, is_transient

pytestmark = pytest.mark.unit

RENDITIONS = (Rendition("240p", 320, 240, 400), Rendition("160p", 214, 160, 200))


def named_segments(objects: MemoryObjectStore, playlist_key: str, body: str) -> list[str]:
    base = playlist_key.rsplit("/", 1)[0]
    return [f"{base}/{s.uri}" for s in hls.parse_media_playlist(body)]


class RecordingStore(MemoryObjectStore):
    """Checks the ordering invariant at every successful playlist put."""

    violations: list[str]

    def put_object(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        super().put_object(key, body, content_type=content_type, cache_control=cache_control)
        if key.endswith("index.m3u8") and key.startswith("live/"):
            for segment in named_segments(self, key, body.decode()):
                if segment not in self.objects:
                    self.violations.append(f"{key} named {segment} before it was stored")


def make_publisher(store: MemoryObjectStore, executor: ThreadPoolExecutor) -> HlsPackager:
    return HlsPackager(store, executor, stream_id="st_x", session_id="ses_1", renditions=RENDITIONS, fps=30.0,
                        has_audio=True, retry=RetryPolicy(base_s=0.05, cap_s=0.5))


def write_segment(tmp_path: Path, rendition: str, n: int) -> Path:
    path = tmp_path / f"{rendition}-{n}.ts"
    path.write_bytes(f"{rendition}:{n}".encode() * 100)
    return path


def test_ten_seconds_of_s3_errors_lose_no_segment(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = RecordingStore()
        store.violations = []
        with ThreadPoolExecutor(4) as executor:
            publisher = make_publisher(store, executor)
            publisher.generation_started()
            store.fail_until = time.monotonic() + 10
            total = 0
            # Two segments a second for 12 s: failures for the first 10, then recovery.
            while time.monotonic() < store.fail_until + 2:
                for r in RENDITIONS:
                    publisher.segment_ready(r.name, write_segment(tmp_path, r.name, total), 2.0)
                total += 1
                await asyncio.sleep(0.5)
                if time.monotonic() < store.fail_until:
                    assert not store.keys("live/st_x/240p/ses_")
            assert store.failures > 20
            assert await publisher.drain(20)
            vod = await publisher.finalize(record=True, timeout_s=10)
        assert vod == "vod/st_x/ses_1/master.m3u8"
        assert store.violations == []
        for r in RENDITIONS:
            stored = store.keys(f"live/st_x/{r.name}/ses_1-")
            assert stored == [f"live/st_x/{r.name}/ses_1-{n:06d}.ts" for n in range(total)]
            assert store.objects[stored[0]].body == f"{r.name}:0".encode() * 100
            vod_text = store.text(f"vod/st_x/ses_1/{r.name}/index.m3u8")
            uris = [s.uri for s in hls.parse_media_playlist(vod_text)]
            assert uris == [f"../../../../live/st_x/{r.name}/ses_1-{n:06d}.ts" for n in range(total)]
            assert vod_text.endswith("#EXT-X-ENDLIST\n") and "#EXT-X-PLAYLIST-TYPE:VOD" in vod_text
            live_text = store.text(f"live/st_x/{r.name}/index.m3u8")
            assert live_text.endswith("#EXT-X-ENDLIST\n")
            assert f"#EXT-X-MEDIA-SEQUENCE:{total - 6}" in live_text
        assert not list(tmp_path.glob("*.ts"))  # local files removed once stored
        assert store.objects["live/st_x/master.m3u8"].cache_control == "max-age=1"
    asyncio.run(scenario())


def test_master_waits_for_every_rendition_and_segment_precedes_playlist(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryObjectStore()
        with ThreadPoolExecutor(2) as executor:
            publisher = make_publisher(store, executor)
            publisher.generation_started()
            publisher.segment_ready("240p", write_segment(tmp_path, "240p", 0), 2.0)
            await publisher.drain(5)
            await asyncio.sleep(0.1)
            assert "live/st_x/240p/index.m3u8" in store.objects
            assert "live/st_x/master.m3u8" not in store.objects
            publisher.segment_ready("160p", write_segment(tmp_path, "160p", 0), 2.0)
            await publisher.drain(5)
            deadline = time.monotonic() + 5
            while "live/st_x/master.m3u8" not in store.objects and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await publisher.finalize(record=False, timeout_s=5)
        order = store.log
        assert order.index("live/st_x/240p/ses_1-000000.ts") < order.index("live/st_x/240p/index.m3u8")
        assert order.index("live/st_x/160p/index.m3u8") < order.index("live/st_x/master.m3u8")
        assert not store.keys("vod/")
    asyncio.run(scenario())


def test_restart_realigns_numbering_and_marks_discontinuity(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryObjectStore()
        with ThreadPoolExecutor(2) as executor:
            publisher = make_publisher(store, executor)
            publisher.generation_started()
            for n in range(3):
                publisher.segment_ready("240p", write_segment(tmp_path, "240p", n), 2.0)
            for n in range(2):  # this rung lost its last segment when ffmpeg died
                publisher.segment_ready("160p", write_segment(tmp_path, "160p", n), 2.0)
            publisher.generation_started()
            for r in RENDITIONS:
                publisher.segment_ready(r.name, write_segment(tmp_path, r.name, 9), 1.5)
            await publisher.finalize(record=True, timeout_s=5)
        for r in RENDITIONS:
            text = store.text(f"vod/st_x/ses_1/{r.name}/index.m3u8")
            assert text.count("#EXT-X-DISCONTINUITY\n") == 1
            assert text.strip().splitlines()[-2] == f"../../../../live/st_x/{r.name}/ses_1-000003.ts"
    asyncio.run(scenario())


def test_transient_classification() -> None:
    throttled = ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Put")
    denied = ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Put")
    assert is_transient(throttled) and is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_transient(denied)


def test_backoff_is_bounded_jitter() -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=2.0)
    delays = [policy.delay(attempt) for attempt in range(50)]
    assert all(0 <= d <= 2.0 for d in delays) and len(set(delays)) > 40


def test_a_new_ladder_mid_session_continues_kept_renditions_and_ends_the_others(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryObjectStore()
        with ThreadPoolExecutor(4) as executor:
            packager = make_publisher(store, executor)
            packager.generation_started()
            for r in RENDITIONS:
                packager.segment_ready(r.name, write_segment(tmp_path, r.name, 0), 2.0)
            await wait_for(lambda: "live/st_x/master.m3u8" in store.objects, 5)
            # The source turned to portrait and lost its 240p rung: 160p continues, 240p's live playlist ends.
            portrait = (Rendition("160p", 160, 214, 200),)
            packager.use_ladder(portrait, fps=30.0, has_audio=True)
            packager.generation_started()
            packager.segment_ready("160p", write_segment(tmp_path, "160p", 1), 2.0)
            await wait_for(lambda: "RESOLUTION=160x214" in store.text("live/st_x/master.m3u8"), 5)
            assert "240p/index.m3u8" not in store.text("live/st_x/master.m3u8")
            await wait_for(lambda: store.text("live/st_x/240p/index.m3u8").endswith("#EXT-X-ENDLIST\n"), 5)
            kept = store.text("live/st_x/160p/index.m3u8")
            assert [s.uri for s in hls.parse_media_playlist(kept)] == ["ses_1-000000.ts", "ses_1-000001.ts"]
            assert kept.index("#EXT-X-DISCONTINUITY\n") < kept.index("ses_1-000001.ts")
            await packager.finalize(record=False, timeout_s=5)
    asyncio.run(scenario())
