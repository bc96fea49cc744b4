"""Analytics through the real pipeline: viewer session -> heartbeat API -> SQS -> the platform's event-source poller
-> consumer -> DynamoDB -> `GET /v1/streams/{id}` and the owner's analytics; and `Ingest Health` on the bus -> rule
-> consumer.

The media task is not running here (`api_platform`), so a stream goes live the way the media task makes it live:
the stream item's `status`, `current_session_id` and `started_at` (docs/contracts.md, "Stream").
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from streamforge.api import MAX_BODY_BYTES

from tests.support.http import call
from tests.support.platform import PlatformThread
from tests.support.streams import emulator, go_live, heartbeat, start_viewing
from tests.support.users import SignedInUser, create_stream, sign_up_and_log_in
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

VIEWERS = 7
FOLLOW_S = 15.0  # viewer_count follows heartbeats, and analytics follow Ingest Health, within 15 s


def stream_with(api: str, stream_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The stream as GET answers it, if `done` holds for it."""
    stream: dict[str, Any] = call("GET", f"{api}/v1/streams/{stream_id}").json
    return stream if done(stream) else None


def analytics(api: str, owner: SignedInUser, stream_id: str) -> dict[str, Any]:
    reply = call("GET", f"{api}/v1/streams/{stream_id}/analytics", token=owner.token)
    assert reply.status == 200, reply.raw
    return dict(reply.json)


@pytest.fixture
def live_stream(api_platform: PlatformThread) -> tuple[str, SignedInUser, str, str]:
    api = api_platform.urls["api"]
    owner = sign_up_and_log_in(api, "ana")
    stream_id = create_stream(api, owner, "analytics")["id"]
    return api, owner, stream_id, go_live(api_platform, stream_id)


def test_seven_viewers_heartbeats_become_the_viewer_count_and_analytics(
        live_stream: tuple[str, SignedInUser, str, str]) -> None:
    api, owner, stream_id, _ = live_stream
    assert call("GET", f"{api}/v1/streams/{stream_id}").json["viewer_count"] == 0
    viewers = [start_viewing(api, stream_id, f"viewer-{uuid.uuid4().hex[:12]}") for _ in range(VIEWERS)]
    for viewer in viewers:
        reply = viewer.heartbeat()
        assert (reply.status, reply.json["counted"]) == (202, True), reply.raw
    # A viewer's second heartbeat is the same viewer, not an eighth.
    assert viewers[0].heartbeat().status == 202
    sent = time.monotonic()

    stream = wait_for(lambda: stream_with(api, stream_id, lambda s: s["viewer_count"] >= VIEWERS), FOLLOW_S,
                      f"viewer_count to reach {VIEWERS}")
    assert stream["viewer_count"] == VIEWERS, f"viewer_count {stream['viewer_count']} after {FOLLOW_S} s"
    assert time.monotonic() - sent <= FOLLOW_S

    figures = analytics(api, owner, stream_id)
    assert figures["concurrent_viewers"] == VIEWERS
    assert figures["peak_viewers"] >= VIEWERS
    assert figures["total_views"] == VIEWERS
    assert figures["timeline"] and max(p["viewers"] for p in figures["timeline"]) == VIEWERS


def test_ingest_health_on_the_bus_shows_in_the_owners_analytics(
        api_platform: PlatformThread, live_stream: tuple[str, SignedInUser, str, str]) -> None:
    api, owner, stream_id, session_id = live_stream
    figures = {"bitrate_kbps": 2500.0, "fps": 30.0, "width": 1280, "height": 720, "keyframe_interval_s": 2.0}
    detail = {"stream_id": stream_id, "session_id": session_id, "seq": 1,
              "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", **figures}
    result = emulator(api_platform, "events").put_events(Entries=[{
        "Source": "streamforge.media", "DetailType": "Ingest Health", "Detail": json.dumps(detail),
        "EventBusName": api_platform.platform.template.resolved["EventBus"].ref}])
    assert result["FailedEntryCount"] == 0, result

    # The figures an RTMP publisher reports; the others (SRT's packet loss and RTT, say) stay null.
    seen = wait_for(lambda: i if (i := analytics(api, owner, stream_id)["ingest"]).items() >= figures.items() else None,
                    FOLLOW_S, "the reported ingest figures in the analytics")
    assert {name: value for name, value in seen.items() if value is not None} == figures
    timeline = analytics(api, owner, stream_id)["timeline"]
    assert any(p["bitrate_kbps"] == figures["bitrate_kbps"] for p in timeline)


@pytest.mark.parametrize(("viewer_id", "statuses"), [
    ("v" * 129, {422}),  # over the 128-character limit
    ("v" * (MAX_BODY_BYTES + 1), {413}),  # over the API's body limit
    ("not a valid id!", {422}),  # malformed: spaces and punctuation
])
def test_heartbeat_refuses_oversized_and_malformed_viewer_ids(
        live_stream: tuple[str, SignedInUser, str, str], viewer_id: str, statuses: set[int]) -> None:
    api, _, stream_id, _ = live_stream
    reply = heartbeat(api, stream_id, viewer_id, start_viewing(api, stream_id).token)
    assert reply.status in statuses, reply.raw
    assert set(reply.json) == {"error"}
    assert viewer_id not in reply.raw.decode(), "the refusal echoes the input back"


def test_heartbeat_refuses_malformed_json_and_unknown_streams(
        live_stream: tuple[str, SignedInUser, str, str]) -> None:
    api, _, stream_id, _ = live_stream
    malformed = call("POST", f"{api}/v1/analytics/heartbeat", raw_body=b'{"stream_id": "' + stream_id.encode())
    assert malformed.status == 400, malformed.raw
    assert malformed.json["error"]["code"] == "malformed_json"
    unknown = heartbeat(api, "st_" + "a" * 16, "viewer-1")
    assert unknown.status == 404, unknown.raw


def test_refused_heartbeats_never_count(live_stream: tuple[str, SignedInUser, str, str]) -> None:
    """The control for the refusals: after refused heartbeats and one good one, the count is exactly one."""
    api, _, stream_id, _ = live_stream
    viewer = start_viewing(api, stream_id, "the-one-viewer")
    assert heartbeat(api, stream_id, "v" * 129, viewer.token).status == 422
    assert heartbeat(api, stream_id, "bad id", viewer.token).status == 422
    assert viewer.heartbeat().json == {"accepted": True, "counted": True}
    stream = wait_for(lambda: stream_with(api, stream_id, lambda s: s["viewer_count"] >= 1), FOLLOW_S,
                      "the counted viewer")
    assert stream["viewer_count"] == 1
