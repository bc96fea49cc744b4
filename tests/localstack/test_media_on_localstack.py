"""On LocalStack's S3 and EventBridge: the media task's HLS output, and the template's event rules.

LocalStack's free edition has no Cognito and fetches DynamoDB as a jar at first use, so these tests keep to
S3, SQS and EventBridge; the stream store stays in memory.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from streamforge.events import (
    SOURCE_API,
    SOURCE_MEDIA,
    IngestHealth,
    SessionRecorded,
    StreamLive,
    StreamOffline,
    StreamUpdated,
    ViewerCountChanged,
)
from streamforge_media.publisher import S3ObjectStore
from streamforge_media.segment_format import DEFAULT as SEGMENT_FORMAT

from local.template import Template
from tests.support.publishers import start_ffmpeg
from tests.support.wait import wait_for_async
from tests.unit.media.media_support import STREAM_ID, make_config, running_task

pytestmark = pytest.mark.localstack

ROOT = Path(__file__).resolve().parents[2]


def test_media_task_publishes_live_ladder_and_vod_to_localstack_s3(localstack_endpoint: str,
                                                                     tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)

    async def scenario() -> str:
        config = make_config(tmp_path, reconnect_grace_s=0)
        async with running_task(config, S3ObjectStore(bucket, s3)) as h:
            publisher = await start_ffmpeg(h.url(), 5)
            assert await asyncio.wait_for(publisher.wait(), 30) == 0
            await wait_for_async(lambda: SessionRecorded.DETAIL_TYPE in h.events.types(), 30)
            ((_, session_id),) = h.store.sessions
            return str(session_id)

    session_id = asyncio.run(scenario())

    def head(key: str) -> tuple[str, str]:
        found = s3.head_object(Bucket=bucket, Key=key)
        return found["ContentType"], found["CacheControl"]

    master = s3.get_object(Bucket=bucket, Key=f"live/{STREAM_ID}/master.m3u8")["Body"].read().decode()
    assert [line for line in master.splitlines() if line.endswith(".m3u8")] == ["240p/index.m3u8", "160p/index.m3u8"]
    assert head(f"live/{STREAM_ID}/master.m3u8") == ("application/vnd.apple.mpegurl", "max-age=1")
    for rendition in ("240p", "160p"):
        vod_key = f"vod/{STREAM_ID}/{session_id}/{rendition}/index.m3u8"
        vod = s3.get_object(Bucket=bucket, Key=vod_key)["Body"].read().decode()
        assert vod.rstrip().endswith("#EXT-X-ENDLIST")
        segments = [line for line in vod.splitlines() if line.endswith(SEGMENT_FORMAT.extension)]
        assert len(segments) >= 2
        for segment in segments:
            # Every segment the VOD names resolves to a stored, immutable object of the segment format.
            key = posixpath.normpath(posixpath.join(posixpath.dirname(vod_key), segment))
            assert head(key) == (SEGMENT_FORMAT.content_type, "public, max-age=31536000, immutable")
    assert head(f"thumbs/{STREAM_ID}/latest.jpg")[0] == "image/jpeg"


STREAM_LIVE, STREAM_OFFLINE, SESSION_RECORDED = StreamLive.DETAIL_TYPE, StreamOffline.DETAIL_TYPE, \
    SessionRecorded.DETAIL_TYPE
STREAM_UPDATED, VIEWER_COUNT, INGEST_HEALTH = StreamUpdated.DETAIL_TYPE, ViewerCountChanged.DETAIL_TYPE, \
    IngestHealth.DETAIL_TYPE
EVENTS = [(SOURCE_MEDIA, STREAM_LIVE), (SOURCE_MEDIA, STREAM_OFFLINE), (SOURCE_MEDIA, SESSION_RECORDED),
          (SOURCE_MEDIA, INGEST_HEALTH), (SOURCE_API, STREAM_UPDATED), (SOURCE_API, VIEWER_COUNT),
          (SOURCE_API, INGEST_HEALTH), ("someone.else", STREAM_LIVE)]
# docs/contracts.md: the fan-out pushes lifecycle events to sockets; analytics takes Ingest Health. Session
# Recorded has no subscriber yet, and other sources are never trusted.
EXPECTED = {
    "StreamLifecycleRule": {(SOURCE_MEDIA, STREAM_LIVE), (SOURCE_MEDIA, STREAM_OFFLINE), (SOURCE_API, STREAM_UPDATED),
                            (SOURCE_API, VIEWER_COUNT)},
    "IngestHealthRule": {(SOURCE_MEDIA, INGEST_HEALTH), (SOURCE_API, INGEST_HEALTH)},
}


def test_the_templates_event_rules_route_the_contracts_events_on_localstack(localstack_endpoint: str) -> None:
    events, sqs = boto3.client("events"), boto3.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    bus = f"streamforge-{suffix}"
    events.create_event_bus(Name=bus)
    queues: dict[str, str] = {}
    for logical_id, props in Template.load(ROOT / "cdk.out").of_type("AWS::Events::Rule"):
        url = sqs.create_queue(QueueName=f"{logical_id}-{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=f"{logical_id}-{suffix}", EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]))
        events.put_targets(Rule=f"{logical_id}-{suffix}", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
        queues[logical_id] = url
    assert set(queues) == set(EXPECTED)
    sent = events.put_events(Entries=[{"EventBusName": bus, "Source": source, "DetailType": detail_type,
                                       "Detail": json.dumps({"stream_id": STREAM_ID, "seq": seq})}
                                      for seq, (source, detail_type) in enumerate(EVENTS, 1)])
    assert sent["FailedEntryCount"] == 0

    def delivered(url: str, count: int) -> set[tuple[str, str]]:
        received: list[dict[str, Any]] = []
        for _ in range(10):  # long polls; stops as soon as the expected count has arrived
            received += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if len(received) >= count:
                break
        bodies = [json.loads(message["Body"]) for message in received]
        return {(body["source"], body["detail-type"]) for body in bodies}

    for logical_id, expected in EXPECTED.items():
        assert delivered(queues[logical_id], len(expected)) == expected
    # Nothing more arrives on either queue: the patterns let no other event through.
    for url in queues.values():
        assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")
