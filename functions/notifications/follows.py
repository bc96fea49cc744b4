"""Who follows a channel: the follow edges the users function writes to `UsersTable`.

An edge is `pk=USER#<followee_id>, sk=FOLLOWER#<follower_id>` with `follower_id` (docs/contracts.md,
"Follows"), so a channel's followers are one query on its partition.
"""

from __future__ import annotations

from typing import Any, Protocol

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
