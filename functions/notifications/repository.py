"""Notifications data access: small interfaces and their DynamoDB implementations.

Connections and subscriptions (`ConnectionsTable`, written only here).

Items in `ConnectionsTable` (docs/contracts.md, "Connections"):

| Item | pk | sk | gsi1pk | gsi1sk |
|---|---|---|---|---|
| the connection | `CONN#<id>` | `META` | `CONN#<id>` | `META` |
| a subscription | `STREAM#<stream_id>` | `CONN#<id>` | `CONN#<id>` | `STREAM#<stream_id>` |
| a signed-in user's connection | `USER#<user_id>` | `CONN#<id>` | `CONN#<id>` | `USER#<user_id>` |

Every item of a connection shares `gsi1pk`, so one query finds all of them when it goes away.
`user_id` is the Cognito `sub`, the id that streams (`owner_id`) and follow edges use.
All carry `expires_at`; DynamoDB's TTL deletion is late (and never happens in some emulators), so readers filter on it.

Followers: the follow edges the users function writes to `UsersTable`: `pk=USER#<followee_id>,
sk=FOLLOWER#<follower_id>` with `follower_id` (docs/contracts.md, "Follows"), so a channel's followers are one
query on its partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from notifications.models import Connection, Identity

# API Gateway closes every WebSocket connection after 2 h, so nothing about one outlives that.
CONNECTION_TTL_S = 2 * 60 * 60
# BatchWriteItem takes at most 25 requests.
_BATCH = 25
_MAX_BATCH_ATTEMPTS = 5


def _conn_key(connection_id: str) -> str:
    return f"CONN#{connection_id}"


class ConnectionStore(Protocol):
    def add(self, connection_id: str, identity: Identity | None) -> Connection: ...
    def get(self, connection_id: str) -> Connection | None: ...
    def subscribe(self, connection: Connection, stream_id: str) -> None: ...
    def unsubscribe(self, connection_id: str, stream_id: str) -> None: ...
    def subscription_count(self, connection_id: str) -> int: ...
    def subscribers(self, stream_id: str) -> list[str]: ...
    def connections_of(self, user_id: str) -> list[str]: ...
    def remove(self, connection_id: str) -> None: ...


class DynamoConnectionStore:
    def __init__(self, table: str, dynamodb: Any, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._ddb = dynamodb
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def add(self, connection_id: str, identity: Identity | None) -> Connection:
        now = self._now()
        connection = Connection(connection_id, identity, now + CONNECTION_TTL_S)
        conn = _conn_key(connection_id)
        common = {"gsi1pk": {"S": conn}, "connection_id": {"S": connection_id},
                  "expires_at": {"N": str(connection.expires_at)}}
        meta = {"pk": {"S": conn}, "sk": {"S": "META"}, "gsi1sk": {"S": "META"},
                "connected_at": {"N": str(now)}, **common}
        writes = [{"Put": {"TableName": self._table, "Item": meta}}]
        if identity is not None:
            meta.update(username={"S": identity.username}, user_id={"S": identity.user_id})
            user = {"pk": {"S": f"USER#{identity.user_id}"}, "sk": {"S": conn},
                    "gsi1sk": {"S": f"USER#{identity.user_id}"}, **common}
            writes.append({"Put": {"TableName": self._table, "Item": user}})
        # Both or neither: a half-written signed-in connection would miss its followers' notifications.
        self._ddb.transact_write_items(TransactItems=writes)
        return connection

    def get(self, connection_id: str) -> Connection | None:
        conn = _conn_key(connection_id)
        item = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": conn}, "sk": {"S": "META"}},
                                  ConsistentRead=True).get("Item")
        if not item or int(item["expires_at"]["N"]) <= self._now():
            return None
        identity = None
        if "username" in item:
            identity = Identity(username=item["username"]["S"], user_id=item["user_id"]["S"])
        return Connection(connection_id, identity, int(item["expires_at"]["N"]))

    def subscribe(self, connection: Connection, stream_id: str) -> None:
        # The subscription ends with its connection, never later.
        self._ddb.put_item(TableName=self._table, Item={
            "pk": {"S": f"STREAM#{stream_id}"}, "sk": {"S": _conn_key(connection.connection_id)},
            "gsi1pk": {"S": _conn_key(connection.connection_id)}, "gsi1sk": {"S": f"STREAM#{stream_id}"},
            "connection_id": {"S": connection.connection_id}, "stream_id": {"S": stream_id},
            "expires_at": {"N": str(connection.expires_at)},
        })

    def unsubscribe(self, connection_id: str, stream_id: str) -> None:
        self._ddb.delete_item(TableName=self._table,
                              Key={"pk": {"S": f"STREAM#{stream_id}"}, "sk": {"S": _conn_key(connection_id)}})

    def subscription_count(self, connection_id: str) -> int:
        return sum(1 for _ in self._query_gsi1(connection_id, prefix="STREAM#"))

    def subscribers(self, stream_id: str) -> list[str]:
        return self._connection_ids(f"STREAM#{stream_id}")

    def connections_of(self, user_id: str) -> list[str]:
        return self._connection_ids(f"USER#{user_id}")

    def remove(self, connection_id: str) -> None:
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in self._query_gsi1(connection_id, live_only=False)]
        for start in range(0, len(keys), _BATCH):
            self._delete_batch(keys[start:start + _BATCH])

    def _delete_batch(self, keys: list[dict[str, Any]]) -> None:
        requests: list[dict[str, Any]] = [{"DeleteRequest": {"Key": key}} for key in keys]
        for _ in range(_MAX_BATCH_ATTEMPTS):
            result = self._ddb.batch_write_item(RequestItems={self._table: requests})
            requests = result.get("UnprocessedItems", {}).get(self._table, [])
            if not requests:
                return
        # What is left expires by TTL, and the fan-out skips expired items meanwhile.
        raise RuntimeError(f"{len(requests)} connection items left undeleted after {_MAX_BATCH_ATTEMPTS} attempts")

    def _connection_ids(self, pk: str) -> list[str]:
        return [item["connection_id"]["S"] for item in self._paginate({
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :conn)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":conn": {"S": "CONN#"}},
            "ProjectionExpression": "connection_id, expires_at",
        }, live_only=True)]

    def _query_gsi1(self, connection_id: str, *, prefix: str = "", live_only: bool = True) -> Iterator[dict[str, Any]]:
        condition = "gsi1pk = :c" + (" AND begins_with(gsi1sk, :p)" if prefix else "")
        values = {":c": {"S": _conn_key(connection_id)}, **({":p": {"S": prefix}} if prefix else {})}
        # A GSI always carries the table's keys (pk, sk); `expires_at` needs the GSI to project ALL.
        return self._paginate({"IndexName": "gsi1", "KeyConditionExpression": condition,
                               "ExpressionAttributeValues": values}, live_only=live_only)

    def _paginate(self, query: dict[str, Any], *, live_only: bool) -> Iterator[dict[str, Any]]:
        now = self._now()
        start: dict[str, Any] | None = None
        while True:
            page = self._ddb.query(TableName=self._table, **query,
                                   **({"ExclusiveStartKey": start} if start else {}))
            for item in page.get("Items", []):
                if not live_only or int(item["expires_at"]["N"]) > now:
                    yield item
            start = page.get("LastEvaluatedKey")
            if not start:
                return


# A channel with more followers than this gets its `stream.live` to the first ones only; the fan-out
# runs in one Lambda invocation, and beyond this it needs a queue in between.
MAX_FOLLOWERS = 5000


class FollowersReader(Protocol):
    def followers_of(self, user_id: str) -> list[str]:
        """User ids (Cognito `sub`) of the users following `user_id`."""
        ...


class DynamoFollowersReader:
    def __init__(self, table: str, dynamodb: Any) -> None:
        self._table = table
        self._ddb = dynamodb

    def followers_of(self, user_id: str) -> list[str]:
        followers: list[str] = []
        start: dict[str, Any] | None = None
        while len(followers) < MAX_FOLLOWERS:
            page = self._ddb.query(
                TableName=self._table,
                KeyConditionExpression="pk = :u AND begins_with(sk, :f)",
                ExpressionAttributeValues={":u": {"S": f"USER#{user_id}"}, ":f": {"S": "FOLLOWER#"}},
                ProjectionExpression="follower_id",
                **({"ExclusiveStartKey": start} if start else {}),
            )
            followers.extend(item["follower_id"]["S"] for item in page.get("Items", []) if "follower_id" in item)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return followers[:MAX_FOLLOWERS]
