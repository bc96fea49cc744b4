"""Streams, viewer sessions and queue access shared by the analytics unit tests (in-process moto)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.unit.conftest import ALICE, call, http_event


def api() -> Any:
    from analytics.handler import lambda_handler

    return lambda_handler


def create_stream() -> str:
    from metadata.handler import lambda_handler

    status, created = call(lambda_handler, http_event("POST", "/v1/streams", body={"title": "t"}, claims=ALICE))
    assert status == 201
    return str(created["id"])


def live_stream(aws: dict[str, str]) -> str:
    """A stream made live the way the media task makes it (docs/contracts.md, "Stream")."""
    stream_id = create_stream()
    boto3.client("dynamodb").update_item(
        TableName=aws["STREAMS_TABLE"], Key={"stream_id": {"S": stream_id}},
        UpdateExpression="SET #s = :live, current_session_id = :ses", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":live": {"S": "live"}, ":ses": {"S": "ses_20261125T100000abcdef"}})
    return stream_id


def viewer_token(stream_id: str, viewer_id: str) -> str:
    status, session = call(api(), http_event("POST", f"/v1/streams/{stream_id}/playback",
                                             body={"viewer_id": viewer_id}))
    assert status == 201, session
    return str(session["viewer_token"])


def sqs_event(bodies: list[Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": "r", "body": b if isinstance(b, str) else json.dumps(b),
                         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:heartbeats", "awsRegion": "us-east-1"}
                        for i, b in enumerate(bodies)]}


def drain_queue(queue_url: str) -> list[str]:
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"] for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
