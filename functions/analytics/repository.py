"""AnalyticsTable access (item shapes in docs/contracts.md): a small interface and its DynamoDB implementation."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

from streamforge.ddb import from_item, is_condition_failure, to_item
from streamforge.streams import VIEWER_COUNT, VIEWER_COUNT_AT, stream_key

from analytics.aggregate import BUCKET_S, WINDOW_S, StreamDelta, bucket_of, concurrent_at

PRESENCE_TTL_S = 5 * 60
TIMELINE_TTL_S = 7 * 24 * 3600
SESSION_TTL_S = 90 * 24 * 3600
TIMELINE_POINTS = 360  # one hour at 10 s
# The ingest figures analytics stores and serves: `Ingest Health`'s declared fields (streamforge.events), written
# out rather than read from the catalog so that the API function's cold start does not import it (about 8 ms); a
# unit test holds the two equal.
INGEST_NUMBERS = ("bitrate_kbps", "fps", "width", "height", "keyframe_interval_s", "packet_loss_pct", "rtt_ms")
INGEST_CODECS = ("video_codec", "audio_codec")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pk(stream_id: str) -> dict[str, str]:
    return {"S": f"STREAM#{stream_id}"}


def _presence_sk(bucket: int, shard: int) -> str:
    return f"P#{bucket:012d}#{shard}"


def _timeline_sk(bucket: int) -> str:
    return f"T#{bucket:012d}"


class AnalyticsStore(Protocol):
    def load_presence(self, stream_id: str, first_bucket: int, last_bucket: int) -> dict[int, set[str]]: ...
    def apply(self, delta: StreamDelta, now: float) -> int | None:
        """Writes the delta; returns the stream's live viewer count when this write changed it."""
        ...
    def record_ingest(self, stream_id: str, session_id: str | None, health: dict[str, Any]) -> None: ...
    def summary(self, stream_id: str, session_id: str | None, now: float) -> dict[str, Any]: ...


class DynamoAnalyticsStore:
    def __init__(self, *, analytics_table: str, streams_table: str, dynamodb: Any) -> None:
        self._table = analytics_table
        self._streams = streams_table
        self._ddb = dynamodb

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._ddb.query(TableName=self._table, **kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def load_presence(self, stream_id: str, first_bucket: int, last_bucket: int) -> dict[int, set[str]]:
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi", ConsistentRead=True,
            ExpressionAttributeValues={":pk": _pk(stream_id), ":lo": {"S": _presence_sk(first_bucket, 0)},
                                       ":hi": {"S": _presence_sk(last_bucket, 9)}})
        presence: dict[int, set[str]] = {}
        for item in items:
            bucket = int(item["sk"]["S"].split("#")[1])
            presence.setdefault(bucket, set()).update(item.get("viewers", {}).get("SS", []))
        return presence

    def _set_max(self, key: dict[str, Any], attribute: str, value: int, extra: dict[str, Any] | None = None) -> None:
        """Raise `attribute` to `value` unless it is already higher: concurrent batches only ever add viewers."""
        extra = extra or {}
        sets = ", ".join([f"{attribute} = :v", *(f"{k} = :{k}" for k in extra)])
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key, UpdateExpression=f"SET {sets}",
                ConditionExpression=f"attribute_not_exists({attribute}) OR {attribute} < :v",
                ExpressionAttributeValues={":v": {"N": str(value)}, **{f":{k}": v for k, v in extra.items()}})
        except Exception as exc:
            if not is_condition_failure(exc):
                raise

    def apply(self, delta: StreamDelta, now: float) -> int | None:
        pk = _pk(delta.stream_id)
        for (bucket, shard), viewers in delta.presence.items():
            self._ddb.update_item(
                TableName=self._table, Key={"pk": pk, "sk": {"S": _presence_sk(bucket, shard)}},
                UpdateExpression="ADD viewers :v SET expires_at = :e",
                ExpressionAttributeValues={":v": {"SS": sorted(viewers)},
                                           ":e": {"N": str(bucket + PRESENCE_TTL_S)}})
        for (session_id, shard), viewers in delta.uniques.items():
            self._ddb.update_item(
                TableName=self._table, Key={"pk": pk, "sk": {"S": f"U#{session_id}#{shard}"}},
                UpdateExpression="ADD viewers :v SET expires_at = :e",
                ExpressionAttributeValues={":v": {"SS": sorted(viewers)}, ":e": {"N": str(int(now) + SESSION_TTL_S)}})
        for bucket, count in delta.timeline.items():
            self._set_max({"pk": pk, "sk": {"S": _timeline_sk(bucket)}}, "viewers", count,
                          {"expires_at": {"N": str(bucket + TIMELINE_TTL_S)}})
        session_key = {"pk": pk, "sk": {"S": f"S#{delta.session_id}"}}
        if delta.watch_seconds:
            self._ddb.update_item(TableName=self._table, Key=session_key,
                                  UpdateExpression="ADD watch_seconds :w SET expires_at = :e",
                                  ExpressionAttributeValues={":w": {"N": str(delta.watch_seconds)},
                                                             ":e": {"N": str(int(now) + SESSION_TTL_S)}})
        self._set_max(session_key, "peak_viewers", delta.peak)
        return self._store_viewer_count(delta.stream_id, now)

    def _store_viewer_count(self, stream_id: str, now: float) -> int | None:
        """Counts from the stored presence, read after this batch's writes.

        Batches of one stream may be consumed concurrently, each knowing only its own heartbeats; counting
        from a consistent re-read includes the others' writes, and the condition on the read time keeps an
        older count from overwriting a newer one.
        """
        read_at = time.time()
        now_bucket = bucket_of(now)
        count = concurrent_at(self.load_presence(stream_id, now_bucket - WINDOW_S, now_bucket), now_bucket)
        try:
            # The stream item carries the live count GET /v1/streams/{id} shows; it is stale after 60 s.
            previous = self._ddb.update_item(
                TableName=self._streams, Key=stream_key(stream_id),
                UpdateExpression=f"SET {VIEWER_COUNT} = :c, {VIEWER_COUNT_AT} = :t, viewer_count_read_at = :r",
                ConditionExpression="attribute_exists(stream_id) AND "
                                    "(attribute_not_exists(viewer_count_read_at) OR viewer_count_read_at <= :r)",
                ExpressionAttributeValues={":c": {"N": str(count)}, ":t": {"N": str(int(now))},
                                           ":r": {"N": repr(read_at)}},
                ReturnValues="ALL_OLD").get("Attributes", {})
        except Exception as exc:
            if not is_condition_failure(exc):
                raise
            return None
        return count if previous.get(VIEWER_COUNT, {}).get("N") != str(count) else None

    def record_ingest(self, stream_id: str, session_id: str | None, health: dict[str, Any]) -> None:
        pk = _pk(stream_id)
        at = float(health["at_epoch"])
        fields = {k: v for k, v in health.items() if k != "at_epoch" and v is not None}
        try:
            self._ddb.put_item(TableName=self._table, Item={
                "pk": pk, "sk": {"S": "INGEST"}, **to_item({**fields, "session_id": session_id, "at_epoch": at})},
                ConditionExpression="attribute_not_exists(at_epoch) OR at_epoch < :t",
                ExpressionAttributeValues={":t": {"N": repr(at)}})
        except Exception as exc:
            if not is_condition_failure(exc):
                raise
        if "bitrate_kbps" in fields:
            bucket = bucket_of(at)
            self._ddb.update_item(
                TableName=self._table, Key={"pk": pk, "sk": {"S": _timeline_sk(bucket)}},
                UpdateExpression="SET bitrate_kbps = :b, expires_at = :e",
                ExpressionAttributeValues={":b": {"N": repr(float(fields["bitrate_kbps"]))},
                                           ":e": {"N": str(bucket + TIMELINE_TTL_S)}})

    def latest_session(self, stream_id: str) -> str | None:
        page = self._ddb.query(TableName=self._table, KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
                               ExpressionAttributeValues={":pk": _pk(stream_id), ":s": {"S": "S#"}},
                               ScanIndexForward=False, Limit=1)
        items = page.get("Items", [])
        return items[0]["sk"]["S"][2:] if items else None

    def summary(self, stream_id: str, session_id: str | None, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        now_bucket = bucket_of(now)
        presence = self.load_presence(stream_id, now_bucket - WINDOW_S + BUCKET_S, now_bucket)
        concurrent = len(set().union(*presence.values())) if presence else 0
        session_id = session_id or self.latest_session(stream_id)
        stats: dict[str, Any] = {}
        total_views = 0
        if session_id:
            item = self._ddb.get_item(TableName=self._table, ConsistentRead=True,
                                      Key={"pk": _pk(stream_id), "sk": {"S": f"S#{session_id}"}}).get("Item")
            stats = from_item(item) if item else {}
            for unique in self._query_all(
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :u)",
                    ExpressionAttributeValues={":pk": _pk(stream_id), ":u": {"S": f"U#{session_id}#"}}):
                total_views += len(unique.get("viewers", {}).get("SS", []))
        ingest_item = self._ddb.get_item(TableName=self._table,
                                         Key={"pk": _pk(stream_id), "sk": {"S": "INGEST"}}).get("Item")
        ingest = from_item(ingest_item) if ingest_item else {}
        first = now_bucket - (TIMELINE_POINTS - 1) * BUCKET_S
        points = self._query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={":pk": _pk(stream_id), ":lo": {"S": _timeline_sk(first)},
                                       ":hi": {"S": _timeline_sk(now_bucket)}})
        timeline = [from_item(p) for p in points]
        return {
            "concurrent_viewers": concurrent,
            "peak_viewers": max(int(stats.get("peak_viewers", 0)), concurrent),
            "total_views": total_views,
            "watch_minutes": round(float(stats.get("watch_seconds", 0)) / 60, 2),
            "ingest": {k: ingest.get(k) for k in (*INGEST_NUMBERS, *INGEST_CODECS)},
            "timeline": [{"t": _iso(int(p["sk"][2:])), "viewers": int(p.get("viewers", 0)),
                          "bitrate_kbps": p.get("bitrate_kbps")} for p in timeline],
        }
