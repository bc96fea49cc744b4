"""`NotificationsFanoutFunction`: stream events from the `streamforge` bus, pushed to WebSocket clients."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from streamforge.aws import client
from streamforge.config import EnvConfig
from streamforge.observability import logger, metrics, tracer
from streamforge.streams import StreamsReader

from notifications.fanout_service import MAX_WORKERS, Broadcaster
from notifications.repository import DynamoConnectionStore, DynamoFollowersReader
from notifications.sender import ManagementApiSender


class FanoutConfig(EnvConfig):
    """`NotificationsFanoutFunction`'s environment (docs/contracts.md)."""

    connections_table: str
    streams_table: str
    users_table: str
    websocket_management_url: str


@cache
def default_broadcaster() -> Broadcaster:
    config = FanoutConfig.from_env()
    # The pools match the worker threads so no call waits for a socket.
    dynamodb = client("dynamodb", max_pool_connections=MAX_WORKERS)
    return Broadcaster(
        store=DynamoConnectionStore(config.connections_table, dynamodb),
        streams=StreamsReader(config.streams_table, dynamodb),
        followers=DynamoFollowersReader(config.users_table, dynamodb),
        # One attempt each: a failed post is logged and the client catches up by `seq`; retries would
        # stretch a large fan-out.
        sender=ManagementApiSender(client("apigatewaymanagementapi", endpoint_url=config.websocket_management_url,
                                          connect_timeout_s=2, read_timeout_s=5, max_attempts=1,
                                          max_pool_connections=MAX_WORKERS)),
    )


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any, broadcaster: Broadcaster | None = None) -> dict[str, int]:
    broadcaster = broadcaster or default_broadcaster()
    outcomes = broadcaster.dispatch(str(event.get("detail-type", "")), event.get("detail") or {})
    metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=outcomes["sent"])
    metrics.add_metric(name="NotificationsGone", unit=MetricUnit.Count, value=outcomes["gone"])
    metrics.add_metric(name="NotificationsFailed", unit=MetricUnit.Count, value=outcomes["failed"])
    return dict(outcomes)
