"""Notification rules of the fan-out: one stream event to the sockets that should hear about it.

Subscribers of the stream always get it; a `Stream Live` also reaches every connected follower of the stream's owner.
Posts run in parallel on a bounded pool, and one bad connection never stops the others: a gone one (410) has its
items deleted, any other failure is logged and counted. No boto3 here. Apart from `notifications.service` because it
is another function's: each function's cold start loads only its own rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from streamforge.events import MalformedEvent, StreamLive, read
from streamforge.observability import logger

from notifications.models import StreamLookup
from notifications.repository import ConnectionStore, FollowersReader
from notifications.sender import Delivery, Sender

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
