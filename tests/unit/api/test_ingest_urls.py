"""Ingest URLs of a stream (ARCHITECTURE §6b): RTMP, WHIP and SRT, none carrying the key; the SRT passphrase
is settable by the owner and never returned."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.unit.conftest import ALICE, _reset_caches, call, http_event

pytestmark = pytest.mark.unit


@pytest.fixture
def ingest_env(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("WHIP_INGEST_URL", "https://ingest.test:8443/whip")
    monkeypatch.setenv("SRT_INGEST_URL", "srt://ingest.test:9000")
    _reset_caches()
    return aws


def handler() -> Any:
    from metadata.handler import lambda_handler

    return lambda_handler


def test_create_and_get_show_every_ingest_url_without_the_key(ingest_env: dict[str, str]) -> None:
    status, created = call(handler(), http_event("POST", "/v1/streams", body={"title": "Three ways in"},
                                                 claims=ALICE))
    assert status == 201, created
    stream_id, key = created["id"], created["ingest"]["stream_key"]
    expected = {"rtmp_url": "rtmp://ingest.test:1935/live", "whip_url": f"https://ingest.test:8443/whip/{stream_id}",
                "srt_url": "srt://ingest.test:9000", "srt_encrypted": False}
    assert {k: created["ingest"][k] for k in expected} == expected
    status, fetched = call(handler(), http_event("GET", f"/v1/streams/{stream_id}"))
    assert status == 200 and fetched["ingest"] == expected
    assert key not in json.dumps(fetched) and all(key not in url for url in created["ingest"].values()
                                                   if url != key and isinstance(url, str))


def test_srt_passphrase_is_stored_for_the_media_task_and_never_returned(ingest_env: dict[str, str]) -> None:
    passphrase = "correct-horse-battery"
    status, created = call(handler(), http_event("POST", "/v1/streams", claims=ALICE,
                                                 body={"title": "Encrypted", "srt_passphrase": passphrase}))
    assert status == 201 and created["ingest"]["srt_encrypted"] is True
    assert passphrase not in json.dumps(created)
    stream_id = created["id"]
    item = boto3.client("dynamodb").get_item(TableName=ingest_env["STREAMS_TABLE"],
                                             Key={"stream_id": {"S": stream_id}})["Item"]
    assert item["srt_passphrase"]["S"] == passphrase  # SRT derives its keys from the passphrase itself
    status, body = call(handler(), http_event("PATCH", f"/v1/streams/{stream_id}", claims=ALICE,
                                              body={"srt_passphrase": "short"}))
    assert status == 422 and "short" not in json.dumps(body)
    status, cleared = call(handler(), http_event("PATCH", f"/v1/streams/{stream_id}", claims=ALICE,
                                                 body={"srt_passphrase": ""}))
    assert status == 200 and cleared["ingest"]["srt_encrypted"] is False
    assert passphrase not in json.dumps(cleared)
