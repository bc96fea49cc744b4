"""Notification rules of the WebSocket routes: connect, disconnect, subscribe, unsubscribe, anything else.

Each method returns the HTTP status the route answers with. Only `$connect`'s status reaches the client (a non-2xx
refuses the handshake); on the other routes the client learns about a problem from an `{"type": "error", ...}`
message on its socket. No boto3 here; the fan-out's rules are `notifications.fanout_service`.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError
from streamforge.observability import logger, metrics
from streamforge.streams import EVENT_SEQ, effective_viewer_count, status_of

from notifications.auth import TokenVerifier
from notifications.models import StreamLookup, SubscriptionRequest, error_message
from notifications.repository import ConnectionStore
from notifications.sender import Sender

# Enough for a directory page of thumbnails with live counts; bounds what one client can make us store.
MAX_SUBSCRIPTIONS = 50


class MessageRejected(Exception):
    """A message the client got wrong; it is told so on its socket."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _describe(exc: ValidationError) -> str:
    # Where and what, but never the input itself.
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error.get("loc", ())) or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _require_json(body: str | None) -> None:
    try:
        json.loads(body or "")
    except ValueError as exc:
        raise MessageRejected(400, "malformed_json", "the message is not valid JSON") from exc


def _parse(body: str | None) -> SubscriptionRequest:
    try:
        return SubscriptionRequest.model_validate_json(body or "")
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise MessageRejected(400, "malformed_json", "the message is not valid JSON") from exc
        raise MessageRejected(400, "validation_error", _describe(exc)) from exc


class SocketService:
    def __init__(self, *, store: ConnectionStore, streams: StreamLookup, verifier: TokenVerifier,
                 sender: Sender) -> None:
        self._store = store
        self._streams = streams
        self._verifier = verifier
        self._sender = sender

    def connect(self, connection_id: str, query: dict[str, str] | None) -> int:
        token = (query or {}).get("token")
        identity = None
        if token is not None:
            identity = self._verifier.verify(token)
            if identity is None:
                metrics.add_metric(name="WebSocketAuthRejected", unit=MetricUnit.Count, value=1)
                return 401
        self._store.add(connection_id, identity)
        metrics.add_metric(name="WebSocketConnects", unit=MetricUnit.Count, value=1)
        logger.info("connected", connection_id=connection_id, authenticated=identity is not None)
        return 200

    def disconnect(self, connection_id: str) -> int:
        self._store.remove(connection_id)
        metrics.add_metric(name="WebSocketDisconnects", unit=MetricUnit.Count, value=1)
        return 200

    def receive(self, connection_id: str, route_key: str, body: str | None) -> int:
        try:
            if route_key not in ("subscribe", "unsubscribe"):
                _require_json(body)
                raise MessageRejected(400, "unknown_action", 'unknown action: send "subscribe" or "unsubscribe"')
            request = _parse(body)
            if request.action == "subscribe":
                return self._subscribe(connection_id, request.stream_id)
            self._store.unsubscribe(connection_id, request.stream_id)
            metrics.add_metric(name="WebSocketUnsubscribes", unit=MetricUnit.Count, value=1)
            self._sender.send(connection_id, {"type": "unsubscribed", "stream_id": request.stream_id})
            return 200
        except MessageRejected as exc:
            metrics.add_metric(name="WebSocketRejectedMessages", unit=MetricUnit.Count, value=1)
            self._sender.send(connection_id, error_message(exc.code, exc.message))
            return exc.status

    def _subscribe(self, connection_id: str, stream_id: str) -> int:
        connection = self._store.get(connection_id)
        if connection is None:
            raise MessageRejected(400, "not_connected", "this connection is unknown or expired; reconnect")
        # There are no private streams yet, so existence is the whole visibility rule, signed in or not.
        stream = self._streams.get(stream_id)
        if stream is None:
            raise MessageRejected(404, "not_found", f"stream {stream_id} does not exist")
        if self._store.subscription_count(connection_id) >= MAX_SUBSCRIPTIONS:
            raise MessageRejected(400, "too_many_subscriptions",
                                  f"a connection may follow at most {MAX_SUBSCRIPTIONS} streams")
        self._store.subscribe(connection, stream_id)
        metrics.add_metric(name="WebSocketSubscribes", unit=MetricUnit.Count, value=1)
        # The current seq lets the client tell whether it missed an event between this and the next push.
        self._sender.send(connection_id, {
            "type": "subscribed", "stream_id": stream_id, "seq": int(stream.get(EVENT_SEQ, 0)),
            "status": status_of(stream), "viewer_count": effective_viewer_count(stream),
        })
        return 200
