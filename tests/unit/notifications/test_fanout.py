"""Fan-out of bus events to sockets: shape and seq, followers, gone and broken connections."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from notifications import fanout_handler as fanout
from notifications.sender import Delivery, ManagementApiSender
from streamforge.events import (
    CATALOG,
    SessionRecorded,
    StreamEvent,
    StreamLive,
    StreamOffline,
    StreamUpdated,
    ViewerCountChanged,
)

from tests.unit.notifications.conftest import CONTEXT, OWNER_ID, REGION, STREAM_ID, Env

pytestmark = pytest.mark.unit


SESSION_ID = "ses_20261125T120000abcdef"
LIVE = StreamLive(stream_id=STREAM_ID, session_id=SESSION_ID, started_at="2026-11-25T12:00:00.000Z",
                  playback_url="http://cdn/live/x/master.m3u8", thumbnail_url="http://cdn/thumbs/x/latest.jpg")
OFFLINE = StreamOffline(stream_id=STREAM_ID, session_id=SESSION_ID, ended_at="2026-11-25T13:00:00.000Z",
                        reason="publisher gone")
UPDATED = StreamUpdated(stream_id=STREAM_ID, session_id=SESSION_ID, changes={"title": "New title"})


def _bus_event(event: StreamEvent, **overrides: Any) -> dict[str, Any]:
    """The EventBridge event a rule delivers for `event`, as EventBridgePublisher sends it (seq 8 unless overridden)."""
    return {"version": "0", "id": "evt-1", "source": "streamforge.media", "detail-type": event.DETAIL_TYPE,
            "detail": {**event.fields(), "stream_id": event.stream_id, "session_id": event.session_id, "seq": 8,
                       "at": "2026-11-25T12:00:00.000Z", **overrides}}


def _subscribe(env: Env, connection_id: str, token: str | None = None) -> None:
    sockets = env.sockets()
    sockets.connect(connection_id, {"token": token} if token else None)
    sockets.receive(connection_id, "subscribe", json.dumps({"action": "subscribe", "stream_id": STREAM_ID}))
    env.api.posts.clear()


def test_subscribers_get_the_event_with_its_seq_and_declared_fields_only(env: Env) -> None:
    _subscribe(env, "c1")
    _subscribe(env, "c2")
    env.sockets().connect("elsewhere", None)

    result = fanout.lambda_handler(_bus_event(UPDATED, type="spoofed", owner_secret="x"), CONTEXT,
                                   broadcaster=env.broadcaster())

    assert result == {"sent": 2}
    expected = {"type": "stream.updated", "stream_id": STREAM_ID, "session_id": SESSION_ID,
                "seq": 8, "at": "2026-11-25T12:00:00.000Z", "changes": {"title": "New title"}}
    assert env.api.messages("c1") == [expected]
    assert env.api.messages("c2") == [expected]
    assert env.api.messages("elsewhere") == []


def test_stream_live_reaches_connected_followers_once_and_offline_only_subscribers(env: Env) -> None:
    carol_token = env.sign_in("carol")
    dave_token = env.sign_in("dave")
    env.follow("bob", OWNER_ID)
    env.follow("carol", OWNER_ID)
    env.follow("dave", "sub-someone-else")
    sockets = env.sockets()
    sockets.connect("bob-phone", {"token": env.token})
    sockets.connect("bob-laptop", {"token": env.token})
    _subscribe(env, "carol-tab", carol_token)  # a follower who also subscribed: one copy, not two
    sockets.connect("dave-tab", {"token": dave_token})  # follows someone else

    live = fanout.lambda_handler(_bus_event(LIVE), CONTEXT, broadcaster=env.broadcaster())

    assert live == {"sent": 3}
    for connection_id in ("bob-phone", "bob-laptop", "carol-tab"):
        [message] = env.api.messages(connection_id)
        assert message["type"] == "stream.live" and message["seq"] == 8
    assert env.api.messages("dave-tab") == []

    env.api.posts.clear()
    offline = fanout.lambda_handler(_bus_event(OFFLINE, seq=9), CONTEXT, broadcaster=env.broadcaster())
    assert offline == {"sent": 1}
    assert env.api.messages("carol-tab")[0]["type"] == "stream.offline"
    assert env.api.messages("carol-tab")[0]["seq"] == 9


def test_a_gone_connection_is_deleted_and_a_broken_one_does_not_stop_the_others(env: Env) -> None:
    for connection_id in ("gone", "broken", "ok-1", "ok-2"):
        _subscribe(env, connection_id)
    env.api.gone.add("gone")
    env.api.broken.add("broken")

    result = fanout.lambda_handler(_bus_event(UPDATED), CONTEXT, broadcaster=env.broadcaster())

    assert result == {"sent": 2, "gone": 1, "failed": 1}
    assert sorted(env.api.posts) == ["ok-1", "ok-2"]
    assert sorted(env.store.subscribers(STREAM_ID)) == ["broken", "ok-1", "ok-2"]
    assert not [item for item in env.items() if "gone" in item["pk"]["S"] + item["sk"]["S"]]

    # Gone means gone: the next event does not try it again.
    env.api.broken.clear()
    assert fanout.lambda_handler(_bus_event(UPDATED, seq=9), CONTEXT, broadcaster=env.broadcaster()) == {
        "sent": 3}


RECORDED = SessionRecorded(stream_id=STREAM_ID, session_id=SESSION_ID, started_at="2026-11-25T12:00:00.000Z",
                           ended_at="2026-11-25T13:00:00.000Z", duration_s=3600.0, vod_url=None)


@pytest.mark.parametrize("event", [
    _bus_event(RECORDED),  # not pushed to clients
    {**_bus_event(UPDATED), "detail-type": "Something Else"},
    _bus_event(UPDATED, seq="not-a-number"),
    _bus_event(UPDATED, stream_id=None),
    {**_bus_event(UPDATED), "detail": {k: v for k, v in _bus_event(UPDATED)["detail"].items() if k != "changes"}},
])
def test_unknown_or_malformed_events_are_dropped_without_raising(env: Env, event: dict[str, Any]) -> None:
    _subscribe(env, "c1")

    assert fanout.lambda_handler(event, CONTEXT, broadcaster=env.broadcaster()) == {}
    assert env.api.posts == {}


def test_the_real_management_client_410_is_recognised_as_gone() -> None:
    client = boto3.client("apigatewaymanagementapi", region_name=REGION, endpoint_url="http://127.0.0.1:9",
                          aws_access_key_id="x", aws_secret_access_key="x")
    sender = ManagementApiSender(client)
    with Stubber(client) as stub:
        stub.add_client_error("post_to_connection", service_error_code="GoneException", http_status_code=410)
        stub.add_client_error("post_to_connection", service_error_code="LimitExceededException",
                              http_status_code=429)
        stub.add_response("post_to_connection", {}, {"ConnectionId": "c1", "Data": b'{"type":"x"}'})

        assert sender.send("c1", {"type": "x"}) is Delivery.GONE
        assert sender.send("c1", {"type": "x"}) is Delivery.FAILED
        assert sender.send("c1", {"type": "x"}) is Delivery.SENT


def test_a_viewer_count_change_is_pushed_as_viewers(env: Env) -> None:
    _subscribe(env, "c1")
    count = ViewerCountChanged(stream_id=STREAM_ID, session_id=SESSION_ID, viewer_count=7)
    fanout.lambda_handler(_bus_event(count), CONTEXT, broadcaster=env.broadcaster())
    fanout.lambda_handler(_bus_event(UPDATED, seq=9), CONTEXT, broadcaster=env.broadcaster())
    assert env.api.messages("c1") == [
        {"type": "viewers", "stream_id": STREAM_ID, "session_id": SESSION_ID, "seq": 8,
         "at": "2026-11-25T12:00:00.000Z", "viewer_count": 7},
        {"type": "stream.updated", "stream_id": STREAM_ID, "session_id": SESSION_ID, "seq": 9,
         "at": "2026-11-25T12:00:00.000Z", "changes": {"title": "New title"}},
    ]


@pytest.mark.parametrize("kind", [kind for kind in CATALOG if kind.MESSAGE_TYPE is not None],
                         ids=lambda kind: kind.DETAIL_TYPE)
def test_every_catalog_event_with_a_websocket_type_is_pushed_as_that_type(env: Env, kind: type[StreamEvent]) -> None:
    """The fan-out's half of the catalog acceptance; tests/infra checks the rules route the same detail-types."""
    _subscribe(env, "c1")
    declared = {name: f"value of {name}" for name in kind.field_names()}
    event = kind(stream_id=STREAM_ID, session_id=SESSION_ID, **declared)

    assert fanout.lambda_handler(_bus_event(event), CONTEXT, broadcaster=env.broadcaster()) == {"sent": 1}
    [message] = env.api.messages("c1")
    assert message == {"type": kind.MESSAGE_TYPE, "stream_id": STREAM_ID, "session_id": SESSION_ID, "seq": 8,
                       "at": "2026-11-25T12:00:00.000Z", **declared}
