"""Viewer counts count only viewers a viewer token vouches for (docs/viewers.md), through the real pipeline:
playback session -> heartbeat API -> SQS -> consumer -> the stream's `viewer_count`.

A refused heartbeat is never queued, so it cannot be "not yet counted": each test ends with real viewers whose
count is awaited, and the count must be exactly theirs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from analytics.viewer_tokens import ISSUER

from tests.support.http import call
from tests.support.platform import PlatformThread
from tests.support.streams import emulator, go_live, heartbeat, start_viewing
from tests.support.users import create_stream, sign_up_and_log_in
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

FOLLOW_S = 15.0  # viewer_count follows counted heartbeats within 15 s
MADE_UP_VIEWERS = 300
REAL_VIEWERS = 5


def live_stream(platform: PlatformThread, title: str) -> str:
    api = platform.urls["api"]
    stream_id = str(create_stream(api, sign_up_and_log_in(api, "vw"), title)["id"])
    go_live(platform, stream_id)
    return stream_id


def viewer_count(api: str, stream_id: str) -> int:
    return int(call("GET", f"{api}/v1/streams/{stream_id}").json["viewer_count"])


def settled_count(api: str, stream_id: str, expected: int) -> int:
    """The stream's viewer count once it reaches `expected` (at least 1), which may then be too high."""
    return wait_for(lambda: c if (c := viewer_count(api, stream_id)) >= expected else None, FOLLOW_S,
                    f"{expected} viewers of {stream_id}")


def signing_key(platform: PlatformThread) -> str:
    """The viewer-token key the platform made in the emulator (infra's ViewerTokenSecret)."""
    template = platform.platform.template
    # By its logical id: the stack has other secrets (the LL-HLS origin's).
    (arn,) = [template.resolved[lid].ref for lid, _ in template.of_type("AWS::SecretsManager::Secret")
              if lid == "ViewerTokenSecret"]
    return str(emulator(platform, "secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def test_made_up_viewers_without_a_token_count_for_nothing_and_real_sessions_count_each_once(
        api_platform: PlatformThread) -> None:
    api = api_platform.urls["api"]
    stream_id = live_stream(api_platform, "inflation")
    for _ in range(MADE_UP_VIEWERS):
        reply = heartbeat(api, stream_id, f"v{uuid.uuid4().hex[:12]}")
        assert (reply.status, reply.json) == (202, {"accepted": True, "counted": False}), reply.raw
    assert viewer_count(api, stream_id) == 0

    viewers = [start_viewing(api, stream_id) for _ in range(REAL_VIEWERS)]
    for viewer in viewers + viewers:  # a second heartbeat is the same viewer
        assert viewer.heartbeat().json["counted"] is True
    assert settled_count(api, stream_id, REAL_VIEWERS) == REAL_VIEWERS


def test_a_token_for_one_stream_does_not_count_on_another(api_platform: PlatformThread) -> None:
    api = api_platform.urls["api"]
    stream_a, stream_b = live_stream(api_platform, "stream A"), live_stream(api_platform, "stream B")
    on_a = start_viewing(api, stream_a)
    assert on_a.heartbeat(stream_id=stream_b).json["counted"] is False
    assert start_viewing(api, stream_b).heartbeat().json["counted"] is True
    assert settled_count(api, stream_b, 1) == 1


def test_a_token_past_its_expiry_does_not_count(api_platform: PlatformThread) -> None:
    api = api_platform.urls["api"]
    stream_id = live_stream(api_platform, "expiry")
    key = signing_key(api_platform)
    now = int(time.time())

    def token(viewer_id: str, **claims: Any) -> str:
        # What the API would have issued: the token's own claims, signed with the platform's key.
        return jwt.encode({"iss": ISSUER, "aud": stream_id, "sub": viewer_id, "iat": now - 600,
                           "exp": now + 120, **claims}, key, algorithm="HS256")

    expired = heartbeat(api, stream_id, "late-viewer", token("late-viewer", exp=now - 1))
    assert expired.json["counted"] is False
    # The control: the same token, unexpired, counts.
    assert heartbeat(api, stream_id, "on-time-viewer", token("on-time-viewer")).json["counted"] is True
    assert settled_count(api, stream_id, 1) == 1
