"""`NotificationsFunction`: the WebSocket routes `$connect`, `$disconnect`, `$default`, `subscribe`, `unsubscribe`."""

from __future__ import annotations

from functools import cache
from typing import Any

from streamforge.aws import client
from streamforge.config import EnvConfig
from streamforge.observability import logger, metrics, tracer
from streamforge.streams import StreamsReader

from notifications.auth import CognitoTokenVerifier
from notifications.repository import DynamoConnectionStore
from notifications.sender import ManagementApiSender
from notifications.service import SocketService


class HandlerConfig(EnvConfig):
    """`NotificationsFunction`'s environment (docs/contracts.md)."""

    connections_table: str
    streams_table: str
    websocket_management_url: str
    user_pool_id: str
    # Checked when set: a token must have been issued to this app client.
    user_pool_client_id: str | None = None


@cache
def default_service() -> SocketService:
    config = HandlerConfig.from_env()
    dynamodb = client("dynamodb")
    return SocketService(
        store=DynamoConnectionStore(config.connections_table, dynamodb),
        streams=StreamsReader(config.streams_table, dynamodb),
        verifier=CognitoTokenVerifier(client("cognito-idp"), user_pool_id=config.user_pool_id,
                                      client_id=config.user_pool_client_id),
        # Replies go to the client that just wrote to us; short timeouts keep a stuck socket from holding the route.
        sender=ManagementApiSender(client("apigatewaymanagementapi", endpoint_url=config.websocket_management_url,
                                          connect_timeout_s=2, read_timeout_s=5, max_attempts=2)),
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any, service: SocketService | None = None) -> dict[str, Any]:
    service = service or default_service()
    request = event.get("requestContext") or {}
    route_key = str(request.get("routeKey", ""))
    connection_id = str(request["connectionId"])
    logger.append_keys(route_key=route_key, connection_id=connection_id)
    if route_key == "$connect":
        status = service.connect(connection_id, event.get("queryStringParameters"))
    elif route_key == "$disconnect":
        status = service.disconnect(connection_id)
    else:
        status = service.receive(connection_id, route_key, event.get("body"))
    return {"statusCode": status}
