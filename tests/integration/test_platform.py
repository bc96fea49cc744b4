"""Issue 2's slice through the local platform: gateway, JWT authorizer, emulator, handlers."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import boto3
import jwt
import pytest
from moto.utilities.utils import load_resource

from tests.support.http import call
from tests.support.platform import PlatformThread
from tests.support.users import create_stream, sign_up_and_log_in

pytestmark = pytest.mark.integration


def emulator_client(platform: PlatformThread, service: str) -> Any:
    return boto3.client(service, endpoint_url=platform.urls["emulator"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def template_table_names(platform: PlatformThread) -> set[str]:
    template = platform.platform.template
    return {template.resolved[lid].ref for lid, _ in template.of_type("AWS::DynamoDB::Table")}


def test_health_reports_every_component(api_platform: PlatformThread) -> None:
    reply = call("GET", f"{api_platform.urls['api']}/health")
    assert reply.status == 200
    body = reply.json
    assert body["status"] == "ok"
    assert {"emulator", "http_api", "websocket", "cdn", "dashboard", "functions"} <= set(body["components"])
    assert len(body["components"]["functions"]) >= 4
    assert set(body["components"]["functions"].values()) == {"ok"}


def test_emulator_holds_every_table_of_the_template(api_platform: PlatformThread) -> None:
    dynamodb = emulator_client(api_platform, "dynamodb")
    expected = template_table_names(api_platform)
    assert len(expected) >= 5
    assert expected <= set(dynamodb.list_tables()["TableNames"])
    streams = next(n for n in expected if "Streams" in n and "Keys" not in n)
    indexes = {i["IndexName"] for i in dynamodb.describe_table(TableName=streams)["Table"]["GlobalSecondaryIndexes"]}
    assert {"by_status", "by_owner"} <= indexes


def test_signup_login_create_and_get_stream_keeps_the_key_secret(api_platform: PlatformThread) -> None:
    api = api_platform.urls["api"]
    user = sign_up_and_log_in(api)
    stream = create_stream(api, user, "first light")
    key = stream["ingest"]["stream_key"]
    assert stream["status"] == "offline"
    assert stream["ingest"]["rtmp_url"] == api_platform.urls["rtmp"]
    assert stream["playback_url"] == f"{api_platform.urls['cdn']}/live/{stream['id']}/master.m3u8"

    public = call("GET", f"{api}/v1/streams/{stream['id']}")
    assert public.status == 200 and public.json["title"] == "first light"
    assert key not in public.raw.decode()

    # Only the hash is stored: no attribute of any key item holds the key itself.
    dynamodb = emulator_client(api_platform, "dynamodb")
    keys_table = next(n for n in template_table_names(api_platform) if "StreamKeys" in n)
    items = dynamodb.scan(TableName=keys_table)["Items"]
    assert key not in json.dumps(items)
    assert hashlib.sha256(key.encode()).hexdigest() in {i["key_hash"]["S"] for i in items}


def test_listing_live_streams_excludes_offline_ones(api_platform: PlatformThread) -> None:
    api = api_platform.urls["api"]
    stream = create_stream(api, sign_up_and_log_in(api), "not live yet")
    reply = call("GET", f"{api}/v1/streams?status=live")
    assert reply.status == 200
    assert "items" in reply.json and "next_cursor" in reply.json
    assert stream["id"] not in {s["id"] for s in reply.json["items"]}
    offline = call("GET", f"{api}/v1/streams?status=offline&limit=100").json["items"]
    assert stream["id"] in {s["id"] for s in offline}


def forged_token(platform: PlatformThread, **claims: Any) -> str:
    """A token signed with the emulator's own Cognito key, so only the claims can make it wrong."""
    template = platform.platform.template
    pool_id = next(template.resolved[lid].ref for lid, _ in template.of_type("AWS::Cognito::UserPool"))
    client_id = next(template.resolved[lid].ref for lid, _ in template.of_type("AWS::Cognito::UserPoolClient"))
    now = int(time.time())
    body = {"sub": "forged", "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}",
            "client_id": client_id, "token_use": "access", "username": "forged", "iat": now, "exp": now + 600,
            **claims}
    key = jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode(body, key.key, algorithm="RS256", headers={"kid": key.key_id})


@pytest.mark.parametrize("case", ["missing", "tampered", "expired", "wrong_issuer", "wrong_client", "garbage"])
def test_protected_routes_refuse_bad_tokens_with_401(api_platform: PlatformThread, case: str) -> None:
    api = api_platform.urls["api"]
    user = sign_up_and_log_in(api)
    tokens = {
        "missing": None,
        "tampered": user.token[:-4] + ("AAAA" if not user.token.endswith("AAAA") else "BBBB"),
        "expired": forged_token(api_platform, exp=int(time.time()) - 10),
        "wrong_issuer": forged_token(api_platform, iss="https://cognito-idp.us-east-1.amazonaws.com/other"),
        "wrong_client": forged_token(api_platform, client_id="not-our-client"),
        "garbage": "not.a.jwt",
    }
    reply = call("POST", f"{api}/v1/streams", {"title": "x"}, token=tokens[case])
    # The JWT authorizer's own answer, byte for byte as AWS's HTTP API gives it (docs/api.md): no function ran.
    assert (reply.status, reply.raw) == (401, b'{"message":"Unauthorized"}')
    assert reply.headers["Content-Type"].startswith("application/json")
    challenge = reply.headers.get("www-authenticate")
    if case == "missing":
        assert challenge is None
    else:
        assert challenge is not None
        assert challenge.startswith('Bearer scope="" error="invalid_token" error_description="')


def test_a_well_signed_token_is_accepted_and_reaches_the_handler(api_platform: PlatformThread) -> None:
    """The control for the refusals above: the same forging, with nothing wrong, passes the authorizer."""
    reply = call("POST", f"{api_platform.urls['api']}/v1/streams", {"title": "x"},
                 token=forged_token(api_platform))
    assert reply.status == 201, reply.raw
    assert reply.json["title"] == "x" and reply.json["status"] == "offline"


def test_handler_errors_have_one_shape_and_the_gateways_own_answers_are_aws_shaped(
        api_platform: PlatformThread) -> None:
    api = api_platform.urls["api"]
    user = sign_up_and_log_in(api)
    malformed = call("POST", f"{api}/v1/streams", raw_body=b'{"title": ', token=user.token)
    assert malformed.status == 400
    missing = call("GET", f"{api}/v1/streams/st_{'a' * 16}")
    assert missing.status == 404
    for reply in (malformed, missing):
        assert set(reply.json) == {"error"}
        assert set(reply.json["error"]) == {"code", "message"}
    # No route matches: the HTTP API answers itself, as AWS does, before any function.
    no_route = call("GET", f"{api}/v2/nothing")
    assert (no_route.status, no_route.raw) == (404, b'{"message":"Not Found"}')


def test_cors_preflight_is_answered_from_the_template(api_platform: PlatformThread) -> None:
    reply = call("OPTIONS", f"{api_platform.urls['api']}/v1/streams",
                 headers={"Origin": "http://127.0.0.1:3000", "Access-Control-Request-Method": "POST"})
    assert reply.status == 204
    assert reply.headers.get("Access-Control-Allow-Origin") in ("*", "http://127.0.0.1:3000")
