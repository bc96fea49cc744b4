"""Checking the access token a client may pass to `$connect`."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol

from botocore.exceptions import ClientError

from notifications.models import Identity

# What Cognito answers for a token that is forged, expired, revoked or for a deleted user.
_REJECTED = {"NotAuthorizedException", "UserNotFoundException", "InvalidParameterException",
             "PasswordResetRequiredException", "UserNotConfirmedException"}


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Identity | None:
        """The token's user, or None when the token is not acceptable."""
        ...


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The JWT's payload, undecoded signature and all: only for routing checks, never for trust."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


class CognitoTokenVerifier:
    """Cognito's GetUser checks signature, expiry and revocation; we check that the token is ours.

    GetUser accepts an access token from *any* user pool in the region, so without the issuer check a
    token from someone else's pool would pass.
    """

    def __init__(self, cognito: Any, *, user_pool_id: str, client_id: str | None = None) -> None:
        self._cognito = cognito
        self._pool_id = user_pool_id
        self._client_id = client_id

    def _is_ours(self, claims: dict[str, Any]) -> bool:
        issuer = str(claims.get("iss", ""))
        if not issuer.startswith("https://cognito-idp.") or not issuer.endswith(f"/{self._pool_id}"):
            return False
        if claims.get("token_use") != "access":
            return False
        return self._client_id is None or claims.get("client_id") == self._client_id

    def verify(self, token: str) -> Identity | None:
        claims = unverified_claims(token)
        if claims is None or not self._is_ours(claims):
            return None
        try:
            user = self._cognito.get_user(AccessToken=token)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _REJECTED:
                return None
            raise
        attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        user_id = attributes.get("sub") or str(claims.get("sub", ""))
        if not user_id:
            return None
        return Identity(username=user["Username"], user_id=user_id)
