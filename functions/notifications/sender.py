"""Pushing messages to connected clients through the `@connections` management API."""

from __future__ import annotations

import enum
import json
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from streamforge.observability import logger


class Delivery(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # the client went away: its items should be deleted
    FAILED = "failed"  # anything else; logged, and the next event tries again


class Sender(Protocol):
    def send(self, connection_id: str, message: dict[str, Any]) -> Delivery: ...


def _is_gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") == "GoneException" or status == 410


class ManagementApiSender:
    """`client`: an `apigatewaymanagementapi` client for WEBSOCKET_MANAGEMENT_URL (`streamforge.aws.client`)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def send(self, connection_id: str, message: dict[str, Any]) -> Delivery:
        data = json.dumps(message, separators=(",", ":"), default=str).encode()
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as exc:
            if _is_gone(exc):
                return Delivery.GONE
            logger.warning("post_to_connection failed", connection_id=connection_id,
                           error_code=exc.response.get("Error", {}).get("Code"))
            return Delivery.FAILED
        except BotoCoreError as exc:
            # Timeouts and connection errors: one slow client must not fail the whole fan-out.
            logger.warning("post_to_connection failed", connection_id=connection_id, error=type(exc).__name__)
            return Delivery.FAILED
        return Delivery.SENT
