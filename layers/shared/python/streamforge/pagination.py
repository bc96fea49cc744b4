"""Opaque, tamper-evident pagination cursors over DynamoDB's LastEvaluatedKey.

A cursor is base64url(JSON) + "." + base64url(HMAC-SHA256). It is bound to the query it came from
(its "scope"), so it cannot be replayed against another filter, and its key attributes are checked
against the index's key schema. A cursor this code did not make for the query names no page: 404 `cursor_not_found`
(a 400 would say the request was malformed, but any string is a well-formed cursor), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from streamforge.errors import NotFound

_MAX_CURSOR_CHARS = 2048
# What `encode_cursor` makes: base64url, a dot, base64url.
CURSOR_PATTERN = r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$"
_MAX_VALUE_CHARS = 256
# Without CURSOR_SECRET the MAC still detects edits, but is not a secret; the keys it guards are public data.
_DEFAULT_SECRET = b"streamforge-cursor-v1"


def _secret() -> bytes:
    return os.environ.get("CURSOR_SECRET", "").encode() or _DEFAULT_SECRET


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(scope: str, payload: str) -> bytes:
    return hmac.new(_secret(), f"{scope}\n{payload}".encode(), hashlib.sha256).digest()[:16]


def encode_cursor(last_evaluated_key: dict[str, Any], scope: str) -> str:
    plain = {name: value["S"] for name, value in last_evaluated_key.items()}
    payload = _b64(json.dumps(plain, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(scope, payload))}"


def decode_cursor(cursor: str, scope: str, key_names: frozenset[str]) -> dict[str, Any]:
    """The ExclusiveStartKey for `cursor`, or NotFound if it was not made by `encode_cursor` for `scope`."""
    invalid = NotFound("no page for this cursor: it was not given out for this query", code="cursor_not_found")
    if len(cursor) > _MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise invalid
    payload, signature = cursor.split(".")
    try:
        given = _unb64(signature)
        if not hmac.compare_digest(given, _mac(scope, payload)):
            raise invalid
        plain = json.loads(_unb64(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid from exc
    if not isinstance(plain, dict) or set(plain) != key_names:
        raise invalid
    if not all(isinstance(v, str) and 0 < len(v) <= _MAX_VALUE_CHARS for v in plain.values()):
        raise invalid
    return {name: {"S": value} for name, value in plain.items()}
