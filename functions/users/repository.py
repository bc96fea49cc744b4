"""UsersTable access: profiles, email claims and follow edges (item shapes in docs/contracts.md)."""

from __future__ import annotations

from typing import Any, Protocol

from streamforge.ddb import cancellation_reasons, error_code, from_item, is_condition_failure, to_attr, to_item
from streamforge.errors import Conflict, NotFound


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


class UsersRepository(Protocol):
    def claim_email(self, email: str, username: str) -> None: ...
    def release_email(self, email: str) -> None: ...
    def username_for_email(self, email: str) -> str | None: ...
    def create_profile(self, profile: dict[str, Any]) -> None: ...
    def get_profile(self, user_id: str) -> dict[str, Any] | None: ...
    def get_profile_by_username(self, username: str) -> dict[str, Any] | None: ...
    def update_profile(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...
    def follow(self, follower_id: str, followee_id: str, at: str) -> bool: ...
    def unfollow(self, follower_id: str, followee_id: str) -> bool: ...


class DynamoUsersRepository:
    def __init__(self, *, table: str, dynamodb: Any) -> None:
        self._table = table
        self._ddb = dynamodb

    def claim_email(self, email: str, username: str) -> None:
        try:
            self._ddb.put_item(TableName=self._table, Item=to_item({
                "pk": f"EMAIL#{email}", "sk": "EMAIL", "email": email, "username": username,
            }), ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict("this email is already registered", code="email_taken") from exc
            raise

    def release_email(self, email: str) -> None:
        self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": f"EMAIL#{email}"}, "sk": {"S": "EMAIL"}})

    def username_for_email(self, email: str) -> str | None:
        item = self._ddb.get_item(TableName=self._table,
                                  Key={"pk": {"S": f"EMAIL#{email}"}, "sk": {"S": "EMAIL"}}).get("Item")
        return item["username"]["S"] if item else None

    def create_profile(self, profile: dict[str, Any]) -> None:
        self._ddb.put_item(TableName=self._table, Item=to_item({
            "pk": user_pk(profile["user_id"]), "sk": "PROFILE",
            # The GSI turns a username into its profile in one query.
            "gsi1pk": f"USERNAME#{profile['username']}", "gsi1sk": "PROFILE",
            **profile,
        }))

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, ConsistentRead=True,
                                  Key={"pk": {"S": user_pk(user_id)}, "sk": {"S": "PROFILE"}}).get("Item")
        return from_item(item) if item else None

    def get_profile_by_username(self, username: str) -> dict[str, Any] | None:
        page = self._ddb.query(TableName=self._table, IndexName="gsi1", KeyConditionExpression="gsi1pk = :u",
                               ExpressionAttributeValues={":u": {"S": f"USERNAME#{username}"}}, Limit=1)
        items = page.get("Items", [])
        return from_item(items[0]) if items else None

    def update_profile(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": to_attr(v) for i, v in enumerate(changes.values())}
        try:
            result = self._ddb.update_item(
                TableName=self._table, Key={"pk": {"S": user_pk(user_id)}, "sk": {"S": "PROFILE"}},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        except Exception as exc:
            if is_condition_failure(exc):
                raise NotFound("no profile for this user", code="profile_not_found") from exc
            raise
        return from_item(result["Attributes"])

    def _counts(self, followee_id: str, follower_id: str, delta: int) -> list[dict[str, Any]]:
        # Both counters move in the same transaction as the edge, so they never drift from it.
        return [
            {"Update": {"TableName": self._table,
                        "Key": {"pk": {"S": user_pk(user_id)}, "sk": {"S": "PROFILE"}},
                        "UpdateExpression": f"ADD {counter} :d", "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":d": {"N": str(delta)}}}}
            for user_id, counter in ((followee_id, "follower_count"), (follower_id, "following_count"))
        ]

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """True if written; False if the edge condition failed (already in the wanted state)."""
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except Exception as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if "ConditionalCheckFailed" in reasons:
                raise NotFound("no profile for this user", code="profile_not_found") from exc
            raise
        return True

    def follow(self, follower_id: str, followee_id: str, at: str) -> bool:
        edge = to_item({"pk": user_pk(followee_id), "sk": f"FOLLOWER#{follower_id}",
                        "gsi1pk": f"FOLLOWING#{follower_id}", "gsi1sk": user_pk(followee_id),
                        "follower_id": follower_id, "followee_id": followee_id, "created_at": at})
        return self._transact([
            {"Put": {"TableName": self._table, "Item": edge, "ConditionExpression": "attribute_not_exists(pk)"}},
            *self._counts(followee_id, follower_id, 1),
        ])

    def unfollow(self, follower_id: str, followee_id: str) -> bool:
        key = {"pk": {"S": user_pk(followee_id)}, "sk": {"S": f"FOLLOWER#{follower_id}"}}
        return self._transact([
            {"Delete": {"TableName": self._table, "Key": key, "ConditionExpression": "attribute_exists(pk)"}},
            *self._counts(followee_id, follower_id, -1),
        ])
