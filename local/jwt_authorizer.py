"""API Gateway's JWT authorizer, as it checks Cognito tokens.

The signature is checked against the pool's JWKS, fetched from the emulator, while `iss` is checked
against the AWS form of the issuer, exactly as the deployed authorizer would.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

ACCEPTED_TOKEN_USES = ("access", "id")


class Unauthorized(Exception):
    """The request carries no token, or a token the authorizer refuses."""


class MissingToken(Unauthorized):
    """The request carries no token at all."""


def fetch_jwks(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        jwks: dict[str, Any] = json.load(response)
        return jwks


@dataclass
class JwtAuthorizer:
    issuer: str
    audiences: list[str]
    jwks_url: str
    header: str = "authorization"
    fetch: Callable[[str], dict[str, Any]] = fetch_jwks
    _keys: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _signing_key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys:
                jwks = self.fetch(self.jwks_url)
                self._keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks.get("keys", [])}
            if kid not in self._keys:
                raise Unauthorized("unknown signing key")
            return self._keys[kid]

    def authorize(self, headers: dict[str, str], required_scopes: list[str]) -> dict[str, Any]:
        raw = headers.get(self.header, "")
        token = raw[7:].strip() if raw[:7].lower() == "bearer " else raw.strip()
        if not token:
            raise MissingToken("missing token")
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            claims: dict[str, Any] = jwt.decode(
                token, self._signing_key(kid), algorithms=["RS256"], issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except (jwt.PyJWTError, ValueError) as error:
            raise Unauthorized(str(error)) from error
        if claims.get("token_use") not in ACCEPTED_TOKEN_USES:
            raise Unauthorized("token_use is neither access nor id")
        audience = claims.get("aud") if claims.get("token_use") == "id" else claims.get("client_id")
        if audience not in self.audiences:
            raise Unauthorized("audience does not match")
        if required_scopes:
            granted = set(str(claims.get("scope", "")).split())
            if not granted.intersection(required_scopes):
                raise Unauthorized("missing scope")
        return claims


def claims_as_api_gateway_strings(claims: dict[str, Any]) -> dict[str, str]:
    """API Gateway passes every claim as a string, arrays as `[a b]`."""
    out = {}
    for name, value in claims.items():
        out[name] = f"[{' '.join(map(str, value))}]" if isinstance(value, list) else str(value)
    return out
