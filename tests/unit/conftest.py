"""Shared fixtures for unit tests: an in-process moto account with the template's tables, pool, queue and bus.

Every unit test runs with the network off (pytest-socket; Unix sockets stay allowed because asyncio's event loop
wakes itself through a socketpair) and with process creation off. A test that needs a real socket or a child
process (ffmpeg, GStreamer, a TCP server on loopback) belongs to the `component` tier, under tests/component.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any, NoReturn

import boto3
import pytest
import pytest_socket
from botocore.loaders import Loader
from moto import mock_aws
from streamforge.aws import client


class SubprocessInUnitTest(RuntimeError):
    """A unit test tried to start a process: it belongs to the component tier."""


def _refuse_process(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise SubprocessInUnitTest("unit tests start no process; move this test to tests/component")


@pytest.fixture(autouse=True)
def _no_network_no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pytest_socket.disable_socket(allow_unix_socket=True)
    # _execute_child is where every Popen (subprocess.run, asyncio's subprocesses, ffmpeg-python) forks.
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse_process)
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve"):
        monkeypatch.setattr(os, name, _refuse_process)
    yield
    pytest_socket.enable_socket()


TABLES: dict[str, dict[str, Any]] = {
    "STREAMS_TABLE": {"key": ("stream_id", None), "gsis": {"by_status": ("status", "created_at"),
                                                          "by_owner": ("owner_id", "created_at")}},
    "STREAM_KEYS_TABLE": {"key": ("key_hash", None), "gsis": {"by_stream": ("stream_id", "created_at")}},
    "SESSIONS_TABLE": {"key": ("stream_id", "session_id"), "gsis": {}},
    "USERS_TABLE": {"key": ("pk", "sk"), "gsis": {"gsi1": ("gsi1pk", "gsi1sk")}},
    "ANALYTICS_TABLE": {"key": ("pk", "sk"), "gsis": {}},
    "IDEMPOTENCY_TABLE": {"key": ("id", None), "gsis": {}},
}


def _schema(pk: str, sk: str | None) -> list[dict[str, str]]:
    return [{"AttributeName": pk, "KeyType": "HASH"}] + ([{"AttributeName": sk, "KeyType": "RANGE"}] if sk else [])


def _create_table(ddb: Any, name: str, spec: dict[str, Any]) -> None:
    pk, sk = spec["key"]
    attributes = {pk, *([sk] if sk else [])}
    for gpk, gsk in spec["gsis"].values():
        attributes |= {gpk, gsk}
    kwargs: dict[str, Any] = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST", "KeySchema": _schema(pk, sk),
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
    }
    if spec["gsis"]:
        kwargs["GlobalSecondaryIndexes"] = [
            {"IndexName": index, "KeySchema": _schema(gpk, gsk), "Projection": {"ProjectionType": "ALL"}}
            for index, (gpk, gsk) in spec["gsis"].items()]
    ddb.create_table(**kwargs)


def _reset_caches() -> None:
    import analytics.consumer_handler
    import analytics.handler
    import metadata.handler
    import users.handler

    client.cache_clear()
    for cached in (users.handler.service, metadata.handler.service, metadata.handler.config,
                   metadata.handler._idempotent_create, analytics.handler.config, analytics.handler.streams,
                   analytics.handler.store, analytics.handler.viewer_sessions, analytics.handler._secrets,
                   analytics.consumer_handler.config, analytics.consumer_handler.default_store,
                   analytics.consumer_handler.default_publisher):
        cached.cache_clear()


@functools.cache
def _shared_session() -> boto3.session.Session:
    return boto3.session.Session()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_TRACE_DISABLED": "true",
                        "POWERTOOLS_DEV": "false"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        # moto clears boto3's default session for each test; every test's credentials and region are the ones
        # above, so one warm session serves them all (a new one per test is a third of this fixture's time).
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", _shared_session())
        ddb = boto3.client("dynamodb")
        env: dict[str, str] = {}
        for variable, spec in TABLES.items():
            name = variable.lower().replace("_table", "")
            _create_table(ddb, name, spec)
            env[variable] = name
        idp = boto3.client("cognito-idp")
        pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
        app_client = idp.create_user_pool_client(
            UserPoolId=pool, ClientName="web",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
        queue = boto3.client("sqs").create_queue(QueueName="heartbeats")["QueueUrl"]
        boto3.client("events").create_event_bus(Name="streamforge")
        viewer_key = boto3.client("secretsmanager").create_secret(Name="viewer-token-key",
                                                                  SecretString="unit-test-signing-key")["ARN"]
        env.update(USER_POOL_ID=pool, USER_POOL_CLIENT_ID=app_client, HEARTBEAT_QUEUE_URL=queue,
                   VIEWER_TOKEN_SECRET_ARN=viewer_key, VIEWER_TOKEN_TTL_S="120",
                   EVENT_BUS_NAME="streamforge", AUTO_CONFIRM_SIGNUP="true", CDN_BASE_URL="http://cdn.test",
                   RTMP_INGEST_URL="rtmp://ingest.test:1935/live")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        _reset_caches()
        yield env
        _reset_caches()


@pytest.fixture(scope="session", autouse=True)
def _service_models_loaded_once() -> Iterator[None]:
    """mock_aws gives every test a fresh boto3 session, whose loader would read the same service models from
    JSON again: most of the `aws` fixture's time. The models are only read, so one copy serves every session."""
    loaded: dict[tuple[Any, ...], Any] = {}

    def once(method: Any) -> Any:
        def load(self: Loader, *args: Any, **kwargs: Any) -> Any:
            key = (method.__name__, args, tuple(sorted(kwargs.items())))
            if key not in loaded:
                loaded[key] = method(self, *args, **kwargs)
            return loaded[key]
        return load

    with pytest.MonkeyPatch.context() as patch:
        for name in ("load_service_model", "load_data"):
            patch.setattr(Loader, name, once(getattr(Loader, name)))
        yield


@pytest.fixture(scope="session", autouse=True)
def _cognito_signing_key_imported_once() -> Iterator[None]:
    """moto's Cognito imports the same private JWK for every user pool, recovering its RSA primes each time
    (about 0.1 s a pool). The key only signs, so one import serves every pool."""
    from types import SimpleNamespace

    from moto.cognitoidp import models

    key = models.jwk.RSAKey.import_key(models.load_resource("cognitoidp/resources/jwks-private.json"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "jwk", SimpleNamespace(RSAKey=SimpleNamespace(import_key=lambda _jwks: key)))
        yield


class LambdaContext:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def http_event(method: str, path: str, *, body: Any = None, raw_body: str | None = None,
               claims: dict[str, str] | None = None, query: dict[str, str] | None = None,
               headers: dict[str, str] | None = None, base64_body: bool = False) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as the local gateway and AWS send it."""
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    context: dict[str, Any] = {"requestId": "req-1", "http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
                               "stage": "$default"}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": context, "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = query
    if text is not None:
        event["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
    return event


def claims_for(user_id: str, username: str) -> dict[str, str]:
    return {"sub": user_id, "username": username, "client_id": "web", "token_use": "access"}


def call(handler: Any, event: dict[str, Any]) -> tuple[int, Any]:
    response = handler(event, LambdaContext())
    body = response.get("body")
    return response["statusCode"], json.loads(body) if body else None


ALICE = claims_for("11111111-1111-1111-1111-111111111111", "alice")
BOB = claims_for("22222222-2222-2222-2222-222222222222", "bob")
