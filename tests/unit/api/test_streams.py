"""Streams API through the real handler, against in-process moto."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any

import boto3
import pytest
from streamforge.api import MAX_BODY_BYTES

from tests.unit.conftest import ALICE, BOB, LambdaContext, call, http_event

pytestmark = pytest.mark.unit


def handler() -> Any:
    from metadata.handler import lambda_handler

    return lambda_handler


def create(claims: dict[str, str] = ALICE, **body: Any) -> dict[str, Any]:
    status, created = call(handler(), http_event("POST", "/v1/streams", body={"title": "My show", **body},
                                                 claims=claims))
    assert status == 201, created
    return created


def test_create_returns_key_once_and_stores_only_its_hash(aws: dict[str, str]) -> None:
    created = create(tags=["music"])
    key = created["ingest"]["stream_key"]
    assert key.startswith("sk_") and created["status"] == "offline"
    assert created["playback_url"] == f"http://cdn.test/live/{created['id']}/master.m3u8"
    items = boto3.client("dynamodb").scan(TableName=aws["STREAM_KEYS_TABLE"])["Items"]
    assert [i["key_hash"]["S"] for i in items] == [hashlib.sha256(key.encode()).hexdigest()]
    assert key not in json.dumps(items)
    status, fetched = call(handler(), http_event("GET", f"/v1/streams/{created['id']}"))
    assert status == 200 and key not in json.dumps(fetched) and fetched["owner_username"] == "alice"
    assert fetched["ll_playback_url"] == f"http://cdn.test/ll/{created['id']}/master.m3u8"


def test_get_unknown_and_malformed_stream_ids(aws: dict[str, str]) -> None:
    status, body = call(handler(), http_event("GET", "/v1/streams/st_aaaaaaaaaaaaaaaa"))
    assert (status, body["error"]["code"]) == (404, "stream_not_found")
    status, body = call(handler(), http_event("GET", "/v1/streams/not-an-id"))
    assert status == 422 and set(body) == {"error"}


def test_error_shapes_for_bad_json_oversized_body_and_unknown_route(aws: dict[str, str]) -> None:
    status, body = call(handler(), http_event("POST", "/v1/streams", raw_body='{"title": ', claims=ALICE))
    assert (status, body["error"]["code"]) == (400, "malformed_json")
    status, body = call(handler(), http_event("POST", "/v1/streams", body={"title": "x" * MAX_BODY_BYTES},
                                              claims=ALICE))
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    status, body = call(handler(), http_event("POST", "/v1/streams", body={"title": "ok", "extra_field": 1},
                                              claims=ALICE))
    assert (status, body["error"]["code"]) == (422, "validation_error")
    # The rule is named; the unknown field's name is the caller's input and is not repeated.
    assert "does not take" in body["error"]["message"] and "extra_field" not in body["error"]["message"]
    status, body = call(handler(), http_event("GET", "/v1/nothing-here"))
    assert (status, body) == (404, {"error": {"code": "route_not_found", "message": "no such route"}})


@pytest.mark.parametrize(("content_type", "raw", "status"), [
    ("Application/JSON; charset=UTF-8", '{"title": "as JSON"}', 200),  # media types are case-insensitive
    ("text/plain", '{"title": "as text"}', 415),
    ("application/x-www-form-urlencoded", "title=as+a+form", 415),
    (None, '{"title": "without a type"}', 415),
    ("application/json", '["not", "an", "object"]', 422),
    ("application/json", "", 400),
])
def test_bodies_are_json_objects_declared_as_json(aws: dict[str, str], content_type: str | None, raw: str,
                                                  status: int) -> None:
    created = create()
    event = http_event("PATCH", f"/v1/streams/{created['id']}", raw_body=raw, claims=ALICE)
    if content_type is None:
        del event["headers"]["content-type"]
    else:
        event["headers"]["content-type"] = content_type
    assert call(handler(), event)[0] == status


def test_a_method_the_path_does_not_take_is_405_with_allow(aws: dict[str, str]) -> None:
    """What API Gateway's `ANY` route of a path brings to the function: the methods no other route takes."""
    response = handler()(http_event("PUT", "/v1/streams/st_aaaaaaaaaaaaaaaa", claims=ALICE), LambdaContext())
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "DELETE, GET, PATCH"
    assert json.loads(response["body"])["error"]["code"] == "method_not_allowed"


def _owner_routes(stream_id: str, key_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("PATCH", f"/v1/streams/{stream_id}", {"title": "renamed"}),
        ("POST", f"/v1/streams/{stream_id}/keys", {"name": "backup"}),
        ("GET", f"/v1/streams/{stream_id}/keys", None),
        ("DELETE", f"/v1/streams/{stream_id}/keys/{key_id}", None),
        ("DELETE", f"/v1/streams/{stream_id}", None),
    ]


@pytest.mark.parametrize("route", range(5))
def test_owner_only_routes_reject_anonymous_and_other_users(aws: dict[str, str], route: int) -> None:
    created = create()
    method, path, body = _owner_routes(created["id"], created["ingest"]["key_id"])[route]
    assert call(handler(), http_event(method, path, body=body))[0] == 401
    status, error = call(handler(), http_event(method, path, body=body, claims=BOB))
    assert (status, error["error"]["code"]) == (403, "not_owner")
    assert call(handler(), http_event(method, path, body=body, claims=ALICE))[0] in (200, 201, 204)


def test_create_requires_auth(aws: dict[str, str]) -> None:
    status, body = call(handler(), http_event("POST", "/v1/streams", body={"title": "x"}))
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_list_paginates_with_opaque_cursor_and_rejects_tampering(aws: dict[str, str]) -> None:
    ids = {create(title=f"show {i}")["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = {"status": "offline", "limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = call(handler(), http_event("GET", "/v1/streams", query=query))
        assert status == 200 and len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    status, page = call(handler(), http_event("GET", "/v1/streams", query={"status": "offline", "limit": "2"}))
    good = page["next_cursor"]
    payload, mac = good.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    for cursor_value in (tampered, good + "x", "garbage.garbage"):
        status, body = call(handler(), http_event("GET", "/v1/streams",
                                                  query={"status": "offline", "cursor": cursor_value}))
        assert (status, body["error"]["code"]) == (404, "cursor_not_found"), cursor_value
    for malformed in ("garbage", good.replace(".", ""), good + "!"):
        status, body = call(handler(), http_event("GET", "/v1/streams",
                                                  query={"status": "offline", "cursor": malformed}))
        assert (status, body["error"]["code"]) == (422, "validation_error"), malformed
    # A cursor only works for the query that produced it.
    status, body = call(handler(), http_event("GET", "/v1/streams", query={"status": "live", "cursor": good}))
    assert status == 404


def test_owner_filter_lists_only_that_owners_streams(aws: dict[str, str]) -> None:
    mine = create()["id"]
    create(claims=BOB)
    status, page = call(handler(), http_event("GET", "/v1/streams", query={"owner": ALICE["sub"]}))
    assert status == 200 and [i["id"] for i in page["items"]] == [mine]


def test_create_is_idempotent_under_idempotency_key(aws: dict[str, str]) -> None:
    def post(body: dict[str, Any], claims: dict[str, str] = ALICE) -> tuple[int, Any]:
        return call(handler(), http_event("POST", "/v1/streams", body=body, claims=claims,
                                          headers={"idempotency-key": "retry-1"}))

    first, second = post({"title": "once"}), post({"title": "once"})
    assert first[0] == second[0] == 201 and first[1] == second[1]
    assert len(boto3.client("dynamodb").scan(TableName=aws["STREAMS_TABLE"])["Items"]) == 1
    status, body = post({"title": "different"})
    assert (status, body["error"]["code"]) == (409, "idempotency_key_reused")
    # The key is scoped to the caller: another user with the same header gets their own stream.
    assert post({"title": "once"}, claims=BOB)[1]["id"] != first[1]["id"]
    # Found by fuzzing: a retry after the stream was deleted answered 201 with a stream that was gone.
    assert call(handler(), http_event("DELETE", f"/v1/streams/{first[1]['id']}", claims=ALICE))[0] == 204
    status, body = post({"title": "once"})
    assert (status, body["error"]["code"]) == (409, "stream_deleted")


def test_patch_updates_and_emits_stream_updated_with_rising_seq(aws: dict[str, str]) -> None:
    created = create()
    path = f"/v1/streams/{created['id']}"
    status, body = call(handler(), http_event("PATCH", path, body={"title": "new", "tags": ["a"]}, claims=ALICE))
    assert status == 200 and body["title"] == "new" and body["tags"] == ["a"]
    call(handler(), http_event("PATCH", path, body={"description": "d"}, claims=ALICE))
    item = boto3.client("dynamodb").get_item(TableName=aws["STREAMS_TABLE"],
                                             Key={"stream_id": {"S": created["id"]}})["Item"]
    assert item["event_seq"]["N"] == "2"
    status, body = call(handler(), http_event("PATCH", path, body={}, claims=ALICE))
    assert status == 422


def test_delete_revokes_every_key_and_hides_the_stream(aws: dict[str, str]) -> None:
    created = create()
    path = f"/v1/streams/{created['id']}"
    call(handler(), http_event("POST", f"{path}/keys", body={"name": "backup"}, claims=ALICE))
    assert call(handler(), http_event("DELETE", path, claims=ALICE))[0] == 204
    assert boto3.client("dynamodb").scan(TableName=aws["STREAM_KEYS_TABLE"])["Items"] == []
    assert call(handler(), http_event("GET", path))[0] == 404
    assert call(handler(), http_event("DELETE", path, claims=ALICE))[0] == 404
    assert call(handler(), http_event("GET", "/v1/streams", query={"status": "offline"}))[1]["items"] == []


def test_keys_are_listed_without_secrets_and_revocable(aws: dict[str, str]) -> None:
    created = create()
    keys_path = f"/v1/streams/{created['id']}/keys"
    status, key = call(handler(), http_event("POST", keys_path, body={"name": "backup"}, claims=ALICE))
    assert status == 201 and key["stream_key"].startswith("sk_")
    status, listing = call(handler(), http_event("GET", keys_path, claims=ALICE))
    assert {k["name"] for k in listing["items"]} == {"default", "backup"}
    assert "sk_" not in json.dumps(listing) and "key_hash" not in json.dumps(listing)
    assert call(handler(), http_event("DELETE", f"{keys_path}/{key['key_id']}", claims=ALICE))[0] == 204
    assert call(handler(), http_event("DELETE", f"{keys_path}/{key['key_id']}", claims=ALICE))[0] == 404


def test_key_limit_per_stream(aws: dict[str, str]) -> None:
    created = create()
    keys_path = f"/v1/streams/{created['id']}/keys"
    for _ in range(9):
        assert call(handler(), http_event("POST", keys_path, claims=ALICE))[0] == 201
    status, body = call(handler(), http_event("POST", keys_path, claims=ALICE))
    assert (status, body["error"]["code"]) == (409, "too_many_keys")


def test_sessions_come_from_the_sessions_table(aws: dict[str, str]) -> None:
    created = create()
    boto3.client("dynamodb").put_item(TableName=aws["SESSIONS_TABLE"], Item={
        "stream_id": {"S": created["id"]}, "session_id": {"S": "ses_20261125T100000abcdef"},
        "status": {"S": "ended"}, "started_at": {"S": "2026-11-25T10:00:00.000Z"},
        "ended_at": {"S": "2026-11-25T10:10:00.000Z"}, "duration_s": {"N": "600"}})
    status, body = call(handler(), http_event("GET", f"/v1/streams/{created['id']}/sessions"))
    assert status == 200
    assert body["items"][0]["vod_url"] == f"http://cdn.test/vod/{created['id']}/ses_20261125T100000abcdef/master.m3u8"
    assert body["items"][0]["duration_s"] == 600


def test_no_stream_key_appears_in_logs(aws: dict[str, str], capsys: pytest.CaptureFixture[str],
                                       caplog: pytest.LogCaptureFixture) -> None:
    # Our loggers at INFO, as deployed; botocore's DEBUG wire dumps are not enabled in any environment.
    caplog.set_level(logging.INFO)
    created = create()
    keys_path = f"/v1/streams/{created['id']}/keys"
    _, rotated = call(handler(), http_event("POST", keys_path, body={"name": "rotated"}, claims=ALICE))
    call(handler(), http_event("DELETE", f"{keys_path}/{created['ingest']['key_id']}", claims=ALICE))
    secrets = [created["ingest"]["stream_key"], rotated["stream_key"]]
    secrets += [hashlib.sha256(s.encode()).hexdigest() for s in secrets]
    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert "stream created" in logged  # the capture works
    for secret in secrets:
        assert secret not in logged


def test_no_content_answers_have_no_body_and_no_content_type(aws: dict[str, str]) -> None:
    """Found by fuzzing: a 204 used to carry the JSON body `null` with `Content-Type: application/json`."""
    created = create()
    path = f"/v1/streams/{created['id']}"
    key = call(handler(), http_event("POST", f"{path}/keys", body={"name": "backup"}, claims=ALICE))[1]
    for event in (http_event("DELETE", f"{path}/keys/{key['key_id']}", claims=ALICE),
                  http_event("DELETE", path, claims=ALICE)):
        response = handler()(event, LambdaContext())
        assert response["statusCode"] == 204
        assert not response.get("body")
        assert "Content-Type" not in response.get("headers", {})


@pytest.mark.parametrize("body", [b"\xff\xfe\x0f\x0c\xc3", b'{"title": "\xc3"}'])
def test_a_body_that_is_not_utf8_is_400_not_500(aws: dict[str, str], body: bytes) -> None:
    """Found by fuzzing: Powertools decodes a base64 body as UTF-8 unguarded, which was a 500."""
    created = create()
    event = http_event("PATCH", f"/v1/streams/{created['id']}", claims=ALICE)
    event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    status, reply = call(handler(), event)
    assert (status, reply["error"]["code"]) == (400, "malformed_json")
    event.update(body="not base64!", isBase64Encoded=True)
    status, reply = call(handler(), event)
    assert (status, reply["error"]["code"]) == (400, "malformed_json")
    event.update(body=base64.b64encode(b'{"title": "fine"}').decode(), isBase64Encoded=True)
    assert call(handler(), event) == (200, call(handler(), http_event("GET", f"/v1/streams/{created['id']}"))[1])
