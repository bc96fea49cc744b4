"""Stream keys: generation, hashing and constant-time verification.

A key is shown once, at creation; only its SHA-256 is stored. The key carries 256 bits of
randomness, so an unsalted fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "sk_"
KEY_ID_PREFIX = "key_"
KEY_RANDOM_BYTES = 32


def generate_stream_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def generate_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(6)


def hash_stream_key(stream_key: str) -> str:
    return hashlib.sha256(stream_key.encode("utf-8")).hexdigest()


def key_matches(stream_key: str, stored_hash: str) -> bool:
    """Compare in constant time, whatever the lengths or contents."""
    return hmac.compare_digest(hash_stream_key(stream_key).encode(), stored_hash.encode())


def redact(stream_key: str) -> str:
    """What may appear in a log line instead of a key."""
    return f"{KEY_PREFIX}…({len(stream_key)} chars)"
