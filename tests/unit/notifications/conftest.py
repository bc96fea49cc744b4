"""In-process moto for the notification functions: tables, a user pool with one user, a fake socket API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from notifications.auth import CognitoTokenVerifier
from notifications.fanout_service import Broadcaster
from notifications.repository import DynamoConnectionStore, DynamoFollowersReader
from notifications.sender import ManagementApiSender
from notifications.service import SocketService
from streamforge.streams import StreamsReader

REGION = "us-east-1"
STREAM_ID = "st_abcdefghijklmnop"
OWNER_ID = "sub-alice"
PASSWORD = "Correct-Horse-9!"


def _table(ddb: Any, name: str, *, keys: tuple[str, ...], gsis: dict[str, tuple[str, str]]) -> None:
    attributes = set(keys) | {a for pair in gsis.values() for a in pair}
    indexes = [{
        "IndexName": index,
        "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    } for index, (pk, sk) in gsis.items()]
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
        **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
    )


@dataclass(frozen=True)
class LambdaContext:
    """The fields Powertools' Logger reads."""

    function_name: str = "notifications"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:notifications"
    aws_request_id: str = "req-1"


CONTEXT = LambdaContext()


class FakeManagementApi:
    """Stands in for the `apigatewaymanagementapi` client: records posts, answers 410 or 500 where told."""

    def __init__(self) -> None:
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()
        self.broken: set[str] = set()

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:
        for ids, code, status in ((self.gone, "GoneException", 410), (self.broken, "InternalServerError", 500)):
            if ConnectionId in ids:
                raise ClientError({"Error": {"Code": code, "Message": code},
                                   "ResponseMetadata": {"HTTPStatusCode": status}}, "PostToConnection")
        self.posts.setdefault(ConnectionId, []).append(json.loads(Data))
        return {}

    def messages(self, connection_id: str) -> list[dict[str, Any]]:
        return self.posts.get(connection_id, [])


@dataclass
class Env:
    ddb: Any
    cognito: Any
    pool_id: str
    client_id: str
    token: str
    api: FakeManagementApi
    clock: list[float] = field(default_factory=lambda: [1_800_000_000.0])
    user_ids: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> DynamoConnectionStore:
        return DynamoConnectionStore("connections", self.ddb, clock=lambda: self.clock[0])

    def sockets(self) -> SocketService:
        return SocketService(
            store=self.store, streams=StreamsReader("streams", self.ddb),
            verifier=CognitoTokenVerifier(self.cognito, user_pool_id=self.pool_id, client_id=self.client_id),
            sender=ManagementApiSender(self.api))

    def broadcaster(self) -> Broadcaster:
        return Broadcaster(store=self.store, streams=StreamsReader("streams", self.ddb),
                           followers=DynamoFollowersReader("users", self.ddb), sender=ManagementApiSender(self.api),
                           max_workers=4)

    def items(self) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName="connections")["Items"]

    def follow(self, follower: str, followee_id: str) -> None:
        # The edge the users function writes (docs/contracts.md, "Follows").
        follower_id = self.user_ids[follower]
        self.ddb.put_item(TableName="users", Item={
            "pk": {"S": f"USER#{followee_id}"}, "sk": {"S": f"FOLLOWER#{follower_id}"},
            "gsi1pk": {"S": f"FOLLOWING#{follower_id}"}, "gsi1sk": {"S": f"USER#{followee_id}"},
            "follower_id": {"S": follower_id}, "followee_id": {"S": followee_id},
        })

    def sign_in(self, username: str) -> str:
        signed_up = self.cognito.sign_up(ClientId=self.client_id, Username=username, Password=PASSWORD,
                             UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}])
        self.user_ids[username] = signed_up["UserSub"]
        self.cognito.admin_confirm_sign_up(UserPoolId=self.pool_id, Username=username)
        auth = self.cognito.initiate_auth(ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                          AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
        return str(auth["AuthenticationResult"]["AccessToken"])


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        _table(ddb, "connections", keys=("pk", "sk"), gsis={"gsi1": ("gsi1pk", "gsi1sk")})
        _table(ddb, "users", keys=("pk", "sk"), gsis={"gsi1": ("gsi1pk", "gsi1sk")})
        _table(ddb, "streams", keys=("stream_id",), gsis={})
        ddb.put_item(TableName="streams", Item={
            "stream_id": {"S": STREAM_ID}, "owner_id": {"S": OWNER_ID}, "owner_username": {"S": "alice"},
            "title": {"S": "Hello"}, "status": {"S": "offline"}, "event_seq": {"N": "7"},
        })
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool_id = cognito.create_user_pool(PoolName="streamforge")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
        )["UserPoolClient"]["ClientId"]
        env = Env(ddb=ddb, cognito=cognito, pool_id=pool_id, client_id=client_id, token="",
                  api=FakeManagementApi())
        env.token = env.sign_in("bob")
        yield env

