"""The media task's view of StreamsTable, StreamKeysTable and SessionsTable.

Every write is conditional and idempotent: repeating it (after a retry or a task restart) leaves
the same item, and a write about a session that is no longer current is refused by DynamoDB.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError
from streamforge.ddb import from_item, is_condition_failure
from streamforge.streams import SessionStatus, StreamStatus, attribute_values, decode_stream

log = logging.getLogger(__name__)

# The statuses this task writes, by the short names the session code uses; streamforge.streams defines them.
LIVE, RECONNECTING, OFFLINE, ENDED = StreamStatus.LIVE, StreamStatus.RECONNECTING, StreamStatus.OFFLINE, \
    SessionStatus.ENDED


@dataclass(frozen=True)
class KeyRecord:
    key_hash: str
    stream_id: str


@dataclass(frozen=True)
class StreamRecord:
    stream_id: str
    current_session_id: str | None
    reconnect_grace_s: int | None
    record: bool
    # The SRT passphrase (10-79 characters, SRT's SRTO_PASSPHRASE) callers must encrypt with; None: none.
    srt_passphrase: str | None = None
    # The stream's rewind window in seconds (0: none); None: the media task's default.
    dvr_window_s: int | None = None
    # When the stream's last session ended (ISO 8601 UTC); None: it has never been broadcast.
    last_ended_at: str | None = None
    # The ingesting task's LL-HLS origin (`http://ip:port`) while its lease runs (epoch seconds), else None.
    ingest_address: str | None = None
    ingest_lease_until: float = 0.0

    @property
    def broadcast_before(self) -> bool:
        """Whether an earlier session may have stored manifests at the stream's URLs (one that ended, or one
        whose task died and left its current session behind)."""
        return self.last_ended_at is not None or self.current_session_id is not None


@dataclass(frozen=True)
class IngestLease:
    """Which media task ingests a stream, until when (epoch seconds): one publisher per stream across tasks."""

    owner: str
    now: float
    duration_s: float
    address: str = ""
    """The owner's HTTP base URL (`http://10.0.1.5:8889`), where other tasks forward its LL-HLS requests."""

    @property
    def until(self) -> float:
        return self.now + self.duration_s


class StreamStore(Protocol):
    def get_key(self, key_hash: str) -> KeyRecord | None: ...

    def get_stream(self, stream_id: str) -> StreamRecord | None:
        """None for a stream that does not exist or was deleted (the API keeps a tombstone with `deleted_at`)."""

    def mark_key_used(self, key_hash: str, at: str) -> None: ...

    def start_session(self, stream_id: str, session_id: str, started_at: str, *, lease: IngestLease) -> bool:
        """Claim the stream's ingest lease, make this session its current one and create the Session, all or
        nothing. The stream stays `offline` until the session's first manifests are stored (`set_status` live).

        False when another media task holds an unexpired lease (or the stream is gone): nothing is written.
        """

    def renew_lease(self, stream_id: str, session_id: str, lease: IngestLease) -> bool:
        """Extend the lease; False when this task no longer holds it for this session."""

    def set_status(self, stream_id: str, session_id: str, status: str, at: str) -> None:
        """Stream and Session → `live` or `reconnecting`, only while this session is current."""

    def update_live_info(self, stream_id: str, session_id: str, fields: Mapping[str, Any], at: str) -> None:
        """Set `renditions` / `ingest_health` on the stream, only while this session is current."""

    def end_session(self, stream_id: str, session_id: str, *, ended_at: str, duration_s: float,
                    vod_url: str | None, vod_dash_url: str | None = None) -> None: ...


class DynamoStreamStore:
    def __init__(self, *, streams_table: str | None = None, keys_table: str | None = None,
                 sessions_table: str | None = None, client: Any = None) -> None:
        self.streams_table = streams_table or os.environ["STREAMS_TABLE"]
        self.keys_table = keys_table or os.environ["STREAM_KEYS_TABLE"]
        self.sessions_table = sessions_table or os.environ["SESSIONS_TABLE"]
        self._db = client or boto3.client("dynamodb")

    # The shared layer marshals items for every context (streamforge.streams), this one included.
    _values = staticmethod(attribute_values)

    def _get(self, table: str, key: Mapping[str, str]) -> dict[str, Any] | None:
        """The item as stored (attribute values), or None."""
        return self._db.get_item(TableName=table, Key=self._values(key), ConsistentRead=True).get("Item")

    def _update(self, table: str, key: Mapping[str, str], expression: str, condition: str,
                values: Mapping[str, Any], names: Mapping[str, str] | None = None) -> bool:
        try:
            self._db.update_item(TableName=table, Key=self._values(key), UpdateExpression=expression,
                                 ConditionExpression=condition, ExpressionAttributeValues=self._values(values),
                                 **({"ExpressionAttributeNames": dict(names)} if names else {}))
            return True
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise

    def get_key(self, key_hash: str) -> KeyRecord | None:
        stored = self._get(self.keys_table, {"key_hash": key_hash})
        if stored is None:
            return None
        item = from_item(stored)
        return KeyRecord(str(item["key_hash"]), str(item["stream_id"]))

    def get_stream(self, stream_id: str) -> StreamRecord | None:
        item = decode_stream(self._get(self.streams_table, {"stream_id": stream_id}))
        if item is None:
            return None
        grace = item.get("reconnect_grace_s")
        return StreamRecord(stream_id, item.get("current_session_id"),
                            int(grace) if grace is not None else None, bool(item.get("record", True)),
                            str(item["srt_passphrase"]) if item.get("srt_passphrase") else None,
                            int(item["dvr_window_s"]) if item.get("dvr_window_s") is not None else None,
                            str(item["last_ended_at"]) if item.get("last_ended_at") else None,
                            str(item["ingest_address"]) if item.get("ingest_address") else None,
                            float(item.get("ingest_lease_until", 0)))

    def mark_key_used(self, key_hash: str, at: str) -> None:
        self._update(self.keys_table, {"key_hash": key_hash}, "SET last_used_at = :at",
                     "attribute_exists(key_hash)", {":at": at})

    def start_session(self, stream_id: str, session_id: str, started_at: str, *, lease: IngestLease) -> bool:
        claim = {
            "TableName": self.streams_table, "Key": self._values({"stream_id": stream_id}),
            "UpdateExpression": "SET #status = :offline, current_session_id = :sid, started_at = :at, "
                                "updated_at = :at, ingest_owner = :owner, ingest_lease_until = :until, "
                                "ingest_address = :address",
            "ConditionExpression": "attribute_exists(stream_id) AND attribute_not_exists(deleted_at) AND "
                                   "(attribute_not_exists(ingest_owner) OR ingest_owner = :owner OR "
                                   "ingest_lease_until < :now)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": self._values({":offline": OFFLINE, ":sid": session_id, ":at": started_at,
                                                       ":owner": lease.owner, ":until": lease.until,
                                                       ":now": lease.now, ":address": lease.address}),
        }
        session = {
            "TableName": self.sessions_table,
            "Item": self._values({"stream_id": stream_id, "session_id": session_id, "status": LIVE,
                                  "started_at": started_at}),
            "ConditionExpression": "attribute_not_exists(session_id)",
        }
        try:
            # The token makes a retried call (after a timeout that in fact succeeded) a no-op, not a refusal.
            self._db.transact_write_items(TransactItems=[{"Update": claim}, {"Put": session}],
                                          ClientRequestToken=session_id)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise

    def renew_lease(self, stream_id: str, session_id: str, lease: IngestLease) -> bool:
        return self._update(self.streams_table, {"stream_id": stream_id}, "SET ingest_lease_until = :until",
                            "ingest_owner = :owner AND current_session_id = :sid",
                            {":until": lease.until, ":owner": lease.owner, ":sid": session_id})

    def set_status(self, stream_id: str, session_id: str, status: str, at: str) -> None:
        self._update(self.streams_table, {"stream_id": stream_id}, "SET #status = :s, updated_at = :at",
                     "current_session_id = :sid", {":s": status, ":sid": session_id, ":at": at},
                     {"#status": "status"})
        self._update(self.sessions_table, {"stream_id": stream_id, "session_id": session_id},
                     "SET #status = :s", "attribute_exists(session_id) AND #status <> :ended",
                     {":s": status, ":ended": ENDED}, {"#status": "status"})

    def update_live_info(self, stream_id: str, session_id: str, fields: Mapping[str, Any], at: str) -> None:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(fields.values())}
        expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        self._update(self.streams_table, {"stream_id": stream_id}, expression,
                     "current_session_id = :sid", {**values, ":sid": session_id}, names)

    def end_session(self, stream_id: str, session_id: str, *, ended_at: str, duration_s: float,
                    vod_url: str | None, vod_dash_url: str | None = None) -> None:
        values: dict[str, Any] = {":ended": ENDED, ":at": ended_at, ":d": duration_s}
        expression = "SET #status = :ended, ended_at = :at, duration_s = :d"
        if vod_url is not None:
            expression += ", vod_url = :vod"
            values[":vod"] = vod_url
        if vod_dash_url is not None:
            expression += ", vod_dash_url = :dash"
            values[":dash"] = vod_dash_url
        self._update(self.sessions_table, {"stream_id": stream_id, "session_id": session_id}, expression,
                     "attribute_exists(session_id)", values, {"#status": "status"})
        self._update(self.streams_table, {"stream_id": stream_id},
                     "SET #status = :offline, updated_at = :at, last_ended_at = :at "
                     "REMOVE current_session_id, started_at, ingest_owner, ingest_lease_until",
                     "current_session_id = :sid", {":offline": OFFLINE, ":at": ended_at, ":sid": session_id},
                     {"#status": "status"})
