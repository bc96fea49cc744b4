"""Request bodies through the local gateway: JSON only, a precise 4xx for anything else, and no answer or log line
that repeats what was sent.

The operations that take a body are read from the OpenAPI document the gateway serves, so a new one is covered
(and must be given a sample body here) without further change.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.http import Reply, call
from tests.support.platform import PlatformThread
from tests.support.streams import go_live
from tests.support.users import PASSWORD, SignedInUser, create_stream, sign_up_and_log_in
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=sf-boundary", None]


@dataclass
class World:
    api: str
    user: SignedInUser
    stream_id: str  # live, so a viewer session can start

    def url(self, path: str) -> str:
        return self.api + path.format(id=self.stream_id)


@pytest.fixture(scope="module")
def world(api_platform: PlatformThread) -> World:
    api = api_platform.urls["api"]
    user = sign_up_and_log_in(api, "body")
    stream_id = create_stream(api, user, "bodies")["id"]
    go_live(api_platform, stream_id)
    return World(api, user, stream_id)


def sample_body(method: str, path: str, world: World) -> dict[str, Any]:
    """A body the operation would take as JSON."""
    name = f"b{uuid.uuid4().hex[:10]}"
    return {
        ("POST", "/v1/auth/signup"): {"email": f"{name}@example.com", "username": name, "password": PASSWORD},
        ("POST", "/v1/auth/login"): {"username": world.user.username, "password": PASSWORD},
        ("POST", "/v1/auth/refresh"): {"refresh_token": world.user.tokens["refresh_token"]},
        ("PATCH", "/v1/users/me"): {"display_name": "Bodies"},
        ("POST", "/v1/streams"): {"title": "made by the body tests"},
        ("PATCH", "/v1/streams/{id}"): {"title": "renamed by the body tests"},
        ("POST", "/v1/streams/{id}/keys"): {"name": "body-test"},
        ("POST", "/v1/streams/{id}/playback"): {"viewer_id": name},
        ("POST", "/v1/analytics/heartbeat"): {"stream_id": world.stream_id, "viewer_id": name},
    }[(method, path)]


@dataclass(frozen=True)
class BodyOperation:
    method: str
    path: str
    required: bool  # whether the body is required, or may be left out
    documented: frozenset[int]


def body_operations(world: World) -> list[BodyOperation]:
    document = call("GET", f"{world.api}/v1/openapi.json").json
    return [BodyOperation(method.upper(), path, bool(op["requestBody"].get("required")),
                          frozenset(int(status) for status in op["responses"]))
            for path, ops in document["paths"].items() for method, op in ops.items() if "requestBody" in op]


def send(world: World, op: BodyOperation, raw: bytes, content_type: str | None) -> Reply:
    return call(op.method, world.url(op.path), raw_body=raw, content_type=content_type, token=world.user.token)


def test_every_operation_with_a_body_is_covered(world: World) -> None:
    operations = body_operations(world)
    assert len(operations) >= 9
    for op in operations:
        assert sample_body(op.method, op.path, world)  # a KeyError names an operation without a sample body


@pytest.mark.parametrize("content_type", NOT_JSON, ids=lambda c: str(c).split(";")[0])
def test_a_body_in_any_other_content_type_is_415(world: World, content_type: str | None) -> None:
    for op in body_operations(world):
        reply = send(world, op, json.dumps(sample_body(op.method, op.path, world)).encode(), content_type)
        assert (reply.status, reply.json["error"]["code"]) == (415, "unsupported_media_type"), (op, reply.raw)
        assert 415 in op.documented, op


def test_json_is_taken_with_or_without_a_charset(world: World) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"):
        op = BodyOperation("PATCH", "/v1/streams/{id}", True, frozenset())
        reply = send(world, op, json.dumps({"title": content_type}).encode(), content_type)
        assert (reply.status, reply.json["title"]) == (200, content_type), reply.raw


def test_an_empty_body_is_400_where_one_is_needed_and_none_is_fine_where_it_is_optional(world: World) -> None:
    for op in body_operations(world):
        reply = send(world, op, b"", "application/json")
        if op.required:
            assert (reply.status, reply.json["error"]["code"]) == (400, "missing_body"), (op, reply.raw)
        else:
            assert 200 <= reply.status < 300, (op, reply.raw)
        assert reply.status in op.documented, (op, reply.status)


def test_a_body_that_is_not_json_is_400_and_json_that_is_not_an_object_is_422(world: World) -> None:
    for op in body_operations(world):
        reply = send(world, op, b'{"not": "closed"', "application/json")
        assert (reply.status, reply.json["error"]["code"]) == (400, "malformed_json"), (op, reply.raw)
        reply = send(world, op, b'["an", "array"]', "application/json")
        assert (reply.status, reply.json["error"]["code"]) == (422, "validation_error"), (op, reply.raw)


# -- secrets are never repeated ----------------------------------------------------------------------------------

# Ways to send a secret field wrongly: each gives (body bytes, Content-Type) for a valid body and the field's name.
Shape = Callable[[dict[str, Any], str, str], tuple[bytes, str | None]]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


SHAPES: dict[str, Shape] = {
    "too long": lambda body, field, secret: (_json({**body, field: secret * 400}), "application/json"),
    "in a list": lambda body, field, secret: (_json({**body, field: [secret]}), "application/json"),
    "in an object": lambda body, field, secret: (_json({**body, field: {"value": secret}}), "application/json"),
    "with a newline": lambda body, field, secret: (_json({**body, field: f" {secret}\n"}), "application/json"),
    "as an unknown field's name": lambda body, field, secret: (_json({**body, secret: 1}), "application/json"),
    "in an unknown field": lambda body, field, secret: (_json({**body, "stream_key": secret}), "application/json"),
    "as the whole body": lambda body, field, secret: (_json(secret), "application/json"),
    "in broken JSON": lambda body, field, secret: (_json({**body, field: secret})[:-1], "application/json"),
    "not UTF-8": lambda body, field, secret: (_json({**body, field: secret}) + b"\xff", "application/json"),
    "as a form": lambda body, field, secret: (
        "&".join(f"{k}={v}" for k, v in {**body, field: secret}.items()).encode(), "application/x-www-form-urlencoded"),
    "as text": lambda body, field, secret: (_json({**body, field: secret}), "text/plain"),
    "as multipart": lambda body, field, secret: (
        f'--b\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{secret}\r\n--b--\r\n'.encode(),
        "multipart/form-data; boundary=b"),
    "without a Content-Type": lambda body, field, secret: (_json({**body, field: secret}), None),
}
# The secret fields of ARCHITECTURE §3's operations; for key creation, a stream key pasted into the body.
SECRET_FIELDS = [
    ("POST", "/v1/auth/signup", "password"),
    ("POST", "/v1/auth/login", "password"),
    ("POST", "/v1/auth/refresh", "refresh_token"),
    ("POST", "/v1/streams/{id}/keys", "name"),
]


def _wait_for_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 15) -> None:
    wait_for(lambda: text in caplog.text, timeout, f"{text!r} to be logged", interval=0.1)


@pytest.mark.parametrize(("method", "path", "field"), SECRET_FIELDS, ids=lambda v: str(v))
def test_no_answer_or_log_line_repeats_a_secret(world: World, caplog: pytest.LogCaptureFixture, method: str,
                                                 path: str, field: str) -> None:
    caplog.set_level(logging.DEBUG)
    secret = f"Sk3t-{uuid.uuid4().hex}-Secret!"
    op = BodyOperation(method, path, True, frozenset())
    statuses = {}
    for shape_name, shape in SHAPES.items():
        raw, content_type = shape(sample_body(method, path, world), field, secret)
        reply = send(world, op, raw, content_type)
        assert 400 <= reply.status < 500, (shape_name, reply.status, reply.raw)
        assert secret not in reply.raw.decode(errors="replace"), f"{shape_name}: the answer repeats the secret"
        assert secret not in json.dumps(reply.headers), f"{shape_name}: a header repeats the secret"
        statuses[shape_name] = reply.status
    assert statuses["as a form"] == statuses["as text"] == 415 and statuses["in broken JSON"] == 400
    _wait_for_log(caplog, log_marker(world, users_function=field != "name"))
    assert secret not in caplog.text, "a log line repeats the secret"


def log_marker(world: World, *, users_function: bool) -> str:
    """An id the function logs (users: a sign-up; streams: a new stream), once every earlier line is forwarded.

    Sequential calls are served by the same warm worker, whose log lines arrive in order.
    """
    if users_function:
        name = f"m{uuid.uuid4().hex[:10]}"
        reply = call("POST", f"{world.api}/v1/auth/signup",
                     {"email": f"{name}@example.com", "username": name, "password": PASSWORD})
        assert reply.status == 201, reply.raw
        return str(reply.json["user_id"])
    return str(create_stream(world.api, world.user, "log marker")["id"])
