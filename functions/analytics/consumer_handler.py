"""`AnalyticsConsumerFunction`: SQS heartbeat batches (partial batch failures) and EventBridge `Ingest Health` events.

Wiring only; the rules are in `analytics.consumer_service`. Kept apart from `analytics.handler` (the API function)
so this function's cold start loads neither the API resolver nor pydantic models.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from streamforge.aws import client
from streamforge.config import EnvConfig
from streamforge.events import SOURCE_API, EventBridgePublisher, EventPublisher, IngestHealth
from streamforge.observability import logger, metrics, tracer

from analytics.consumer_service import parse_ingest_health, process_sqs_batch
from analytics.repository import AnalyticsStore, DynamoAnalyticsStore


class ConsumerConfig(EnvConfig):
    streams_table: str
    analytics_table: str
    event_bus_name: str


@cache
def config() -> ConsumerConfig:
    return ConsumerConfig.from_env()


@cache
def default_publisher() -> EventPublisher:
    cfg = config()
    return EventBridgePublisher(source=SOURCE_API, bus_name=cfg.event_bus_name, streams_table=cfg.streams_table)


@cache
def default_store() -> AnalyticsStore:
    cfg = config()
    return DynamoAnalyticsStore(analytics_table=cfg.analytics_table, streams_table=cfg.streams_table,
                                dynamodb=client("dynamodb"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        return process_sqs_batch(event, default_store(), context, publisher=default_publisher())
    if event.get("detail-type") == IngestHealth.DETAIL_TYPE:
        default_store().record_ingest(*parse_ingest_health(event))
        return {}
    logger.warning("ignored an event of unknown shape", keys=sorted(event))
    return {}
