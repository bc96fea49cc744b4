"""Live streams and their viewers for tests that run the API without the media task: a stream goes live the way
the media task makes it live, and a viewer watches it the way the dashboard's player does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from tests.support.http import Reply, call
from tests.support.platform import PlatformThread


def emulator(platform: PlatformThread, service: str) -> Any:
    return boto3.client(service, endpoint_url=platform.urls["emulator"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def streams_table(platform: PlatformThread) -> str:
    template = platform.platform.template
    names = [template.resolved[lid].ref for lid, _ in template.of_type("AWS::DynamoDB::Table")]
    return next(n for n in names if "Streams" in n and "Keys" not in n)


def go_live(platform: PlatformThread, stream_id: str) -> str:
    """What the media task writes when a publisher starts (docs/contracts.md, "Stream"); returns the session id."""
    now = datetime.now(UTC)
    session_id = f"ses_{now:%Y%m%dT%H%M%S}{uuid.uuid4().hex[:6]}"
    emulator(platform, "dynamodb").update_item(
        TableName=streams_table(platform), Key={"stream_id": {"S": stream_id}},
        UpdateExpression="SET #s = :live, current_session_id = :ses, started_at = :at",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":live": {"S": "live"}, ":ses": {"S": session_id},
                                   ":at": {"S": now.strftime("%Y-%m-%dT%H:%M:%S.000Z")}})
    return session_id


@dataclass
class Viewer:
    """A viewer session of a live stream, as a player has it: its id and the viewer token for its heartbeats."""

    api: str
    stream_id: str
    viewer_id: str
    token: str
    client: str | None = None

    def heartbeat(self, stream_id: str | None = None, token: str | None = None) -> Reply:
        """A heartbeat with this session's token (or `token`), for its stream (or `stream_id`)."""
        return heartbeat(self.api, stream_id or self.stream_id, self.viewer_id, token or self.token,
                         client=self.client)


def start_viewing(api: str, stream_id: str, viewer_id: str | None = None, *, client: str | None = None) -> Viewer:
    """`POST /v1/streams/{id}/playback`, as the dashboard's player does before it plays a live stream."""
    reply = call("POST", f"{api}/v1/streams/{stream_id}/playback", {"viewer_id": viewer_id} if viewer_id else None,
                 client=client)
    assert reply.status == 201, reply.raw
    session = reply.json
    return Viewer(api, stream_id, session["viewer_id"], session["viewer_token"], client)


def heartbeat(api: str, stream_id: str, viewer_id: str, token: str | None = None, *,
              client: str | None = None) -> Reply:
    body = {"stream_id": stream_id, "viewer_id": viewer_id, "rendition": "720p", "buffering_ms": 0,
            **({"viewer_token": token} if token else {})}
    return call("POST", f"{api}/v1/analytics/heartbeat", body, client=client)
