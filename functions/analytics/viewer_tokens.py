"""Viewer tokens: a short-lived HS256 JWT that vouches for one viewer of one stream (docs/viewers.md).

Claims: `iss` "streamforge-viewer", `aud` the stream id, `sub` the viewer id, `iat` and `exp` (epoch seconds).
Any JWT library verifies one with the signing key. They are made and checked here with the standard library because
neither the Lambda runtime nor the Powertools layer carries PyJWT, and the shared layer is plain source with no
bundling step; the tests check these tokens with PyJWT. Only the one header this module writes is accepted, so no
token can choose its own algorithm.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

ISSUER = "streamforge-viewer"
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
# Far above a real token (~250 characters); anything longer is refused before it is decoded.
MAX_TOKEN_CHARS = 1024


class TokenRefused(Exception):
    """The token vouches for nothing; `reason` is one of the `REFUSALS` (a metric dimension, never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Why a heartbeat's token was refused, as the `HeartbeatRefused` metric's `reason` dimension.
MISSING, INVALID, EXPIRED, OTHER_STREAM, OTHER_VIEWER = "missing", "invalid", "expired", "other_stream", "other_viewer"
REFUSALS = (MISSING, INVALID, EXPIRED, OTHER_STREAM, OTHER_VIEWER)


@dataclass(frozen=True)
class ViewerClaims:
    stream_id: str
    viewer_id: str
    expires_at: int  # epoch seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, signing_input: str) -> str:
    return _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def issue(key: bytes, *, stream_id: str, viewer_id: str, now: int, ttl_s: int) -> str:
    """A token for `viewer_id` watching `stream_id`, valid for `ttl_s` seconds from `now` (epoch seconds)."""
    claims = {"iss": ISSUER, "aud": stream_id, "sub": viewer_id, "iat": now, "exp": now + ttl_s}
    signing_input = f"{_HEADER}.{_b64(json.dumps(claims, separators=(',', ':'), sort_keys=True).encode())}"
    return f"{signing_input}.{_signature(key, signing_input)}"


def verify(key: bytes, token: str | None, *, now: float) -> ViewerClaims:
    """The claims of a token made by `issue` with `key` and not expired at `now`; raises TokenRefused otherwise."""
    if not token:
        raise TokenRefused(MISSING)
    parts = token.split(".")
    if len(token) > MAX_TOKEN_CHARS or len(parts) != 3 or parts[0] != _HEADER:
        raise TokenRefused(INVALID)
    if not hmac.compare_digest(parts[2], _signature(key, f"{parts[0]}.{parts[1]}")):
        raise TokenRefused(INVALID)
    try:
        claims = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError) as exc:
        raise TokenRefused(INVALID) from exc
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
        raise TokenRefused(INVALID)
    stream_id, viewer_id, expires_at = claims.get("aud"), claims.get("sub"), claims.get("exp")
    if not (isinstance(stream_id, str) and isinstance(viewer_id, str) and type(expires_at) is int):
        raise TokenRefused(INVALID)
    if expires_at <= now:
        raise TokenRefused(EXPIRED)
    return ViewerClaims(stream_id=stream_id, viewer_id=viewer_id, expires_at=expires_at)
