"""Analytics rules of the API: viewer sessions, who may count as a viewer. No HTTP and no boto3 here.

A viewer starts a session for a live stream and gets a viewer token (`viewer_tokens`); a heartbeat counts only
when it carries a valid token for its stream and viewer. How many sessions one client may start is the edge's
per-client limit (infra/edge.py), not this module's. The model and its limits: docs/viewers.md. The heartbeat
consumer's rules are `analytics.consumer_service`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from streamforge.errors import Conflict
from streamforge.streams import status_of
from streamforge.urls import playback_url

from analytics import viewer_tokens
from analytics.viewer_tokens import OTHER_STREAM, OTHER_VIEWER, TokenRefused


def new_viewer_id() -> str:
    return "v_" + secrets.token_hex(12)


class ViewerSessions:
    def __init__(self, *, signing_key: Callable[[], bytes], ttl_s: int, cdn_base_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        """`signing_key` is read per use, so a cached secret can expire; `ttl_s` is a token's lifetime."""
        self._key = signing_key
        self._ttl_s = ttl_s
        self._cdn = cdn_base_url
        self._clock = clock

    def start(self, stream: dict[str, Any], viewer_id: str | None) -> dict[str, Any]:
        """A session for a live (or reconnecting) stream: `{stream_id, viewer_id, viewer_token, expires_in,
        playback_url}`, `expires_in` in seconds. Keeps the caller's `viewer_id` (so a returning viewer is one
        viewer), else makes one. Conflict `stream_not_live` for an offline stream.
        """
        if not status_of(stream).on_air:
            raise Conflict("the stream is not live", code="stream_not_live")
        stream_id = stream["stream_id"]
        viewer_id = viewer_id or new_viewer_id()
        token = viewer_tokens.issue(self._key(), stream_id=stream_id, viewer_id=viewer_id,
                                    now=int(self._clock()), ttl_s=self._ttl_s)
        return {"stream_id": stream_id, "viewer_id": viewer_id, "viewer_token": token, "expires_in": self._ttl_s,
                "playback_url": playback_url(self._cdn, stream_id)}

    def refusal(self, token: str | None, *, stream_id: str, viewer_id: str) -> str | None:
        """None when `token` vouches for `viewer_id` watching `stream_id` now, else why not (one of
        `viewer_tokens.REFUSALS`)."""
        try:
            claims = viewer_tokens.verify(self._key(), token, now=self._clock())
        except TokenRefused as refused:
            return refused.reason
        if claims.stream_id != stream_id:
            return OTHER_STREAM
        if claims.viewer_id != viewer_id:
            return OTHER_VIEWER
        return None
