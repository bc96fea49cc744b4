"""The edge's per-client limits through the local gateway, which applies the rate rules of the synthesized edge
stack's web ACL as CloudFront's AWS WAF does: a client past a limit gets the rule's 429, other clients do not.

These tests run a platform of their own with the limits on (the shared one has them off), and call from several
loopback addresses, one per client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.edge import EDGE_STACK_NAME
from tests.support.http import Reply, call
from tests.support.platform import PlatformThread, start_platform
from tests.support.streams import go_live
from tests.support.users import create_stream, sign_up_and_log_in

pytestmark = pytest.mark.integration

CLIENT_A, CLIENT_B, SETUP = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@pytest.fixture(scope="module")
def edge_platform() -> Iterator[PlatformThread]:
    platform = start_platform(with_media=False)
    yield platform
    platform.stop()


def rate_rule(platform: PlatformThread, name: str) -> dict[str, Any]:
    """A rule of the web ACL as synthesized (infra/edge.py, limits from cdk.json's edgeRateLimits)."""
    template = json.loads((platform.platform.config.assembly_dir / f"{EDGE_STACK_NAME}.template.json").read_text())
    (acl,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"]
    (rule,) = [r for r in acl["Rules"] if r["Name"] == name]
    return dict(rule)


def assert_edge_refusal(reply: Reply, rule: dict[str, Any]) -> None:
    """The rule's custom response: its status, its Retry-After, and the API's error shape."""
    response = rule["Action"]["Block"]["CustomResponse"]
    assert reply.status == response["ResponseCode"] == 429, reply.raw
    assert reply.headers["Retry-After"] == next(h["Value"] for h in response["ResponseHeaders"]
                                                if h["Name"] == "Retry-After")
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json["error"]["code"] == "too_many_requests"


def login(api: str, client: str) -> Reply:
    return call("POST", f"{api}/v1/auth/login", {"username": "nobody_here", "password": "Wr0ng!password"},
                client=client)


def test_a_client_past_the_login_limit_gets_429_and_other_clients_do_not(edge_platform: PlatformThread) -> None:
    api = edge_platform.urls["api"]
    rule = rate_rule(edge_platform, "AuthPerClient")
    limit = rule["Statement"]["RateBasedStatement"]["Limit"]
    for attempt in range(limit):
        assert login(api, CLIENT_A).status == 401, f"attempt {attempt + 1} of {limit} was refused"
    assert_edge_refusal(login(api, CLIENT_A), rule)
    assert login(api, CLIENT_B).status == 401
    # The rule covers /v1/auth/* only: the same client still reaches the rest of the API.
    assert call("GET", f"{api}/v1/streams", client=CLIENT_A).status == 200


def test_viewer_sessions_are_limited_per_client_and_stream(edge_platform: PlatformThread) -> None:
    api = edge_platform.urls["api"]
    rule = rate_rule(edge_platform, "PlaybackPerClientPerStream")
    limit = rule["Statement"]["RateBasedStatement"]["Limit"]
    owner = sign_up_and_log_in(api, "edge")
    streams = []
    for title in ("first", "second"):
        stream_id = create_stream(api, owner, title)["id"]
        go_live(edge_platform, stream_id)
        streams.append(f"{api}/v1/streams/{stream_id}/playback")
    first, second = streams
    for _ in range(limit):
        assert call("POST", first, client=CLIENT_A).status == 201
    assert_edge_refusal(call("POST", first, client=CLIENT_A), rule)
    assert call("POST", second, client=CLIENT_A).status == 201
    assert call("POST", first, client=CLIENT_B).status == 201
