"""Users and streams made through the public API, as a client would make them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.support.http import call

PASSWORD = "Corr3ct-Horse-Battery!"


@dataclass
class SignedInUser:
    username: str
    email: str
    tokens: dict[str, Any]

    @property
    def token(self) -> str:
        return str(self.tokens["access_token"])


def sign_up_and_log_in(api: str, prefix: str = "u") -> SignedInUser:
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    email = f"{username}@example.com"
    reply = call("POST", f"{api}/v1/auth/signup", {"email": email, "username": username, "password": PASSWORD})
    assert reply.status == 201, reply.raw
    reply = call("POST", f"{api}/v1/auth/login", {"username": username, "password": PASSWORD})
    assert reply.status == 200, reply.raw
    return SignedInUser(username, email, reply.json)


def create_stream(api: str, user: SignedInUser, title: str = "test stream") -> dict[str, Any]:
    reply = call("POST", f"{api}/v1/streams", {"title": title}, token=user.token)
    assert reply.status == 201, reply.raw
    stream: dict[str, Any] = reply.json
    return stream
