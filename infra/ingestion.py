"""Analytics ingestion: viewer heartbeats are queued by the API and aggregated in batches by the consumer; the
key that signs viewer tokens decides which heartbeats are queued (docs/viewers.md)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id, suppress

CONSUMER_TIMEOUT = Duration.seconds(30)


class AnalyticsIngestion(Construct):
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
            description="StreamForge: HMAC key of viewer tokens (POST /v1/streams/{stream_id}/playback)",
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

    def feed(self, consumer: lambda_.Function) -> None:
        consumer.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=100,
                max_batching_window=Duration.seconds(5),
                # A bad record is retried alone instead of failing the whole batch.
                report_batch_item_failures=True,
            )
        )
