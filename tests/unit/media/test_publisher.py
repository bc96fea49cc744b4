"""The packaging seam: the publisher's ordering and retries, and the HLS and DASH packagers over one timeline,
against an in-memory S3 that injects throttling, 5xx and random delays."""

from __future__ import annotations

import asyncio
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from media_support import MemoryObjectStore
from streamforge_media import hls
from streamforge_media.ladder import AUDIO_ONLY, Rendition
from streamforge_media.packaging.packagers import DashPackager, HlsPackager, Packager, Windows
from streamforge_media.packaging.timeline import EncodedSegment
from streamforge_media.publisher import Publisher, RetryPolicy, is_transient
from streamforge_media.segment_format import CMAF, TS, SegmentFormat

from tests.support import dash
from tests.support.wait import wait_for_async

pytestmark = pytest.mark.unit

RENDITIONS = (Rendition("240p", 320, 240, 400), Rendition("160p", 214, 160, 200))
CMAF_LADDER = (*RENDITIONS, AUDIO_ONLY)
TIMESCALE = 90000
SEGMENT = 2 * TIMESCALE
ORIGIN = 1_800_000_000.0
MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
BUCKET = "http://bucket/"


def named_objects(key: str, body: str) -> set[str]:
    """Every object a stored manifest names (segments, init segments, media playlists), as bucket keys."""
    if key.endswith(".mpd"):
        return {u.removeprefix(BUCKET) for s in dash.segments(body, BUCKET + key) for u in (s.url, s.init_url)}
    uris = [line for line in body.splitlines() if line and not line.startswith("#")]
    return {urljoin(BUCKET + key, u).removeprefix(BUCKET) for u in [*uris, *re.findall(r'URI="([^"]+)"', body)]}


class CheckingStore(MemoryObjectStore):
    """Checks at every manifest put that everything it names is already stored; `jitter` shuffles completion."""

    def __init__(self, rng: random.Random | None = None, failure_rate: float = 0.0) -> None:
        super().__init__()
        self.violations: list[str] = []
        self.manifest_versions = 0
        self.rng = rng
        self.failure_rate = failure_rate

    def put_object(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        if self.rng is not None:
            with self.lock:
                delay, fail = self.rng.uniform(0, 0.003), self.rng.random() < self.failure_rate
            time.sleep(delay)
            if fail:
                raise ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Put")
        if key.endswith((".m3u8", ".mpd")):
            with self.lock:
                missing = sorted(named_objects(key, body.decode()) - set(self.objects))
                self.manifest_versions += 1
                if missing:
                    self.violations.append(f"{key} named {missing[:3]} before they were stored")
        super().put_object(key, body, content_type=content_type, cache_control=cache_control)


def make_publisher(store: MemoryObjectStore, executor: ThreadPoolExecutor, fmt: SegmentFormat = CMAF, *,
                   ladder: tuple[Rendition, ...] | None = None, windows: Windows | None = None,
                   retry: RetryPolicy | None = None) -> Publisher:
    windows = windows or Windows()
    packagers: list[Packager] = [HlsPackager(fmt, windows)]
    if fmt.dash:
        packagers.append(DashPackager(fmt, windows, cdn_base_url="http://cdn.test", clock=lambda: ORIGIN + 60))
    ladder = ladder or (CMAF_LADDER if fmt.audio_rendition else RENDITIONS)
    return Publisher(store, executor, stream_id="st_x", session_id="ses_1", fmt=fmt, packagers=packagers,
                     renditions=ladder, fps=30.0, has_audio=True, retry=retry or RetryPolicy(base_s=0.05, cap_s=0.5))


class Encoder:
    """Writes fake segments (and one init segment per rendition and generation), as a transcoder run would."""

    def __init__(self, tmp_path: Path, fmt: SegmentFormat) -> None:
        self.tmp_path, self.fmt = tmp_path, fmt
        self.runs = 0
        self.origin = ORIGIN
        self.count: dict[str, int] = {}

    def new_run(self, publisher: Publisher, origin: float) -> None:
        publisher.generation_started()
        self.runs += 1
        self.origin = origin
        self.count = {}

    def segment(self, rendition: str, *, duration: int = SEGMENT) -> EncodedSegment:
        n = self.count.get(rendition, 0)
        self.count[rendition] = n + 1
        path = self.tmp_path / f"{rendition}-{self.runs}-{n}{self.fmt.extension}"
        path.write_bytes(f"{rendition}:{self.runs}:{n}".encode() * 100)
        init = None
        if self.fmt.has_init:
            init = self.tmp_path / f"{rendition}-{self.runs}-init.mp4"
            init.write_bytes(f"init {rendition} {self.runs}".encode())
        return EncodedSegment(rendition, path, n * SEGMENT, duration, TIMESCALE, self.origin, init)


def test_ten_seconds_of_s3_errors_lose_no_segment(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = CheckingStore()
        with ThreadPoolExecutor(4) as executor:
            publisher = make_publisher(store, executor, TS)
            encoder = Encoder(tmp_path, TS)
            encoder.new_run(publisher, ORIGIN)
            store.fail_until = time.monotonic() + 10
            total = 0
            # Two segments a second for 12 s: failures for the first 10, then recovery.
            while time.monotonic() < store.fail_until + 2:
                for r in RENDITIONS:
                    publisher.segment_ready(encoder.segment(r.name))
                total += 1
                await asyncio.sleep(0.5)
                if time.monotonic() < store.fail_until:
                    assert not store.keys("live/st_x/240p/ses_")
            assert store.failures > 20
            assert await publisher.drain(20)
            vod = await publisher.finalize(record=True, timeout_s=10)
        assert vod == {"hls": "vod/st_x/ses_1/master.m3u8"}
        assert store.violations == []
        for r in RENDITIONS:
            stored = store.keys(f"live/st_x/{r.name}/ses_1-")
            assert stored == [f"live/st_x/{r.name}/ses_1-{n:06d}.ts" for n in range(total)]
            assert store.objects[stored[0]].body == f"{r.name}:1:0".encode() * 100
            assert store.objects[stored[0]].content_type == TS.content_type
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


def test_masters_and_mpd_wait_for_every_rendition_and_ready_follows_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = CheckingStore()
        with ThreadPoolExecutor(2) as executor:
            publisher = make_publisher(store, executor)
            encoder = Encoder(tmp_path, CMAF)
            encoder.new_run(publisher, ORIGIN)
            publisher.segment_ready(encoder.segment("240p"))
            publisher.segment_ready(encoder.segment("audio"))
            await wait_for_async(lambda: "live/st_x/240p/index.m3u8" in store.objects, 5)
            assert "live/st_x/master.m3u8" not in store.objects and not publisher.ready.is_set()
            publisher.segment_ready(encoder.segment("160p"))
            await asyncio.wait_for(publisher.ready.wait(), 5)
            for key in ("live/st_x/master.m3u8", "live/st_x/dvr.m3u8", "live/st_x/manifest.mpd"):
                assert key in store.objects
            await publisher.finalize(record=False, timeout_s=5)
        order = store.log
        assert order.index("live/st_x/240p/ses_1-000000.m4s") < order.index("live/st_x/240p/index.m3u8")
        assert order.index("live/st_x/240p/ses_1-init-000.mp4") < order.index("live/st_x/240p/index.m3u8")
        assert order.index("live/st_x/160p/index.m3u8") < order.index("live/st_x/master.m3u8")
        assert order.index("live/st_x/160p/dvr.m3u8") < order.index("live/st_x/dvr.m3u8")
        assert store.objects["live/st_x/manifest.mpd"].content_type == "application/dash+xml"
        assert store.objects["live/st_x/240p/ses_1-init-000.mp4"].content_type == "video/mp4"
        assert store.objects["live/st_x/240p/ses_1-000000.m4s"].cache_control == "public, max-age=31536000, immutable"
        assert store.violations == [] and not store.keys("vod/")
    asyncio.run(scenario())


def test_a_new_generation_realigns_numbering_behind_a_discontinuity_and_a_new_period(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = CheckingStore()
        with ThreadPoolExecutor(2) as executor:
            publisher = make_publisher(store, executor)
            encoder = Encoder(tmp_path, CMAF)
            encoder.new_run(publisher, ORIGIN)
            for _n in range(3):
                for name in ("240p", "audio"):
                    publisher.segment_ready(encoder.segment(name))
            for _ in range(2):  # this rung lost its last segment when ffmpeg died
                publisher.segment_ready(encoder.segment("160p"))
            encoder.new_run(publisher, ORIGIN + 7.5)
            for r in CMAF_LADDER:
                publisher.segment_ready(encoder.segment(r.name, duration=SEGMENT * 3 // 4))
            recorded = await publisher.finalize(record=True, timeout_s=5)
        assert recorded == {"hls": "vod/st_x/ses_1/master.m3u8", "dash": "vod/st_x/ses_1/manifest.mpd"}
        for r in CMAF_LADDER:
            text = store.text(f"vod/st_x/ses_1/{r.name}/index.m3u8")
            assert text.count("#EXT-X-DISCONTINUITY\n") == 1
            assert text.strip().splitlines()[-2] == f"../../../../live/st_x/{r.name}/ses_1-000003.m4s"
            maps = MAP.findall(text)
            assert maps == [f"../../../../live/st_x/{r.name}/ses_1-init-000.mp4",
                            f"../../../../live/st_x/{r.name}/ses_1-init-001.mp4"]
            # The first segment after the restart is dated by the new run's origin.
            assert "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:07.500Z" in text
        for key in ("live/st_x/manifest.mpd", "vod/st_x/ses_1/manifest.mpd"):
            mpd = dash.parse(store.text(key))
            assert [p.id for p in mpd.periods] == ["p0", "p1"]
            assert [p.start for p in mpd.periods] == ["PT0.000S", "PT7.500S"]
            found = dash.segments(store.text(key), f"http://cdn.test/{key}")
            assert dash.timeline_gaps(found) == []
            # Video representations are cut at their common prefix in a Period (segmentAlignment).
            p0 = {(s.representation, s.number) for s in found if s.period == "p0"}
            assert ("240p", 2) not in p0 and ("audio", 2) in p0 and ("160p", 1) in p0
            p1 = [s for s in found if s.period == "p1" and s.representation == "240p"]
            assert [s.number for s in p1] == [3] and p1[0].url.endswith("/live/st_x/240p/ses_1-000003.m4s")
        live = dash.parse(store.text("live/st_x/manifest.mpd"))
        assert live.type == "dynamic" and live.minimum_update_period is None  # ended
        assert live.media_presentation_duration == "PT9.000S"
        assert dash.parse(store.text("vod/st_x/ses_1/manifest.mpd")).type == "static"
        assert store.violations == []
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


@pytest.mark.parametrize("fmt", [TS, CMAF], ids=lambda f: f.name)
def test_a_new_ladder_mid_session_continues_kept_renditions_and_ends_the_others(tmp_path: Path,
                                                                                fmt: SegmentFormat) -> None:
    audio = (AUDIO_ONLY,) if fmt.audio_rendition else ()

    async def scenario() -> None:
        store = CheckingStore()
        with ThreadPoolExecutor(4) as executor:
            packager = make_publisher(store, executor, fmt)
            encoder = Encoder(tmp_path, fmt)
            encoder.new_run(packager, ORIGIN)
            for r in (*RENDITIONS, *audio):
                packager.segment_ready(encoder.segment(r.name))
            await wait_for_async(lambda: "live/st_x/master.m3u8" in store.objects, 5)
            # The source turned to portrait and lost its 240p rung: 160p continues, 240p's live playlist ends.
            portrait = (Rendition("160p", 160, 214, 200), *audio)
            packager.use_ladder(portrait, fps=30.0, has_audio=True)
            encoder.new_run(packager, ORIGIN + 2)
            for r in portrait:
                packager.segment_ready(encoder.segment(r.name))
            await wait_for_async(lambda: "RESOLUTION=160x214" in store.text("live/st_x/master.m3u8"), 5)
            assert "240p/index.m3u8" not in store.text("live/st_x/master.m3u8")
            await wait_for_async(lambda: store.text("live/st_x/240p/index.m3u8").endswith("#EXT-X-ENDLIST\n"), 5)
            kept = store.text("live/st_x/160p/index.m3u8")
            ext = fmt.extension
            assert [s.uri for s in hls.parse_media_playlist(kept)] == [f"ses_1-000000{ext}", f"ses_1-000001{ext}"]
            assert kept.index("#EXT-X-DISCONTINUITY\n") < kept.index(f"ses_1-000001{ext}")
            if fmt.dash:  # the new shape in a new Period, without the retired rung
                await wait_for_async(lambda: "p1" in store.text("live/st_x/manifest.mpd"), 5)
                mpd = dash.parse(store.text("live/st_x/manifest.mpd"))
                reps = [[r.id for a in p.adaptation_sets for r in a.representations] for p in mpd.periods]
                assert reps == [["240p", "160p", "audio"], ["160p", "audio"]]
                assert mpd.periods[1].adaptation_sets[0].representations[0].width == 160
            await packager.finalize(record=False, timeout_s=5)
        assert store.violations == []
    asyncio.run(scenario())


def test_the_rewind_window_slides_and_the_live_window_stays_short(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = CheckingStore()
        windows = Windows(live_segments=3, dvr_s=10.0)
        with ThreadPoolExecutor(2) as executor:
            publisher = make_publisher(store, executor, ladder=(AUDIO_ONLY,), windows=windows)
            encoder = Encoder(tmp_path, CMAF)
            encoder.new_run(publisher, ORIGIN)
            for _ in range(12):
                publisher.segment_ready(encoder.segment("audio"))
            await publisher.drain(5)

            def last_number(key: str) -> int | None:
                text = store.objects[key].body.decode() if key in store.objects else ""
                if key.endswith(".mpd"):
                    return dash.segments(text, "http://x/m.mpd")[-1].number if text else None
                return len(hls.parse_media_playlist(text)) and int(hls.parse_media_playlist(text)[-1].uri[-10:-4])
            await wait_for_async(lambda: all(last_number(k) == 11 for k in (
                "live/st_x/audio/dvr.m3u8", "live/st_x/audio/index.m3u8", "live/st_x/manifest.mpd")), 5)
            dvr = store.text("live/st_x/audio/dvr.m3u8")
            live = store.text("live/st_x/audio/index.m3u8")
            mpd = dash.parse(store.text("live/st_x/manifest.mpd"))
            await publisher.finalize(record=False, timeout_s=5)
        assert sum(s.duration for s in hls.parse_media_playlist(dvr)) == pytest.approx(10.0)
        assert "#EXT-X-MEDIA-SEQUENCE:7" in dvr and "#EXT-X-PLAYLIST-TYPE" not in dvr
        assert len(hls.parse_media_playlist(live)) == 3
        assert mpd.time_shift_buffer_depth == "PT10.000S"
        assert next(s.number for s in dash.segments(store.text("live/st_x/manifest.mpd"), "http://x/m.mpd")) == 7
    asyncio.run(scenario())


uploads = st.lists(st.tuples(st.sampled_from([r.name for r in CMAF_LADDER]), st.booleans()), min_size=1, max_size=24)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=uploads, seed=st.integers(0, 2**32 - 1), failure_rate=st.sampled_from([0.0, 0.2, 0.5]),
       fmt=st.sampled_from([CMAF, TS]))
def test_no_manifest_version_names_an_object_not_yet_stored(tmp_path_factory: Any, events: list[tuple[str, bool]],
                                                            seed: int, failure_rate: float,
                                                            fmt: SegmentFormat) -> None:
    """Random segment arrivals, generation restarts, upload delays and failures: every version of every HLS
    playlist and MPD that reaches the store names only objects already there, and in the end all are named."""
    tmp_path = tmp_path_factory.mktemp("uploads")
    ladder = CMAF_LADDER if fmt.audio_rendition else RENDITIONS

    async def scenario() -> CheckingStore:
        store = CheckingStore(random.Random(seed), failure_rate)
        with ThreadPoolExecutor(4) as executor:
            publisher = make_publisher(store, executor, fmt, ladder=ladder,
                                       retry=RetryPolicy(base_s=0.001, cap_s=0.004))
            encoder = Encoder(tmp_path, fmt)
            encoder.new_run(publisher, ORIGIN)
            for index, (rendition, restart) in enumerate(events):
                if restart and index % 5 == 4:
                    encoder.new_run(publisher, ORIGIN + index * 2)
                if rendition in {r.name for r in ladder}:
                    publisher.segment_ready(encoder.segment(rendition))
                await asyncio.sleep(0)
            assert await publisher.drain(10)
            await publisher.finalize(record=True, timeout_s=10)
        return store

    store = asyncio.run(scenario())
    assert store.violations == []
    delivered = any(name in {r.name for r in ladder} for name, _ in events)
    assert (store.manifest_versions > 0) == delivered
    stored_segments = {k for k in store.objects if k.endswith(fmt.extension)}
    named = set().union(*(named_objects(k, store.text(k)) for k in store.objects if k.startswith("vod/")))
    assert stored_segments <= named
