"""The media task wired to real boto3 clients against a moto server over HTTP: DynamoDB items,
S3 objects and headers, and the event sequence, for a real ffmpeg publish."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from streamforge.keys import hash_stream_key
from streamforge_media.app import MediaTask
from streamforge_media.config import MediaConfig
from streamforge_media.segment_format import DEFAULT, segment_format
from streamforge_media.store import LIVE, DynamoStreamStore, IngestLease

from tests.support.publishers import start_ffmpeg
from tests.support.wait import wait_for_async

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")]

STREAM_ID = "st_mmmmmmmmmmmmmmmm"
KEY = "sk_" + "m" * 43
LADDER = '[{"name": "240p", "height": 240, "bitrate_kbps": 400}, {"name": "160p", "height": 160, "bitrate_kbps": 200}]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # In-process moto servers share one state: start each test from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    try:
        yield endpoint
    finally:
        server.stop()


BUS = "streamforge-media-test"


def create_resources() -> None:
    db = boto3.client("dynamodb")
    s = {"AttributeType": "S"}
    db.create_table(TableName="Streams", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": n, **s} for n in ("stream_id", "status", "created_at",
                                                                                "owner_id")],
                    KeySchema=[{"AttributeName": "stream_id", "KeyType": "HASH"}],
                    GlobalSecondaryIndexes=[
                        {"IndexName": "by_status", "Projection": {"ProjectionType": "ALL"},
                         "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                       {"AttributeName": "created_at", "KeyType": "RANGE"}]},
                        {"IndexName": "by_owner", "Projection": {"ProjectionType": "ALL"},
                         "KeySchema": [{"AttributeName": "owner_id", "KeyType": "HASH"},
                                       {"AttributeName": "created_at", "KeyType": "RANGE"}]}])
    db.create_table(TableName="StreamKeys", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": n, **s} for n in ("key_hash", "stream_id", "created_at")],
                    KeySchema=[{"AttributeName": "key_hash", "KeyType": "HASH"}],
                    GlobalSecondaryIndexes=[
                        {"IndexName": "by_stream", "Projection": {"ProjectionType": "ALL"},
                         "KeySchema": [{"AttributeName": "stream_id", "KeyType": "HASH"},
                                       {"AttributeName": "created_at", "KeyType": "RANGE"}]}])
    db.create_table(TableName="Sessions", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": n, **s} for n in ("stream_id", "session_id")],
                    KeySchema=[{"AttributeName": "stream_id", "KeyType": "HASH"},
                               {"AttributeName": "session_id", "KeyType": "RANGE"}])
    now = "2026-11-25T00:00:00.000Z"
    db.put_item(TableName="Streams", Item={
        "stream_id": {"S": STREAM_ID}, "owner_id": {"S": "u1"}, "title": {"S": "t"}, "status": {"S": "offline"},
        "record": {"BOOL": True}, "created_at": {"S": now}, "updated_at": {"S": now}, "event_seq": {"N": "0"},
        "reconnect_grace_s": {"N": "1"}})
    db.put_item(TableName="StreamKeys", Item={
        "key_hash": {"S": hash_stream_key(KEY)}, "key_id": {"S": "key_abcdefabcdef"}, "stream_id": {"S": STREAM_ID},
        "name": {"S": "default"}, "created_at": {"S": now}})
    boto3.client("s3").create_bucket(Bucket="media")
    events = boto3.client("events")
    events.create_event_bus(Name=BUS)


FORMAT = segment_format(os.environ.get("STREAMFORGE_SEGMENT_FORMAT") or DEFAULT.name)


def config(tmp_path: Path) -> MediaConfig:
    return MediaConfig.from_env({
        "STREAMS_TABLE": "Streams", "STREAM_KEYS_TABLE": "StreamKeys", "SESSIONS_TABLE": "Sessions",
        "MEDIA_BUCKET": "media", "EVENT_BUS_NAME": BUS, "CDN_BASE_URL": "http://127.0.0.1:1/",
        "RTMP_HOST": "127.0.0.1", "RTMP_PORT": "0", "STREAMFORGE_LADDER": LADDER,
        "STREAMFORGE_HEALTH_INTERVAL_S": "1", "STREAMFORGE_WORK_DIR": str(tmp_path / "work"),
        "STREAMFORGE_SEGMENT_FORMAT": FORMAT.name})


def item(table: str, **key: str) -> dict[str, Any]:
    raw = boto3.client("dynamodb").get_item(TableName=table, Key={k: {"S": v} for k, v in key.items()}).get("Item")
    return raw or {}


def test_publish_to_vod_through_dynamodb_s3_and_eventbridge(moto_endpoint: str, tmp_path: Path) -> None:
    create_resources()

    async def scenario() -> None:
        task = MediaTask.from_config(config(tmp_path))
        await task.start()
        try:
            url = f"rtmp://127.0.0.1:{task.server.port}/live/{KEY}"
            proc = await start_ffmpeg(url, 5)
            # Live once its first manifests are stored (a segment of every rendition, then a second).
            await wait_for_async(lambda: item("Streams", stream_id=STREAM_ID).get("status", {}).get("S") == "live", 10,
                                 "the stream to turn live")
            assert await asyncio.wait_for(proc.wait(), 15) == 0
            await wait_for_async(lambda: "current_session_id" not in item("Streams", stream_id=STREAM_ID), 20,
                                 "the session to end")
        finally:
            await task.stop()

    asyncio.run(scenario())
    stream = item("Streams", stream_id=STREAM_ID)
    assert not {"current_session_id", "ingest_owner", "ingest_lease_until"} & set(stream)
    assert [r["M"]["name"]["S"] for r in stream["renditions"]["L"]] == \
        ["240p", "160p", *(["audio"] if FORMAT.audio_rendition else [])]
    assert set(stream["ingest_health"]["M"]) >= {"bitrate_kbps", "fps", "width", "height", "keyframe_interval_s"}
    assert "last_used_at" in item("StreamKeys", key_hash=hash_stream_key(KEY))
    sessions = boto3.client("dynamodb").query(
        TableName="Sessions", KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": STREAM_ID}})["Items"]
    assert len(sessions) == 1
    session = sessions[0]
    sid = session["session_id"]["S"]
    assert sid.startswith("ses_") and len(sid) == 4 + 15 + 6
    assert session["status"]["S"] == "ended"
    assert session["vod_url"]["S"] == f"http://127.0.0.1:1/vod/{STREAM_ID}/{sid}/master.m3u8"
    assert float(session["duration_s"]["N"]) == pytest.approx(5.0, abs=2.0)
    # Stream Live, at least one Ingest Health, Stream Offline, Session Recorded: each took a seq.
    assert int(stream["event_seq"]["N"]) >= 4

    s3 = boto3.client("s3")
    segment = s3.list_objects_v2(Bucket="media", Prefix=f"live/{STREAM_ID}/240p/{sid}-")["Contents"][0]["Key"]
    head = s3.head_object(Bucket="media", Key=segment)
    assert head["ContentType"] == FORMAT.content_type
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    head = s3.head_object(Bucket="media", Key=f"live/{STREAM_ID}/master.m3u8")
    assert head["ContentType"] == "application/vnd.apple.mpegurl" and head["CacheControl"] == "max-age=1"
    vod = s3.get_object(Bucket="media", Key=f"vod/{STREAM_ID}/{sid}/240p/index.m3u8")["Body"].read().decode()
    assert vod.rstrip().endswith("#EXT-X-ENDLIST")
    first = next(line for line in vod.splitlines() if line.endswith(FORMAT.extension))
    # The relative URI resolves (from vod/{stream}/{session}/240p/) to the live segment object.
    resolved = Path("/vod", STREAM_ID, sid, "240p", first).resolve().as_posix().lstrip("/")
    s3.head_object(Bucket="media", Key=resolved)
    assert s3.list_objects_v2(Bucket="media", Prefix=f"thumbs/{STREAM_ID}/latest.jpg")["KeyCount"] == 1


def test_ingest_lease_admits_one_task_per_stream(moto_endpoint: str) -> None:
    create_resources()
    store = DynamoStreamStore(streams_table="Streams", keys_table="StreamKeys", sessions_table="Sessions")
    at, now = "2026-11-25T00:00:01.000Z", time.time()

    def stream() -> tuple[str, str, str]:
        found = item("Streams", stream_id=STREAM_ID)
        return found["status"]["S"], found["current_session_id"]["S"], found["ingest_owner"]["S"]

    assert store.start_session(STREAM_ID, "ses_a", at, lease=IngestLease("task_a", now, 30))
    assert not store.start_session(STREAM_ID, "ses_b", at, lease=IngestLease("task_b", now + 1, 30))
    assert item("Sessions", stream_id=STREAM_ID, session_id="ses_b") == {}  # the refused claim wrote nothing
    assert stream() == ("offline", "ses_a", "task_a")  # live once its manifests are stored
    store.set_status(STREAM_ID, "ses_a", LIVE, at)
    assert stream() == ("live", "ses_a", "task_a")
    assert store.renew_lease(STREAM_ID, "ses_a", IngestLease("task_a", now + 10, 30))
    assert not store.renew_lease(STREAM_ID, "ses_a", IngestLease("task_b", now + 10, 30))
    # Still inside the renewed term, then past it: task_a vanished and task_b takes over.
    assert not store.start_session(STREAM_ID, "ses_b", at, lease=IngestLease("task_b", now + 39, 30))
    assert store.start_session(STREAM_ID, "ses_b", at, lease=IngestLease("task_b", now + 41, 30))
    assert stream() == ("offline", "ses_b", "task_b")
    store.set_status(STREAM_ID, "ses_b", LIVE, at)
    assert not store.renew_lease(STREAM_ID, "ses_a", IngestLease("task_a", now + 42, 30))
    # The old holder ending its session closes its Session but leaves the new holder's stream alone.
    store.end_session(STREAM_ID, "ses_a", ended_at=at, duration_s=1.0, vod_url=None)
    assert item("Sessions", stream_id=STREAM_ID, session_id="ses_a")["status"]["S"] == "ended"
    assert stream() == ("live", "ses_b", "task_b")
    store.end_session(STREAM_ID, "ses_b", ended_at=at, duration_s=1.0, vod_url=None)
    ended = item("Streams", stream_id=STREAM_ID)
    assert ended["status"]["S"] == "offline"
    assert not {"current_session_id", "ingest_owner", "ingest_lease_until"} & set(ended)
    # The next session must wait for this one's cached manifests to expire before it turns live.
    assert ended["last_ended_at"]["S"] == at
    record = store.get_stream(STREAM_ID)
    assert record is not None and record.broadcast_before
