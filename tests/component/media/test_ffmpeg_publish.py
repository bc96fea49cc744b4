"""Real publishers (ffmpeg, GStreamer rtmp2sink) into the in-process server, with fake store/S3."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from streamforge_media import hls

from tests.support.publishers import start_ffmpeg
from tests.support.wait import wait_for_async
from tests.unit.media.media_support import SEGMENT_FORMAT, STREAM_ID, have, make_config, running_harness

pytestmark = [pytest.mark.component, pytest.mark.skipif(not have("ffmpeg"), reason="ffmpeg not installed")]


def ffprobe_first_pts(data: bytes, tmp_path: Path, name: str) -> float:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time", "-read_intervals", "%+#1", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[0].strip(","))


def test_ffmpeg_publish_produces_aligned_ladder(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_harness(make_config(tmp_path)) as h:
            started = time.monotonic()
            proc = await start_ffmpeg(h.url(), 7)
            master = f"live/{STREAM_ID}/master.m3u8"
            await wait_for_async(lambda: master in h.objects.objects, 8)
            first_playable = time.monotonic() - started
            assert await asyncio.wait_for(proc.wait(), 15) == 0
            await wait_for_async(lambda: h.store.sessions and all(
                s["status"] == "ended" for s in h.store.sessions.values()), 15)
            objects = h.objects
            text = objects.text(master)
            assert 'RESOLUTION=320x240' in text and 'RESOLUTION=214x160' in text
            assert 'CODECS="avc1.64' in text and "mp4a.40.2" in text
            if SEGMENT_FORMAT.audio_rendition:  # encoded once, named by every variant
                assert '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"' in text and text.count('AUDIO="audio"') == 2
            assert objects.objects[master].content_type == hls.PLAYLIST_CONTENT_TYPE
            assert objects.objects[master].cache_control == "max-age=1"
            playlists = {}
            for rendition in ("240p", "160p"):
                key = f"live/{STREAM_ID}/{rendition}/index.m3u8"
                playlists[rendition] = hls.parse_media_playlist(objects.text(key))
            vod = objects.text(next(iter(h.store.sessions.values()))["vod_url"].replace("http://cdn.test/", ""))
            assert "240p/index.m3u8" in vod
            segs = {r: [k for k in objects.keys(f"live/{STREAM_ID}/{r}/ses_") if k.endswith(SEGMENT_FORMAT.extension)]
                    for r in ("240p", "160p")}
            assert len(segs["240p"]) == len(segs["160p"]) >= 3
            for key in segs["240p"]:
                assert objects.objects[key].cache_control == "public, max-age=31536000, immutable"
                assert objects.objects[key].content_type == SEGMENT_FORMAT.content_type
            inits = {r: [k for k in objects.keys(f"live/{STREAM_ID}/{r}/ses_") if k.endswith(".mp4")]
                     for r in ("240p", "160p")}
            assert all(len(keys) == (1 if SEGMENT_FORMAT.has_init else 0) for keys in inits.values()), inits
            # Same cut instants in every rendition: equal durations and equal first PTS per segment.
            durations = {r: [s.duration for s in p] for r, p in playlists.items()}
            assert durations["240p"] == durations["160p"]
            def decodable(rendition: str, key: str) -> bytes:  # a CMAF segment decodes after its init segment
                init = b"".join(objects.objects[k].body for k in inits[rendition])
                return init + objects.objects[key].body
            for a, b in list(zip(segs["240p"], segs["160p"], strict=True))[:3]:
                assert ffprobe_first_pts(decodable("240p", a), tmp_path, "a" + SEGMENT_FORMAT.extension) == \
                    pytest.approx(ffprobe_first_pts(decodable("160p", b), tmp_path, "b" + SEGMENT_FORMAT.extension),
                                  abs=0.002)
            assert first_playable < 6.0
            assert objects.keys(f"thumbs/{STREAM_ID}/latest.jpg")
            # Live once the first manifests are stored: before any other lifecycle event.
            assert next(t for t in h.events.types() if t != "Ingest Health") == "Stream Live"
            assert {"Stream Offline", "Session Recorded"} <= set(h.events.types())
    asyncio.run(scenario())
