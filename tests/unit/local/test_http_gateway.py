import asyncio
import base64
import json
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from local.functions import FunctionRuntime
from local.http_gateway import HttpApi, HttpGateway, Route, TokenBucket, build_event, to_response
from local.jwt_authorizer import JwtAuthorizer

pytestmark = pytest.mark.unit


def route(key: str) -> Route:
    method, _, path = key.partition(" ")
    return Route(method="ANY" if key == "$default" else method, path=None if key == "$default" else path,
                 function_id="Fn", authorizer=None, scopes=[])


def best(routes: list[Route], method: str, path: str) -> str | None:
    for r in sorted(routes, key=lambda r: r.specificity, reverse=True):
        if r.match(method, path) is not None:
            return r.route_key
    return None


def test_literal_beats_parameter_beats_greedy_beats_default() -> None:
    routes = [route("$default"), route("ANY /v1/{proxy+}"), route("GET /v1/streams/{id}"),
              route("GET /v1/streams/live")]
    assert best(routes, "GET", "/v1/streams/live") == "GET /v1/streams/live"
    assert best(routes, "GET", "/v1/streams/st_1") == "GET /v1/streams/{id}"
    assert best(routes, "POST", "/v1/streams/st_1") == "ANY /v1/{proxy+}"
    assert best(routes, "GET", "/other") == "$default"


def test_path_parameters_are_extracted_and_do_not_cross_slashes() -> None:
    r = route("DELETE /v1/streams/{id}/keys/{key_id}")
    assert r.match("DELETE", "/v1/streams/st_1/keys/key_2") == {"id": "st_1", "key_id": "key_2"}
    assert r.match("DELETE", "/v1/streams/st_1/x/keys/key_2") is None
    assert r.match("GET", "/v1/streams/st_1/keys/key_2") is None


def test_token_bucket_allows_the_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=0.0, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_event_is_payload_v2_with_claims_as_strings() -> None:
    request = make_mocked_request("POST", "/v1/streams/st_1?a=1&a=2&b=x",
                                  headers={"Content-Type": "application/json", "X-Trace": "t",
                                           "Cookie": "c1=1; c2=2"})
    request._transport_peername = ("10.0.0.1", 1)
    event = build_event(request, b'{"title": "x"}', route("POST /v1/streams/{id}"), {"id": "st_1"},
                        {"sub": "u1", "scope": "a b", "groups": ["g1", "g2"]}, "HttpApi")
    assert event["version"] == "2.0" and event["routeKey"] == "POST /v1/streams/{id}"
    assert event["headers"]["x-trace"] == "t" and "cookie" not in event["headers"]
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["pathParameters"] == {"id": "st_1"}
    assert event["body"] == '{"title": "x"}' and event["isBase64Encoded"] is False
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims == {"sub": "u1", "scope": "a b", "groups": "[g1 g2]"}
    assert event["requestContext"]["http"]["method"] == "POST"


def test_binary_bodies_are_base64_encoded() -> None:
    request = make_mocked_request("PUT", "/x", headers={"Content-Type": "image/jpeg"})
    event = build_event(request, b"\xff\xd8", route("PUT /x"), {}, None, "HttpApi")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xd8"
    assert "authorizer" not in event["requestContext"]


@pytest.mark.parametrize(("result", "status", "body"), [
    ({"statusCode": 201, "headers": {"X-A": "1"}, "body": '{"id": 1}'}, 201, {"id": 1}),
    ({"id": 1}, 200, {"id": 1}),
    ({"statusCode": 204}, 204, None),
])
def test_function_results_become_responses(result: dict[str, Any], status: int, body: Any) -> None:
    response = to_response(result)
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    raw = response.body
    assert (json.loads(raw) if raw else None) == body  # type: ignore[arg-type]


def test_base64_results_are_decoded() -> None:
    response = to_response({"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b"\x00\x01").decode(),
                            "headers": {"Content-Type": "application/octet-stream"}, "cookies": ["a=1", "b=2"]})
    assert response.body == b"\x00\x01"
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]


class NoFunctions:
    """A runtime no request may reach: every case below is answered by the gateway itself."""

    async def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        raise AssertionError(f"{function_id} was invoked")


def gateway_reply(api: HttpApi, method: str, path: str, headers: dict[str, str] | None = None) -> web.Response:
    gateway = HttpGateway(api, cast(FunctionRuntime, NoFunctions()))
    response = asyncio.run(gateway.handle(make_mocked_request(method, path, headers=headers or {})))
    assert isinstance(response, web.Response)
    return response


def no_keys(url: str) -> dict[str, Any]:
    return {"keys": []}


@pytest.mark.parametrize(("case", "status", "body"), [
    ("no_route", 404, b'{"message":"Not Found"}'),
    ("throttled", 429, b'{"message":"Too Many Requests"}'),
    ("no_token", 401, b'{"message":"Unauthorized"}'),
    ("bad_token", 401, b'{"message":"Unauthorized"}'),
])
def test_the_gateways_own_answers_are_aws_shaped(case: str, status: int, body: bytes) -> None:
    open_route, private_route = route("GET /v1/streams"), route("POST /v1/streams")
    private_route.authorizer = JwtAuthorizer(issuer="https://issuer.test", audiences=["web"],
                                             jwks_url="https://issuer.test/jwks.json", fetch=no_keys)
    api = HttpApi(api_id="HttpApi", routes=[private_route, open_route], cors={},
                  throttle=TokenBucket(rate=0.0, burst=0) if case == "throttled" else None)
    method, path, headers = {
        "no_route": ("GET", "/v2/nothing", None),
        "throttled": ("GET", "/v1/streams", None),
        "no_token": ("POST", "/v1/streams", None),
        "bad_token": ("POST", "/v1/streams", {"Authorization": "Bearer not.a.jwt"}),
    }[case]
    response = gateway_reply(api, method, path, headers)
    assert (response.status, response.body) == (status, body)
    assert response.content_type == "application/json"
    challenge = response.headers.get("www-authenticate")
    if case == "bad_token":  # AWS names the refused token's fault; a request without a token gets no challenge
        assert challenge is not None
        assert challenge.startswith('Bearer scope="" error="invalid_token" error_description="')
    else:
        assert challenge is None
