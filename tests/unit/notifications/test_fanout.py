"""Fan-out of bus events to sockets: shape and seq, followers, gone and broken connections."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from notifications import fanout
from notifications.sender import Delivery, ManagementApiSender

from tests.unit.notifications.conftest import CONTEXT, OWNER_ID, REGION, STREAM_ID, Env

pytestmark = pytest.mark.unit


def _bus_event(detail_type: str, **detail: Any) -> dict[str, Any]:
    return {"version": "0", "id": "evt-1", "source": "streamforge.media", "detail-type": detail_type,
            "detail": {"stream_id": STREAM_ID, "session_id": "ses_20261125T120000abcdef", "seq": 8,
                       "at": "2026-11-25T12:00:00.000Z", **detail}}


def _subscribe(env: Env, connection_id: str, token: str | None = None) -> None:
    sockets = env.sockets()
    sockets.connect(connection_id, {"token": token} if token else None)
    sockets.receive(connection_id, "subscribe", json.dumps({"action": "subscribe", "stream_id": STREAM_ID}))
    env.api.posts.clear()


def test_subscribers_get_the_event_with_its_seq_and_fields_passed_through(env: Env) -> None:
    _subscribe(env, "c1")
    _subscribe(env, "c2")
    env.sockets().connect("elsewhere", None)

    result = fanout.lambda_handler(_bus_event("Stream Updated", title="New title", type="spoofed"), CONTEXT,
                                   broadcaster=env.broadcaster())

    assert result == {"sent": 2}
    expected = {"type": "stream.updated", "stream_id": STREAM_ID, "session_id": "ses_20261125T120000abcdef",
                "seq": 8, "at": "2026-11-25T12:00:00.000Z", "title": "New title"}
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

    live = fanout.lambda_handler(_bus_event("Stream Live", playback_url="http://cdn/live/x/master.m3u8"), CONTEXT,
                                 broadcaster=env.broadcaster())

    assert live == {"sent": 3}
    for connection_id in ("bob-phone", "bob-laptop", "carol-tab"):
        [message] = env.api.messages(connection_id)
        assert message["type"] == "stream.live" and message["seq"] == 8
    assert env.api.messages("dave-tab") == []

    env.api.posts.clear()
    offline = fanout.lambda_handler(_bus_event("Stream Offline", seq=9), CONTEXT, broadcaster=env.broadcaster())
    assert offline == {"sent": 1}
    assert env.api.messages("carol-tab")[0]["type"] == "stream.offline"
    assert env.api.messages("carol-tab")[0]["seq"] == 9


def test_a_gone_connection_is_deleted_and_a_broken_one_does_not_stop_the_others(env: Env) -> None:
    for connection_id in ("gone", "broken", "ok-1", "ok-2"):
        _subscribe(env, connection_id)
    env.api.gone.add("gone")
    env.api.broken.add("broken")

    result = fanout.lambda_handler(_bus_event("Stream Updated"), CONTEXT, broadcaster=env.broadcaster())

    assert result == {"sent": 2, "gone": 1, "failed": 1}
    assert sorted(env.api.posts) == ["ok-1", "ok-2"]
    assert sorted(env.store.subscribers(STREAM_ID)) == ["broken", "ok-1", "ok-2"]
    assert not [item for item in env.items() if "gone" in item["pk"]["S"] + item["sk"]["S"]]

    # Gone means gone: the next event does not try it again.
    env.api.broken.clear()
    assert fanout.lambda_handler(_bus_event("Stream Updated", seq=9), CONTEXT, broadcaster=env.broadcaster()) == {
        "sent": 3}


@pytest.mark.parametrize(("detail_type", "detail"), [
    ("Session Recorded", {}),
    ("Stream Updated", {"seq": "not-a-number"}),
    ("Stream Updated", {"stream_id": None}),
])
def test_unknown_or_malformed_events_are_dropped_without_raising(env: Env, detail_type: str,
                                                                 detail: dict[str, Any]) -> None:
    _subscribe(env, "c1")

    assert fanout.lambda_handler(_bus_event(detail_type, **detail), CONTEXT, broadcaster=env.broadcaster()) == {}
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


def test_an_update_of_only_the_viewer_count_is_pushed_as_viewers(env: Env) -> None:
    _subscribe(env, "c1")
    fanout.lambda_handler(_bus_event("Stream Updated", viewer_count=7, changed=["viewer_count"]), CONTEXT,
                          broadcaster=env.broadcaster())
    fanout.lambda_handler(_bus_event("Stream Updated", title="t", changed=["title", "viewer_count"]), CONTEXT,
                          broadcaster=env.broadcaster())
    kinds = [(m["type"], m.get("viewer_count")) for m in env.api.messages("c1")]
    assert kinds == [("viewers", 7), ("stream.updated", None)]
