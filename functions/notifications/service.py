"""Notification rules: what happens on each WebSocket route, and the fan-out of a stream event to sockets.

Routes (`SocketService`): each method returns the HTTP status the route answers with. Only `$connect`'s status
reaches the client (a non-2xx refuses the handshake); on the other routes the client learns about a problem from an
`{"type": "error", ...}` message on its socket.

Fan-out (`Broadcaster`): subscribers of the stream always get the event; a `Stream Live` also reaches every connected
follower of the stream's owner. Posts run in parallel on a bounded pool, and one bad connection never stops the
others: a gone one (410) has its items deleted, any other failure is logged and counted. No boto3 here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError
from streamforge.events import MalformedEvent, StreamLive, read
from streamforge.observability import logger, metrics
from streamforge.streams import EVENT_SEQ, effective_viewer_count, status_of

from notifications.auth import TokenVerifier
from notifications.models import StreamLookup, SubscriptionRequest, error_message
from notifications.repository import ConnectionStore, FollowersReader
from notifications.sender import Delivery, Sender

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


# Posts are network-bound; 16 keeps a 1000-socket fan-out well inside a Lambda timeout without
# hammering the management API.
MAX_WORKERS = 16


class Broadcaster:
    def __init__(self, *, store: ConnectionStore, streams: StreamLookup, followers: FollowersReader,
                 sender: Sender, max_workers: int = MAX_WORKERS) -> None:
        self._store = store
        self._streams = streams
        self._followers = followers
        self._sender = sender
        self._max_workers = max_workers

    def dispatch(self, detail_type: str, detail: dict[str, Any]) -> Counter[str]:
        """Delivers the event as its catalog message (streamforge.events); returns how many posts were sent, gone
        and failed. Events the catalog does not push are ignored."""
        try:
            received = read(detail_type, detail)
        except MalformedEvent:
            # Retrying cannot fix a malformed event, so it is logged and dropped.
            logger.exception("malformed stream event", detail_type=detail_type)
            return Counter()
        if received is None or received.event.MESSAGE_TYPE is None:
            logger.warning("ignoring an event that is not pushed to clients", detail_type=detail_type)
            return Counter()
        event = received.event
        message = event.message(seq=received.seq, at=received.at)

        with ThreadPoolExecutor(max_workers=self._max_workers) as pool:
            recipients = set(self._store.subscribers(event.stream_id))
            if isinstance(event, StreamLive):
                recipients.update(self._follower_connections(event.stream_id, pool))
            outcomes = Counter(pool.map(lambda cid: self._deliver(cid, message), sorted(recipients)))
        logger.info("fan-out done", detail_type=detail_type, stream_id=event.stream_id, seq=received.seq,
                    recipients=len(recipients), sent=outcomes["sent"], gone=outcomes["gone"],
                    failed=outcomes["failed"])
        return outcomes

    def _follower_connections(self, stream_id: str, pool: ThreadPoolExecutor) -> set[str]:
        stream = self._streams.get(stream_id)
        owner_id = stream.get("owner_id") if stream else None
        if not owner_id:
            logger.warning("no owner for the stream; followers not notified", stream_id=stream_id)
            return set()
        followers = self._followers.followers_of(str(owner_id))
        connections: Iterable[list[str]] = pool.map(self._store.connections_of, followers)
        return {cid for group in connections for cid in group}

    def _deliver(self, connection_id: str, message: dict[str, Any]) -> str:
        try:
            outcome = self._sender.send(connection_id, message)
        except Exception:
            logger.exception("unexpected error posting to a connection", connection_id=connection_id)
            return Delivery.FAILED.value
        if outcome is Delivery.GONE:
            try:
                self._store.remove(connection_id)
            except Exception:
                # TTL and the next fan-out's 410 will clean up what this could not.
                logger.exception("could not delete a gone connection", connection_id=connection_id)
        return outcome.value
