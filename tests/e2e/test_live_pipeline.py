"""Issue 3 through the whole local platform: RTMP in, aligned ABR HLS out of the CDN, sessions, VOD, events."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from local.cdn import media_bucket_of
from local.provision import emulator_client
from tests.support import dash
from tests.support.http import call
from tests.support.media import (
    SEGMENT_FORMAT,
    aac_encoders,
    audio_rendition_url,
    decodable_segment,
    fetch_playlist,
    ffmpeg_commands_under,
    ffprobe,
    media_task_pid,
    playable,
    segments,
    variant_urls,
)
from tests.support.platform import PlatformThread
from tests.support.publishers import ffmpeg_publisher, gstreamer_publisher
from tests.support.users import SignedInUser, create_stream, sign_up_and_log_in
from tests.support.wait import wait_for
from tests.support.ws import Listener

pytestmark = pytest.mark.e2e

PUBLISH_SECONDS = 16


def stream_status(platform: PlatformThread, stream_id: str) -> str:
    return str(call("GET", f"{platform.urls['api']}/v1/streams/{stream_id}").json["status"])


def ended_session(platform: PlatformThread, user: SignedInUser, stream_id: str) -> dict[str, Any] | None:
    reply = call("GET", f"{platform.urls['api']}/v1/streams/{stream_id}/sessions", token=user.token)
    done = [s for s in reply.json["items"] if s.get("ended_at") and s.get("vod_url")]
    return done[0] if done else None


def test_publish_becomes_an_aligned_ladder_then_a_vod(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api)
    stream = create_stream(api, user, "e2e ladder")
    key = stream["ingest"]["stream_key"]
    with Listener(platform.urls["websocket"], subscribe=[stream["id"]]) as listener:
        publisher = ffmpeg_publisher(f"{stream['ingest']['rtmp_url']}/{key}", PUBLISH_SECONDS)
        wait_for(lambda: playable(stream["playback_url"]), 30, "the master and a first segment of every rendition")
        # The stream turns live once its entry manifests are stored (a stream broadcast before also waits for the
        # CDN's cached copies of the previous broadcast's to expire): just after the first playable, not before.
        wait_for(lambda: stream_status(platform, stream["id"]) == "live", 5, "the stream to turn live")

        master = call("GET", stream["playback_url"])
        assert master.headers["Content-Type"] in ("application/vnd.apple.mpegurl", "application/x-mpegURL")
        assert master.headers["Cache-Control"] == "max-age=1"
        variants = variant_urls(stream["playback_url"])
        assert sorted(variants) == [160, 360, 480, 720]
        for codecs in (p.stream_info.codecs for p in fetch_playlist(stream["playback_url"]).playlists):  # type: ignore[union-attr]
            assert codecs.startswith("avc1.") and "mp4a.40.2" in codecs
        # One decode, one ffmpeg; with CMAF the audio is encoded once, for its own rendition.
        (transcoder,) = ffmpeg_commands_under(media_task_pid())
        assert aac_encoders(transcoder) == (1 if SEGMENT_FORMAT.audio_rendition else 4), transcoder
        media = fetch_playlist(variant_urls(stream["playback_url"])[720])
        assert media is not None and all(s.program_date_time is not None for s in media.segments)
        if SEGMENT_FORMAT.has_init:
            assert media.version == SEGMENT_FORMAT.playlist_version and media.segments[0].init_section is not None

        assert publisher.wait(PUBLISH_SECONDS + 30) == 0
        session = wait_for(lambda: ended_session(platform, user, stream["id"]), 40, "the session to end with a VOD")
        assert stream_status(platform, stream["id"]) == "offline"
        wait_for(lambda: listener.of_type("stream.offline", stream["id"]), 15, "a stream.offline event")

    # Every rendition cuts at the same instants, and every segment decodes at its rendition's height.
    vod_variants = variant_urls(session["vod_url"])
    assert sorted(vod_variants) == [160, 360, 480, 720]
    cuts = {height: [round(d, 1) for d, _ in segments(url)] for height, url in vod_variants.items()}
    assert len({tuple(c) for c in cuts.values()}) == 1, cuts
    with tempfile.TemporaryDirectory() as scratch:
        for height, url in vod_variants.items():
            _, segment_url = segments(url)[-1]
            head = call("HEAD", segment_url)
            assert head.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert head.headers["Content-Type"] == SEGMENT_FORMAT.content_type
            for index in (0, 1, -1):  # the init segment and the first segments, and the last
                probed = {s["codec_type"]: s for s in ffprobe(str(decodable_segment(url, index, Path(scratch))))
                          ["streams"]}
                assert probed["video"]["height"] == height
        audio_url = audio_rendition_url(session["vod_url"]) if SEGMENT_FORMAT.audio_rendition else vod_variants[720]
        assert audio_url is not None
        probed = {s["codec_type"]: s for s in ffprobe(str(decodable_segment(audio_url, 0, Path(scratch))))["streams"]}
        assert probed["audio"]["codec_name"] == "aac" and probed["audio"]["sample_rate"] == "48000"
        if SEGMENT_FORMAT.audio_rendition:
            assert "video" not in probed
    if SEGMENT_FORMAT.dash:
        assert_one_set_of_segments(platform, stream["id"], session)

    top = fetch_playlist(vod_variants[720])
    assert top is not None and top.is_endlist
    total = sum(float(s.duration) for s in top.segments)
    assert abs(total - PUBLISH_SECONDS) <= 2, total

    # Events arrive in order, each stream's seq rising by one.
    live = listener.of_type("stream.live", stream["id"])
    offline = listener.of_type("stream.offline", stream["id"])
    assert live and offline and offline[-1]["seq"] > live[0]["seq"]
    seqs = [m["seq"] for m in listener.messages if m.get("stream_id") == stream["id"] and "seq" in m]
    assert seqs == sorted(seqs)


def hls_segment_urls(master_url: str) -> set[str]:
    """Every segment URL the master's media playlists (variants and audio) name."""
    master = fetch_playlist(master_url)
    assert master is not None
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    found = set()
    for uri in uris:
        media_url = urljoin(master_url, uri)
        found |= {url for _, url in segments(media_url)}
    return found


def assert_one_set_of_segments(platform: PlatformThread, stream_id: str, session: dict[str, Any]) -> None:
    """HLS and DASH, live and VOD, name exactly the same segment objects; nothing is stored twice."""
    cdn = platform.urls["cdn"]
    named = {}
    live = (f"{cdn}/live/{stream_id}/dvr.m3u8", f"{cdn}/live/{stream_id}/manifest.mpd")
    for kind, hls_master, mpd_url in (("live", *live), ("vod", session["vod_url"], session["vod_dash_url"])):
        reply = call("GET", mpd_url)
        assert reply.status == 200 and reply.headers["Content-Type"] == "application/dash+xml", reply.status
        mpd = dash.parse(reply.raw.decode())
        assert mpd.type == ("dynamic" if kind == "live" else "static")
        found = dash.segments(reply.raw.decode(), mpd_url)
        assert dash.timeline_gaps(found) == []  # t[n+1] = t[n] + d[n] within each Period
        from_mpd = {s.url for s in found}
        from_hls = hls_segment_urls(hls_master)
        assert from_mpd == from_hls, (kind, sorted(from_mpd ^ from_hls)[:4])
        assert all(url.endswith(SEGMENT_FORMAT.extension) for url in from_mpd)
        named[kind] = from_mpd
    assert named["live"] == named["vod"]
    s3 = emulator_client("s3", platform.urls["emulator"])
    bucket = media_bucket_of(platform.platform.template)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"live/{stream_id}/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    stored = {f"{cdn}/{k}" for k in keys if k.endswith(SEGMENT_FORMAT.extension)}
    assert stored == named["vod"]  # every segment stored once, named by both
    vod_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"vod/{stream_id}/").get("Contents", [])]
    assert vod_keys and all(k.endswith((".m3u8", ".mpd")) for k in vod_keys)  # no copy: manifests only


def test_gstreamer_is_a_second_real_client(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    stream = create_stream(api, sign_up_and_log_in(api), "e2e gstreamer")
    publisher = gstreamer_publisher(f"{stream['ingest']['rtmp_url']}/{stream['ingest']['stream_key']}", 10)
    try:
        wait_for(lambda: playable(stream["playback_url"]), 30, "HLS from a GStreamer publisher")
        assert sorted(variant_urls(stream["playback_url"])) == [160, 360]
    finally:
        publisher.kill()
        publisher.wait()


def test_wrong_key_is_refused_and_the_neighbour_keeps_going(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    stream = create_stream(api, sign_up_and_log_in(api), "e2e neighbour")
    rtmp = stream["ingest"]["rtmp_url"]
    good = ffmpeg_publisher(f"{rtmp}/{stream['ingest']['stream_key']}", 25, size="640x360")
    try:
        wait_for(lambda: playable(stream["playback_url"]), 30, "the good stream")
        bad = ffmpeg_publisher(f"{rtmp}/sk_{'x' * 43}", 20, size="640x360")
        assert bad.wait(10) != 0
        newest = segments(variant_urls(stream["playback_url"])[360])[-1][1]
        wait_for(lambda: segments(variant_urls(stream["playback_url"])[360])[-1][1] != newest, 10,
                 "a new segment on the live neighbour")
        assert good.poll() is None
    finally:
        good.kill()
        good.wait()


def test_stream_keys_never_reach_the_logs_and_revoking_disconnects(platform: PlatformThread,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = platform.urls["api"]
    user = sign_up_and_log_in(api)
    stream = create_stream(api, user, "e2e secrets")
    first_key = stream["ingest"]["stream_key"]
    rotated = call("POST", f"{api}/v1/streams/{stream['id']}/keys", {"name": "backup"}, token=user.token)
    assert rotated.status == 201
    second_key = rotated.json["stream_key"]
    publisher = ffmpeg_publisher(f"{stream['ingest']['rtmp_url']}/{second_key}", 60, size="640x360")
    try:
        wait_for(lambda: stream_status(platform, stream["id"]) == "live", 20, "the stream to go live")
        revoked = call("DELETE", f"{api}/v1/streams/{stream['id']}/keys/{rotated.json['key_id']}", token=user.token)
        assert revoked.status in (200, 204)
        wait_for(lambda: publisher.poll() is not None, 8, "the publisher of a revoked key to be disconnected")
    finally:
        publisher.kill()
        publisher.wait()
    logged = caplog.text
    assert "streamforge.fn" in logged and "streamforge.media" in logged  # the capture really saw both
    for key in (first_key, second_key):
        assert key not in logged
        assert key[3:] not in logged


def test_a_reconnect_within_grace_continues_the_session(platform: PlatformThread) -> None:
    api = platform.urls["api"]
    user = sign_up_and_log_in(api)
    stream = create_stream(api, user, "e2e reconnect")
    url = f"{stream['ingest']['rtmp_url']}/{stream['ingest']['stream_key']}"
    first = ffmpeg_publisher(url, 6, size="640x360")
    assert first.wait(30) == 0
    # The publisher is gone; inside the grace period the stream waits for it.
    wait_for(lambda: stream_status(platform, stream["id"]) == "reconnecting", 5, "the stream to be reconnecting")
    second = ffmpeg_publisher(url, 6, size="640x360")
    assert second.wait(30) == 0
    session = wait_for(lambda: ended_session(platform, user, stream["id"]), 40, "the session to end")
    sessions = call("GET", f"{api}/v1/streams/{stream['id']}/sessions", token=user.token).json["items"]
    assert len(sessions) == 1
    media_url = variant_urls(session["vod_url"])[360]
    vod = fetch_playlist(media_url)
    assert vod is not None and vod.is_endlist
    assert any(s.discontinuity for s in vod.segments)
    assert abs(sum(float(s.duration) for s in vod.segments) - 12) <= 2
