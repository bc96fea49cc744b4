"""Viewer sessions: tokens that vouch for one viewer of one stream, and heartbeats that count only with one."""

from __future__ import annotations

import json
import time

import boto3
import jwt
import pytest
from analytics import viewer_tokens
from analytics.viewer_tokens import ISSUER, TokenRefused

from tests.unit.analytics.support import api, create_stream, drain_queue, live_stream, viewer_token
from tests.unit.conftest import call, http_event

pytestmark = pytest.mark.unit
KEY = b"k" * 64
STREAM, OTHER_STREAM = "st_aaaaaaaaaaaaaaaa", "st_bbbbbbbbbbbbbbbb"
NOW = 1_800_000_000


def test_a_token_is_a_standard_hs256_jwt_for_its_stream_and_viewer() -> None:
    token = viewer_tokens.issue(KEY, stream_id=STREAM, viewer_id="v1", now=NOW, ttl_s=120)
    claims = jwt.decode(token, KEY, algorithms=["HS256"], audience=STREAM, issuer=ISSUER,
                        options={"verify_exp": False, "verify_iat": False})
    assert (claims["sub"], claims["exp"] - claims["iat"]) == ("v1", 120)
    verified = viewer_tokens.verify(KEY, token, now=NOW + 119)
    assert (verified.stream_id, verified.viewer_id, verified.expires_at) == (STREAM, "v1", NOW + 120)


def _pyjwt(claims: dict[str, object], key: bytes = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode({"iss": ISSUER, "aud": STREAM, "sub": "v1", "iat": NOW, "exp": NOW + 60, **claims}, key,
                      algorithm=algorithm)


@pytest.mark.parametrize(("token", "reason"), [
    (None, "missing"),
    ("", "missing"),
    (_pyjwt({}, key=b"another key of sixty-four bytes, as long as the real one is.."), "invalid"),
    (_pyjwt({}, algorithm="HS512"), "invalid"),  # a header this module never writes
    (jwt.encode({"iss": ISSUER, "aud": STREAM, "sub": "v1", "exp": NOW + 60}, "", algorithm="none"), "invalid"),
    (_pyjwt({"iss": "someone-else"}), "invalid"),
    (_pyjwt({"exp": str(NOW + 60)}), "invalid"),
    (_pyjwt({"exp": NOW}), "expired"),
    (_pyjwt({}) + "x", "invalid"),
    ("a.b", "invalid"),
    ("x" * 2000, "invalid"),
])
def test_tokens_that_vouch_for_nothing(token: str | None, reason: str) -> None:
    with pytest.raises(TokenRefused) as refused:
        viewer_tokens.verify(KEY, token, now=NOW)
    assert refused.value.reason == reason


def test_a_payload_changed_after_signing_is_refused() -> None:
    header, _, signature = viewer_tokens.issue(KEY, stream_id=STREAM, viewer_id="v1", now=NOW, ttl_s=60).split(".")
    forged = _pyjwt({"aud": OTHER_STREAM}).split(".")[1]
    with pytest.raises(TokenRefused, match="invalid"):
        viewer_tokens.verify(KEY, f"{header}.{forged}.{signature}", now=NOW)


def test_playback_needs_a_live_stream_and_keeps_the_viewer_id(aws: dict[str, str]) -> None:
    offline = create_stream()
    status, body = call(api(), http_event("POST", f"/v1/streams/{offline}/playback"))
    assert (status, body["error"]["code"]) == (409, "stream_not_live")
    status, body = call(api(), http_event("POST", "/v1/streams/st_cccccccccccccccc/playback"))
    assert (status, body["error"]["code"]) == (404, "stream_not_found")
    stream_id = live_stream(aws)
    status, session = call(api(), http_event("POST", f"/v1/streams/{stream_id}/playback", body={"viewer_id": "me"}))
    assert status == 201 and session["viewer_id"] == "me" and session["expires_in"] == 120
    assert session["playback_url"] == f"http://cdn.test/live/{stream_id}/master.m3u8"
    status, made = call(api(), http_event("POST", f"/v1/streams/{stream_id}/playback"))
    assert status == 201 and made["viewer_id"].startswith("v_") and made["viewer_id"] != "me"


def test_only_heartbeats_a_token_vouches_for_are_queued_and_refusals_are_a_metric(
        aws: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    stream_id, other = live_stream(aws), live_stream(aws)
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=aws["VIEWER_TOKEN_SECRET_ARN"])["SecretString"]
    expired = viewer_tokens.issue(secret.encode(), stream_id=stream_id, viewer_id="v1", now=int(time.time()) - 121,
                                  ttl_s=120)
    good = viewer_token(stream_id, "v1")
    cases = {"missing": None, "invalid": good[:-2] + "xx", "expired": expired,
             "other_stream": viewer_token(other, "v1"), "other_viewer": viewer_token(stream_id, "v2")}
    capsys.readouterr()
    for token in cases.values():
        body = {"stream_id": stream_id, "viewer_id": "v1", **({"viewer_token": token} if token else {})}
        assert call(api(), http_event("POST", "/v1/analytics/heartbeat", body=body)) == (
            202, {"accepted": True, "counted": False})
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "HeartbeatRefused" in line]
    assert sorted(m["reason"] for m in emitted) == sorted(cases)
    assert drain_queue(aws["HEARTBEAT_QUEUE_URL"]) == []
    body = {"stream_id": stream_id, "viewer_id": "v1", "viewer_token": good}
    assert call(api(), http_event("POST", "/v1/analytics/heartbeat", body=body))[1]["counted"] is True
    (queued,) = drain_queue(aws["HEARTBEAT_QUEUE_URL"])
    assert json.loads(queued)["viewer_id"] == "v1" and good not in queued
