"""Analytics bounded context: viewer heartbeats, concurrent and peak viewers, watch time and ingest health.

AnalyticsFunction answers the HTTP API (viewer sessions, heartbeats, a stream's analytics) and queues heartbeats;
AnalyticsConsumerFunction aggregates them in batches and takes `Ingest Health` events from the bus. The key that
signs viewer tokens decides which heartbeats are queued (docs/viewers.md).

Built in the stack's passes (infra/stack.py): its table and ingestion queue first, then its functions and grants,
then its triggers (the heartbeat queue and the `Ingest Health` rule).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.events import Events
from infra.functions import Functions
from infra.support import pin_logical_id, suppress
from infra.tables import Tables, TableSpec

CONSUMER_TIMEOUT = Duration.seconds(30)


class AnalyticsIngestion(Construct):
    """The heartbeat queue (with its dead-letter queue) and the viewer-token signing key."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            c.HEARTBEAT_DLQ,
            retention_period=Duration.days(14),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
        )
        pin_logical_id(self.dead_letter_queue, c.HEARTBEAT_DLQ)
        self.queue = sqs.Queue(
            self,
            c.HEARTBEAT_QUEUE,
            # AWS guidance for Lambda sources: at least six times the function timeout.
            visibility_timeout=Duration.seconds(CONSUMER_TIMEOUT.to_seconds() * 6),
            # A heartbeat older than the 60 s concurrency window no longer changes a viewer count.
            retention_period=Duration.hours(1),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=5),
        )
        pin_logical_id(self.queue, c.HEARTBEAT_QUEUE)

        self.viewer_token_key = secretsmanager.Secret(
            self,
            c.VIEWER_TOKEN_SECRET,
            description="StreamForge: HMAC key of viewer tokens (POST /v1/streams/{id}/playback)",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        pin_logical_id(self.viewer_token_key, c.VIEWER_TOKEN_SECRET)
        suppress(
            self.viewer_token_key,
            "AwsSolutions-SMG4",
            "The key only signs viewer tokens that expire within minutes; rotating it by hand (put a new random "
            "value) ends the current viewer sessions, which players renew at once, so a rotation Lambda would add "
            "a moving part for no protection beyond that.",
        )


class Analytics:
    """Not a construct scope of its own: its resources keep the construct paths, so the logical ids, they had."""

    def __init__(self, scope: Construct, *, tables: Tables) -> None:
        self.analytics = tables.add(c.ANALYTICS_TABLE, TableSpec("pk", "sk", ttl_attribute="expires_at"))
        self.ingestion = AnalyticsIngestion(scope, "AnalyticsIngestion")

    def add_functions(
        self,
        *,
        functions: Functions,
        streams_table: dynamodb.ITable,
        event_bus: events.IEventBus,
        cdn_base_url: str,
        viewer_token_ttl_seconds: int,
    ) -> None:
        ingestion = self.ingestion
        # AnalyticsConfig (functions/analytics/handler.py).
        self.function = functions.add(c.ANALYTICS_FUNCTION, environment={
            "STREAMS_TABLE": streams_table.table_name,
            "ANALYTICS_TABLE": self.analytics.table_name,
            "HEARTBEAT_QUEUE_URL": ingestion.queue.queue_url,
            "CDN_BASE_URL": cdn_base_url,
            "VIEWER_TOKEN_SECRET_ARN": ingestion.viewer_token_key.secret_arn,
            "VIEWER_TOKEN_TTL_S": str(viewer_token_ttl_seconds),
        })
        # ConsumerConfig (functions/analytics/consumer_handler.py).
        self.consumer = functions.add(c.ANALYTICS_CONSUMER_FUNCTION, timeout=CONSUMER_TIMEOUT, environment={
            "STREAMS_TABLE": streams_table.table_name,
            "ANALYTICS_TABLE": self.analytics.table_name,
            "EVENT_BUS_NAME": event_bus.event_bus_name,
        })

        self.analytics.grant_read_write_data(self.function)
        streams_table.grant_read_data(self.function)
        ingestion.queue.grant_send_messages(self.function)
        ingestion.viewer_token_key.grant_read(self.function)

        # The consumer keeps the stream item's viewer count and announces its changes.
        self.analytics.grant_read_write_data(self.consumer)
        streams_table.grant_read_write_data(self.consumer)
        event_bus.grant_put_events_to(self.consumer)

    @property
    def http_functions(self) -> dict[str, lambda_.IFunction]:
        """The functions whose handlers serve HTTP API operations."""
        return {c.ANALYTICS_FUNCTION: self.function}

    def add_triggers(self, *, bus: Events) -> None:
        """`Ingest Health` from the bus, and the queued heartbeats, to the consumer."""
        bus.route_ingest_health(self.consumer)
        self.consumer.add_event_source(
            sources.SqsEventSource(
                self.ingestion.queue,
                batch_size=100,
                max_batching_window=Duration.seconds(5),
                # A bad record is retried alone instead of failing the whole batch.
                report_batch_item_failures=True,
            )
        )
