"""Fan-out of one stream event to the sockets that should hear about it.

Subscribers of the stream always get it; a `Stream Live` also reaches every connected follower of the
stream's owner. Posts run in parallel on a bounded pool, and one bad connection never stops the others:
a gone one (410) has its items deleted, any other failure is logged and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from streamforge.events import STREAM_LIVE, STREAM_OFFLINE, STREAM_UPDATED
from streamforge.observability import logger

from notifications.connections import ConnectionStore
from notifications.follows import FollowersReader
from notifications.models import StreamLookup
from notifications.sender import Delivery, Sender

MESSAGE_TYPES = {
    STREAM_LIVE: "stream.live",
    STREAM_OFFLINE: "stream.offline",
    STREAM_UPDATED: "stream.updated",
}

# An update that only changes the live viewer count (from the analytics consumer).
VIEWERS_MESSAGE = "viewers"

# Posts are network-bound; 16 keeps a 1000-socket fan-out well inside a Lambda timeout without
# hammering the management API.
MAX_WORKERS = 16


class EventDetail(BaseModel):
    """The fields every stream event carries (docs/contracts.md); the rest pass through untouched."""

    model_config = ConfigDict(extra="allow")

    stream_id: str
    seq: int
    at: str


class Broadcaster:
    def __init__(self, *, store: ConnectionStore, streams: StreamLookup, followers: FollowersReader,
                 sender: Sender, max_workers: int = MAX_WORKERS) -> None:
        self._store = store
        self._streams = streams
        self._followers = followers
        self._sender = sender
        self._max_workers = max_workers

    def dispatch(self, detail_type: str, detail: dict[str, Any]) -> Counter[str]:
        """Delivers the event; returns how many posts were sent, gone and failed."""
        message_type = MESSAGE_TYPES.get(detail_type)
        if detail_type == STREAM_UPDATED and detail.get("changed") == ["viewer_count"]:
            message_type = VIEWERS_MESSAGE
        if message_type is None:
            logger.warning("ignoring an event of an unknown type", detail_type=detail_type)
            return Counter()
        try:
            event = EventDetail.model_validate(detail)
        except ValidationError as exc:
            # Retrying cannot fix a malformed event, so it is logged and dropped.
            logger.error("malformed stream event", detail_type=detail_type, errors=exc.errors(include_input=False))
            return Counter()
        # Ours last, so a detail field can never change the message type.
        message = {**detail, "type": message_type, "stream_id": event.stream_id, "seq": event.seq, "at": event.at}

        with ThreadPoolExecutor(max_workers=self._max_workers) as pool:
            recipients = set(self._store.subscribers(event.stream_id))
            if detail_type == STREAM_LIVE:
                recipients.update(self._follower_connections(event.stream_id, detail, pool))
            outcomes = Counter(pool.map(lambda cid: self._deliver(cid, message), sorted(recipients)))
        logger.info("fan-out done", detail_type=detail_type, stream_id=event.stream_id, seq=event.seq,
                    recipients=len(recipients), sent=outcomes["sent"], gone=outcomes["gone"],
                    failed=outcomes["failed"])
        return outcomes

    def _follower_connections(self, stream_id: str, detail: dict[str, Any], pool: ThreadPoolExecutor) -> set[str]:
        owner_id = detail.get("owner_id")
        if not owner_id:
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
