"""The heartbeat API, the batch consumer and the owner's analytics, end to end in moto."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from streamforge.events import StreamEvent, ViewerCountChanged

from tests.unit.analytics.support import api, create_stream, drain_queue, live_stream, sqs_event, viewer_token
from tests.unit.conftest import ALICE, BOB, LambdaContext, call, http_event

pytestmark = pytest.mark.unit


def test_heartbeat_validates_strictly_and_refuses_unknown_streams(aws: dict[str, str]) -> None:
    stream_id = live_stream(aws)
    ok = {"stream_id": stream_id, "viewer_id": "viewer-1", "rendition": "720p", "buffering_ms": 0,
          "viewer_token": viewer_token(stream_id, "viewer-1")}
    assert call(api(), http_event("POST", "/v1/analytics/heartbeat", body=ok)) == (202, {"accepted": True,
                                                                                          "counted": True})
    for bad, status in (({**ok, "viewer_id": "v" * 129}, 422), ({**ok, "stream_id": "x"}, 422),
                        ({**ok, "buffering_ms": -1}, 422), ({**ok, "stream_id": "st_bbbbbbbbbbbbbbbb"}, 404),
                        ({**ok, "surprise": True}, 422)):
        assert call(api(), http_event("POST", "/v1/analytics/heartbeat", body=bad))[0] == status, bad
    assert len(drain_queue(aws["HEARTBEAT_QUEUE_URL"])) == 1


def test_seven_viewers_show_up_as_viewer_count_and_analytics(aws: dict[str, str]) -> None:
    from analytics.consumer_handler import lambda_handler as consumer
    from metadata.handler import lambda_handler as streams_api

    stream_id = live_stream(aws)
    for i in range(7):
        viewer = f"viewer-{i}"
        body = {"stream_id": stream_id, "viewer_id": viewer, "viewer_token": viewer_token(stream_id, viewer)}
        assert call(api(), http_event("POST", "/v1/analytics/heartbeat", body=body)) == (202, {"accepted": True,
                                                                                                "counted": True})
    heartbeats = drain_queue(aws["HEARTBEAT_QUEUE_URL"])
    assert consumer(sqs_event(heartbeats), LambdaContext()) == {"batchItemFailures": []}
    # The figures land in the last heartbeat's 10 s bucket, whichever side of a bucket boundary the test runs on.
    last_heartbeat = max(json.loads(body)["at"] for body in heartbeats)
    consumer({"detail-type": "Ingest Health", "source": "streamforge.media", "detail": {
        "stream_id": stream_id, "session_id": "ses_1", "seq": 3,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(last_heartbeat)),
        "bitrate_kbps": 2500, "fps": 30, "width": 1280, "height": 720, "keyframe_interval_s": 2,
        "video_codec": "hevc", "audio_codec": "<b>aac</b>"}}, LambdaContext())

    assert call(streams_api, http_event("GET", f"/v1/streams/{stream_id}"))[1]["viewer_count"] == 7
    status, figures = call(api(), http_event("GET", f"/v1/streams/{stream_id}/analytics", claims=ALICE))
    assert status == 200
    assert (figures["concurrent_viewers"], figures["total_views"]) == (7, 7) and figures["peak_viewers"] >= 7
    assert (figures["ingest"]["bitrate_kbps"], figures["ingest"]["height"]) == (2500, 720)
    assert (figures["ingest"]["video_codec"], figures["ingest"]["audio_codec"]) == ("hevc", None)  # not a codec name
    assert figures["timeline"][-1]["viewers"] == 7 and figures["timeline"][-1]["bitrate_kbps"] == 2500
    assert call(api(), http_event("GET", f"/v1/streams/{stream_id}/analytics", claims=BOB))[0] == 403
    assert call(api(), http_event("GET", f"/v1/streams/{stream_id}/analytics"))[0] == 401


def test_partial_batch_failure_reports_only_the_bad_records(aws: dict[str, str]) -> None:
    from analytics.consumer_service import process_sqs_batch
    from analytics.repository import DynamoAnalyticsStore

    good, broken = create_stream(), create_stream()
    now = time.time()

    class FailingForOneStream(DynamoAnalyticsStore):
        def apply(self, delta: Any, at: float) -> int | None:
            if delta.stream_id == broken:
                raise RuntimeError("throttled")
            return super().apply(delta, at)

    store = FailingForOneStream(analytics_table=aws["ANALYTICS_TABLE"], streams_table=aws["STREAMS_TABLE"],
                                dynamodb=boto3.client("dynamodb"))
    event = sqs_event([
        {"v": 1, "stream_id": good, "session_id": "none", "viewer_id": "a", "at": now},
        "not json",
        {"v": 1, "stream_id": broken, "session_id": "none", "viewer_id": "b", "at": now},
        {"v": 1, "stream_id": good, "viewer_id": "x" * 500, "at": now},
    ])
    result = process_sqs_batch(event, store, now=now)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == ["m1", "m2", "m3"]
    item = boto3.client("dynamodb").get_item(TableName=aws["STREAMS_TABLE"], Key={"stream_id": {"S": good}})["Item"]
    assert item["viewer_count"]["N"] == "1"


def test_viewer_count_goes_stale_after_60_s_without_heartbeats() -> None:
    from streamforge.streams import effective_viewer_count

    assert effective_viewer_count({"viewer_count": 5, "viewer_count_at": 1000}, now=1059) == 5
    assert effective_viewer_count({"viewer_count": 5, "viewer_count_at": 1000}, now=1061) == 0
    assert effective_viewer_count({}, now=1000) == 0


def test_a_changed_viewer_count_is_announced_once(aws: dict[str, str]) -> None:
    from analytics.consumer_service import process_sqs_batch
    from analytics.repository import DynamoAnalyticsStore

    stream_id, now = create_stream(), time.time()
    store = DynamoAnalyticsStore(analytics_table=aws["ANALYTICS_TABLE"], streams_table=aws["STREAMS_TABLE"],
                                 dynamodb=boto3.client("dynamodb"))
    announced: list[StreamEvent] = []

    class RecordingPublisher:
        def publish(self, event: StreamEvent) -> dict[str, Any]:
            announced.append(event)
            return event.fields()

    two_viewers = sqs_event([{"v": 1, "stream_id": stream_id, "session_id": "none", "viewer_id": v, "at": now}
                             for v in ("a", "b")])
    process_sqs_batch(two_viewers, store, now=now, publisher=RecordingPublisher())
    process_sqs_batch(two_viewers, store, now=now + 1, publisher=RecordingPublisher())
    assert announced == [ViewerCountChanged(stream_id=stream_id, session_id=None, viewer_count=2)]


def test_batches_consumed_concurrently_count_each_others_viewers(aws: dict[str, str]) -> None:
    from analytics.aggregate import Heartbeat, aggregate_stream
    from analytics.repository import DynamoAnalyticsStore

    stream_id, now = create_stream(), time.time()
    store = DynamoAnalyticsStore(analytics_table=aws["ANALYTICS_TABLE"], streams_table=aws["STREAMS_TABLE"],
                                 dynamodb=boto3.client("dynamodb"))
    # Both batches loaded the (empty) prior presence before either wrote, as two concurrent pollers would.
    deltas = [aggregate_stream(stream_id, [Heartbeat(stream_id, "none", viewer, now)], {}, now)
              for viewer in ("a", "b")]
    assert [store.apply(delta, now) for delta in deltas] == [1, 2]
    item = boto3.client("dynamodb").get_item(TableName=aws["STREAMS_TABLE"], Key={"stream_id": {"S": stream_id}})
    assert item["Item"]["viewer_count"]["N"] == "2"
