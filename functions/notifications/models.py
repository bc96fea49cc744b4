"""What clients send over the socket, who they are, and what the server sends back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from streamforge.models import StreamId, StrictModel


@dataclass(frozen=True)
class Identity:
    """An authenticated user behind a connection (Cognito username and `sub`)."""

    username: str
    user_id: str


@dataclass(frozen=True)
class Connection:
    connection_id: str
    identity: Identity | None
    expires_at: int


class StreamLookup(Protocol):
    """Reads a stream item; `streamforge.streams.StreamsReader` is the real one."""

    def get(self, stream_id: str) -> dict[str, Any] | None: ...


class SubscriptionRequest(StrictModel):
    action: Literal["subscribe", "unsubscribe"]
    stream_id: StreamId


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
