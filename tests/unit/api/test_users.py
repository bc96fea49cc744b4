"""Auth and users API through the real handler, against in-process moto Cognito and DynamoDB."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.unit.conftest import call, claims_for, http_event

pytestmark = pytest.mark.unit
PASSWORD = "Str0ng!Passw0rd"


def handler() -> Any:
    from users.handler import lambda_handler

    return lambda_handler


def signup(username: str, email: str | None = None, password: str = PASSWORD) -> tuple[int, Any]:
    return call(handler(), http_event("POST", "/v1/auth/signup", body={
        "email": email or f"{username}@example.com", "username": username, "password": password}))


def test_signup_then_login_by_username_or_email_then_refresh(aws: dict[str, str]) -> None:
    status, user = signup("Alice")
    assert status == 201 and user["username"] == "alice" and user["user_id"]
    for identifier in ({"username": "alice"}, {"email": "ALICE@example.com"}):
        status, tokens = call(handler(), http_event("POST", "/v1/auth/login",
                                                    body={**identifier, "password": PASSWORD}))
        assert status == 200 and tokens["access_token"] and tokens["expires_in"] > 0
    status, refreshed = call(handler(), http_event("POST", "/v1/auth/refresh",
                                                   body={"refresh_token": tokens["refresh_token"]}))
    assert status == 200 and refreshed["access_token"]


def test_taken_username_and_email_are_409(aws: dict[str, str]) -> None:
    assert signup("alice")[0] == 201
    status, body = signup("alice", email="other@example.com")
    assert (status, body["error"]["code"]) == (409, "username_taken")
    status, body = signup("alice2", email="alice@example.com")
    assert (status, body["error"]["code"]) == (409, "email_taken")
    # The failed sign-up released its email claim: the address is still usable.
    assert signup("carol", email="other@example.com")[0] == 201


def test_weak_password_and_bad_fields(aws: dict[str, str]) -> None:
    status, body = signup("alice", password="short")
    assert (status, body["error"]["code"]) == (422, "validation_error")
    assert "password" in body["error"]["message"] and "short" not in body["error"]["message"]
    assert signup("a!", email="x@example.com")[0] == 422
    assert call(handler(), http_event("POST", "/v1/auth/login", body={"password": "x"}))[0] == 422


def test_wrong_credentials_401_and_unconfirmed_403(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import users.handler

    signup("alice")
    for body in ({"username": "alice", "password": "Wrong!Passw0rd"}, {"email": "nobody@x.io", "password": "p"}):
        status, error = call(handler(), http_event("POST", "/v1/auth/login", body=body))
        assert (status, error["error"]["code"]) == (401, "invalid_credentials")
    monkeypatch.setenv("AUTO_CONFIRM_SIGNUP", "false")
    users.handler.service.cache_clear()
    signup("dave")
    status, error = call(handler(), http_event("POST", "/v1/auth/login",
                                               body={"username": "dave", "password": PASSWORD}))
    assert (status, error["error"]["code"]) == (403, "user_not_confirmed")
    status, error = call(handler(), http_event("POST", "/v1/auth/refresh", body={"refresh_token": "nope"}))
    assert status == 401


def test_profile_me_read_update_and_limits(aws: dict[str, str]) -> None:
    _, user = signup("alice")
    me = claims_for(user["user_id"], "alice")
    status, profile = call(handler(), http_event("GET", "/v1/users/me", claims=me))
    assert status == 200 and profile["email"] == "alice@example.com" and profile["follower_count"] == 0
    status, profile = call(handler(), http_event("PATCH", "/v1/users/me", claims=me,
                                                 body={"display_name": "Alice A.", "bio": "hi"}))
    assert status == 200 and (profile["display_name"], profile["bio"]) == ("Alice A.", "hi")
    assert call(handler(), http_event("PATCH", "/v1/users/me", claims=me, body={"bio": "x" * 501}))[0] == 422
    assert call(handler(), http_event("GET", "/v1/users/me"))[0] == 401
    status, public = call(handler(), http_event("GET", "/v1/users/Alice"))
    assert status == 200 and "email" not in public and public["live_stream"] is None


def test_follow_is_idempotent_counts_never_drift_and_self_follow_refused(aws: dict[str, str]) -> None:
    _, alice = signup("alice")
    _, bob = signup("bob")
    bob_claims = claims_for(bob["user_id"], "bob")
    for _ in range(2):
        status, state = call(handler(), http_event("PUT", "/v1/users/alice/follow", claims=bob_claims))
        assert (status, state["following"], state["follower_count"]) == (200, True, 1)
    assert call(handler(), http_event("GET", "/v1/users/bob"))[1]["following_count"] == 1
    for _ in range(2):
        status, state = call(handler(), http_event("DELETE", "/v1/users/alice/follow", claims=bob_claims))
        assert (status, state["follower_count"]) == (200, 0)
    status, error = call(handler(), http_event("PUT", "/v1/users/bob/follow", claims=bob_claims))
    assert (status, error["error"]["code"]) == (409, "cannot_follow_self")
    assert call(handler(), http_event("PUT", "/v1/users/nobody/follow", claims=bob_claims))[0] == 404
    assert call(handler(), http_event("PUT", "/v1/users/alice/follow"))[0] == 401
    assert alice["user_id"] != bob["user_id"]


def test_public_profile_shows_the_live_stream(aws: dict[str, str]) -> None:
    _, alice = signup("alice")
    boto3.client("dynamodb").put_item(TableName=aws["STREAMS_TABLE"], Item={
        "stream_id": {"S": "st_aaaaaaaaaaaaaaaa"}, "owner_id": {"S": alice["user_id"]}, "title": {"S": "Live now"},
        "status": {"S": "live"}, "created_at": {"S": "2026-11-25T10:00:00.000Z"},
        "started_at": {"S": "2026-11-25T10:01:00.000Z"}})
    status, public = call(handler(), http_event("GET", "/v1/users/alice"))
    assert status == 200 and public["live_stream"]["id"] == "st_aaaaaaaaaaaaaaaa"
    assert public["live_stream"]["playback_url"] == "http://cdn.test/live/st_aaaaaaaaaaaaaaaa/master.m3u8"
