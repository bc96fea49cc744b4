"""Who follows a channel, read from `UsersTable` (docs/contracts.md, "Follows")."""

from __future__ import annotations

from typing import Any, Protocol

# A channel with more followers than this gets its `stream.live` to the first ones only; the fan-out
# runs in one Lambda invocation, and beyond this it needs a queue in between.
MAX_FOLLOWERS = 5000


class FollowersReader(Protocol):
    def followers_of(self, username: str) -> list[str]:
        """Usernames of the users following `username`."""
        ...


class DynamoFollowersReader:
    def __init__(self, table: str, dynamodb: Any) -> None:
        self._table = table
        self._ddb = dynamodb

    def followers_of(self, username: str) -> list[str]:
        followers: list[str] = []
        start: dict[str, Any] | None = None
        while len(followers) < MAX_FOLLOWERS:
            page = self._ddb.query(
                TableName=self._table, IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :f",
                ExpressionAttributeValues={":f": {"S": f"FOLLOWERS#{username}"}},
                ProjectionExpression="follower_username",
                **({"ExclusiveStartKey": start} if start else {}),
            )
            followers.extend(item["follower_username"]["S"] for item in page.get("Items", [])
                             if "follower_username" in item)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return followers[:MAX_FOLLOWERS]
