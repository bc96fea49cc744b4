"""Data access for streams, keys and sessions: a small interface and its DynamoDB implementation."""

from __future__ import annotations

from typing import Any, Protocol

from streamforge.ddb import from_item, is_condition_failure, to_attr, to_item
from streamforge.streams import DELETED_AT, STATUS, StreamsReader, decode_stream, stream_key

# Key schema of each way of listing streams, as LastEvaluatedKey returns it.
LIST_KEYS = {
    "by_status": frozenset({"stream_id", "status", "created_at"}),
    "by_owner": frozenset({"stream_id", "owner_id", "created_at"}),
    "scan": frozenset({"stream_id"}),
}


class StreamNotFound(Exception):
    """The stream does not exist or is deleted."""


class StreamRepository(Protocol):
    def create(self, stream: dict[str, Any], key: dict[str, Any]) -> None: ...
    def get(self, stream_id: str) -> dict[str, Any] | None: ...
    def list_streams(self, *, index: str, status: str | None, owner_id: str | None, limit: int,
             start_key: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]: ...
    def update(self, stream_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...
    def mark_deleted(self, stream_id: str, at: str) -> None: ...
    def put_key(self, key: dict[str, Any]) -> None: ...
    def list_keys(self, stream_id: str) -> list[dict[str, Any]]: ...
    def delete_key(self, key_hash: str) -> None: ...
    def list_sessions(self, stream_id: str) -> list[dict[str, Any]]: ...


class DynamoStreamRepository:
    def __init__(self, *, streams_table: str, keys_table: str, sessions_table: str, dynamodb: Any) -> None:
        self._streams = streams_table
        self._keys = keys_table
        self._sessions = sessions_table
        self._ddb = dynamodb
        self._reader = StreamsReader(streams_table, dynamodb)

    def create(self, stream: dict[str, Any], key: dict[str, Any]) -> None:
        # One transaction, so a stream never exists without its first key (or the reverse).
        self._ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": self._streams, "Item": to_item(stream),
                     "ConditionExpression": "attribute_not_exists(stream_id)"}},
            {"Put": {"TableName": self._keys, "Item": to_item(key),
                     "ConditionExpression": "attribute_not_exists(key_hash)"}},
        ])

    def get(self, stream_id: str) -> dict[str, Any] | None:
        return self._reader.get(stream_id)

    def list_streams(self, *, index: str, status: str | None, owner_id: str | None, limit: int,
             start_key: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters = [f"attribute_not_exists({DELETED_AT})"]
        base: dict[str, Any] = {"TableName": self._streams}
        if index == "by_status":
            base.update(IndexName="by_status", KeyConditionExpression="#s = :s", ScanIndexForward=False)
            names["#s"] = STATUS
            values[":s"] = {"S": status}
        elif index == "by_owner":
            base.update(IndexName="by_owner", KeyConditionExpression="owner_id = :o", ScanIndexForward=False)
            values[":o"] = {"S": owner_id}
            if status:
                filters.append("#s = :s")
                names["#s"] = STATUS
                values[":s"] = {"S": status}
        base["FilterExpression"] = " AND ".join(filters)
        if names:
            base["ExpressionAttributeNames"] = names
        if values:
            base["ExpressionAttributeValues"] = values
        operation = self._ddb.scan if index == "scan" else self._ddb.query

        items: list[dict[str, Any]] = []
        last = start_key
        # Limit applies before the filter, so ask only for what is still missing: pages never overfill,
        # and the LastEvaluatedKey is exactly where the next page starts.
        for _ in range(5):
            kwargs = dict(base, Limit=limit - len(items))
            if last:
                kwargs["ExclusiveStartKey"] = last
            page = operation(**kwargs)
            items.extend(stream for i in page.get("Items", []) if (stream := decode_stream(i)))
            last = page.get("LastEvaluatedKey")
            if not last or len(items) >= limit:
                break
        return items, last

    def update(self, stream_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": to_attr(value) for i, value in enumerate(changes.values())}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
        try:
            result = self._ddb.update_item(
                TableName=self._streams,
                Key=stream_key(stream_id),
                UpdateExpression=f"SET {assignments}",
                ConditionExpression=f"attribute_exists(stream_id) AND attribute_not_exists({DELETED_AT})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if is_condition_failure(exc):
                raise StreamNotFound(stream_id) from exc
            raise
        return from_item(result["Attributes"])

    def mark_deleted(self, stream_id: str, at: str) -> None:
        try:
            self._ddb.update_item(
                TableName=self._streams,
                Key=stream_key(stream_id),
                UpdateExpression=f"SET {DELETED_AT} = :at, updated_at = :at",
                ConditionExpression=f"attribute_exists(stream_id) AND attribute_not_exists({DELETED_AT})",
                ExpressionAttributeValues={":at": {"S": at}},
            )
        except Exception as exc:
            if is_condition_failure(exc):
                raise StreamNotFound(stream_id) from exc
            raise

    def put_key(self, key: dict[str, Any]) -> None:
        self._ddb.put_item(TableName=self._keys, Item=to_item(key),
                           ConditionExpression="attribute_not_exists(key_hash)")

    def list_keys(self, stream_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._keys, "IndexName": "by_stream",
            "KeyConditionExpression": "stream_id = :s", "ExpressionAttributeValues": {":s": {"S": stream_id}},
        }
        while True:
            page = self._ddb.query(**kwargs)
            items.extend(from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete_key(self, key_hash: str) -> None:
        self._ddb.delete_item(TableName=self._keys, Key={"key_hash": {"S": key_hash}})

    def list_sessions(self, stream_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._sessions, "KeyConditionExpression": "stream_id = :s",
            "ExpressionAttributeValues": {":s": {"S": stream_id}}, "ScanIndexForward": False,
        }
        while True:
            page = self._ddb.query(**kwargs)
            items.extend(from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page or len(items) >= 500:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
