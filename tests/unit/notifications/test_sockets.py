"""The WebSocket routes: who may connect, what a subscription stores, and how bad messages are answered."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from notifications import handler
from notifications import service as notifications_service
from notifications.repository import DynamoConnectionStore

from tests.unit.notifications.conftest import CONTEXT, REGION, STREAM_ID, Env

pytestmark = pytest.mark.unit


def _event(route_key: str, connection_id: str, **extra: Any) -> dict[str, Any]:
    return {"requestContext": {"routeKey": route_key, "connectionId": connection_id, "requestId": "r-1"}, **extra}


def _keys(env: Env) -> set[tuple[str, str]]:
    return {(item["pk"]["S"], item["sk"]["S"]) for item in env.items()}


def test_connect_with_a_valid_token_stores_the_connection_under_its_user(env: Env) -> None:
    assert env.sockets().connect("c1", {"token": env.token}) == 200

    bob = env.user_ids["bob"]
    assert _keys(env) == {("CONN#c1", "META"), (f"USER#{bob}", "CONN#c1")}
    connection = env.store.get("c1")
    assert connection is not None and connection.identity is not None
    assert connection.identity.username == "bob" and connection.identity.user_id == bob
    assert env.store.connections_of(bob) == ["c1"]


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30.x"])
def test_a_bad_token_is_refused_with_401_through_the_lambda_handler(env: Env, token: str) -> None:
    response = handler.lambda_handler(_event("$connect", "c1", queryStringParameters={"token": token}), CONTEXT,
                                      service=env.sockets())

    assert response == {"statusCode": 401}
    assert env.items() == []


def test_a_valid_token_from_another_user_pool_is_refused(env: Env) -> None:
    # Cognito's GetUser accepts this token; only the issuer check keeps it out.
    cognito = boto3.client("cognito-idp", region_name=REGION)
    other_pool = cognito.create_user_pool(PoolName="someone-else")["UserPool"]["Id"]
    other_client = cognito.create_user_pool_client(UserPoolId=other_pool, ClientName="x")["UserPoolClient"]["ClientId"]
    foreign = Env(ddb=env.ddb, cognito=cognito, pool_id=other_pool, client_id=other_client, token="", api=env.api)
    foreign_token = foreign.sign_in("mallory")
    assert cognito.get_user(AccessToken=foreign_token)["Username"] == "mallory"

    assert env.sockets().connect("c1", {"token": foreign_token}) == 401


def test_anonymous_viewer_may_subscribe_to_an_existing_stream_only(env: Env) -> None:
    sockets = env.sockets()
    assert sockets.connect("anon", None) == 200

    subscribe = json.dumps({"action": "subscribe", "stream_id": STREAM_ID})
    assert sockets.receive("anon", "subscribe", subscribe) == 200
    missing = json.dumps({"action": "subscribe", "stream_id": "st_zzzzzzzzzzzzzzzz"})
    assert sockets.receive("anon", "subscribe", missing) == 404

    assert env.store.subscribers(STREAM_ID) == ["anon"]
    assert env.store.subscribers("st_zzzzzzzzzzzzzzzz") == []
    acknowledged, refused = env.api.messages("anon")
    # The current seq lets the client notice a missed event later.
    assert acknowledged == {"type": "subscribed", "stream_id": STREAM_ID, "seq": 7, "status": "offline",
                            "viewer_count": 0}
    assert refused["type"] == "error" and refused["code"] == "not_found"


@pytest.mark.parametrize(("route_key", "body", "code"), [
    ("subscribe", "{not json", "malformed_json"),
    ("subscribe", "", "malformed_json"),
    ("subscribe", json.dumps({"action": "subscribe"}), "validation_error"),
    ("subscribe", json.dumps({"action": "subscribe", "stream_id": "../../etc"}), "validation_error"),
    ("subscribe", json.dumps({"action": "subscribe", "stream_id": STREAM_ID, "admin": True}), "validation_error"),
    ("unsubscribe", json.dumps({"action": "unsubscribe", "stream_id": 42}), "validation_error"),
    ("$default", json.dumps({"action": "shout", "stream_id": STREAM_ID}), "unknown_action"),
    ("$default", "hello", "malformed_json"),
])
def test_malformed_messages_are_answered_on_the_socket_with_400(env: Env, route_key: str, body: str,
                                                                 code: str) -> None:
    env.sockets().connect("c1", None)

    response = handler.lambda_handler(_event(route_key, "c1", body=body), CONTEXT, service=env.sockets())

    assert response == {"statusCode": 400}
    [message] = env.api.messages("c1")
    assert message["type"] == "error" and message["code"] == code and message["message"]
    assert env.store.subscription_count("c1") == 0


def test_unsubscribe_and_disconnect_remove_what_the_connection_stored(env: Env) -> None:
    sockets = env.sockets()
    sockets.connect("c1", {"token": env.token})
    sockets.connect("c2", None)
    for connection_id in ("c1", "c2"):
        sockets.receive(connection_id, "subscribe", json.dumps({"action": "subscribe", "stream_id": STREAM_ID}))

    sockets.receive("c2", "unsubscribe", json.dumps({"action": "unsubscribe", "stream_id": STREAM_ID}))
    assert env.store.subscribers(STREAM_ID) == ["c1"]
    assert env.api.messages("c2")[-1] == {"type": "unsubscribed", "stream_id": STREAM_ID}

    handler.lambda_handler(_event("$disconnect", "c1"), CONTEXT, service=sockets)
    assert _keys(env) == {("CONN#c2", "META")}


def test_a_connection_may_hold_only_a_bounded_number_of_subscriptions(env: Env,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications_service, "MAX_SUBSCRIPTIONS", 1)
    other = "st_bbbbbbbbbbbbbbbb"
    env.ddb.put_item(TableName="streams", Item={"stream_id": {"S": other}, "owner_id": {"S": "x"},
                                                "status": {"S": "live"}})
    sockets = env.sockets()
    sockets.connect("c1", None)

    assert sockets.receive("c1", "subscribe", json.dumps({"action": "subscribe", "stream_id": STREAM_ID})) == 200
    assert sockets.receive("c1", "subscribe", json.dumps({"action": "subscribe", "stream_id": other})) == 400
    assert env.api.messages("c1")[-1]["code"] == "too_many_subscriptions"
    assert env.store.subscribers(other) == []

def test_expired_items_are_ignored_although_moto_never_deletes_them(env: Env) -> None:
    sockets = env.sockets()
    sockets.connect("old", {"token": env.token})
    sockets.receive("old", "subscribe", json.dumps({"action": "subscribe", "stream_id": STREAM_ID}))

    env.clock[0] += 2 * 60 * 60 + 1

    assert env.store.subscribers(STREAM_ID) == []
    assert env.store.connections_of(env.user_ids["bob"]) == []
    assert env.store.get("old") is None
    assert sockets.receive("old", "subscribe", json.dumps({"action": "subscribe", "stream_id": STREAM_ID})) == 400
    assert env.api.messages("old")[-1]["code"] == "not_connected"



def test_the_default_wiring_reads_the_contract_environment(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"CONNECTIONS_TABLE": "connections", "STREAMS_TABLE": "streams", "USERS_TABLE": "users",
                        "USER_POOL_ID": env.pool_id, "USER_POOL_CLIENT_ID": env.client_id,
                        # Nothing listens here: the reply fails fast and is only logged.
                        "WEBSOCKET_MANAGEMENT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    handler.default_service.cache_clear()
    try:
        connect = _event("$connect", "c1", queryStringParameters={"token": env.token})
        assert handler.lambda_handler(connect, CONTEXT) == {"statusCode": 200}
        subscribe = _event("subscribe", "c1", body=json.dumps({"action": "subscribe", "stream_id": STREAM_ID}))
        assert handler.lambda_handler(subscribe, CONTEXT) == {"statusCode": 200}
        # The real clock, as the default store uses.
        assert DynamoConnectionStore("connections", env.ddb).subscribers(STREAM_ID) == ["c1"]
    finally:
        handler.default_service.cache_clear()
