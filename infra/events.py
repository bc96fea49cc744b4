"""Events bounded context: the `streamforge` bus and the rules that route stream events to Lambda.

The rules' sources and detail-types come from the shared layer's event catalog (`streamforge.events`), the one
list of events, which the notifications fan-out maps from too.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from streamforge.events import SOURCES, IngestHealth, pushed_detail_types

from infra import constants as c
from infra.support import pin_logical_id, suppress


class Events(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, c.EVENT_BUS, event_bus_name=c.EVENT_BUS_NAME)
        pin_logical_id(self.bus, c.EVENT_BUS)
        # Events that still fail after the retries land here instead of being dropped.
        self.dead_letter_queue = sqs.Queue(
            self,
            "TargetDeadLetterQueue",
            retention_period=Duration.days(14),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
        )
        suppress(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the EventBridge rule targets (set on the targets, not "
            "through an SQS redrive policy, so cdk-nag does not see it).",
        )

    def route_stream_lifecycle(self, function: lambda_.IFunction) -> events.Rule:
        """Every catalog event that WebSocket clients are sent, to the fan-out `function`."""
        return self._route(c.STREAM_LIFECYCLE_RULE, pushed_detail_types(), function)

    def route_ingest_health(self, function: lambda_.IFunction) -> events.Rule:
        return self._route(c.INGEST_HEALTH_RULE, [IngestHealth.DETAIL_TYPE], function)

    def _route(self, rule_id: str, detail_types: list[str], function: lambda_.IFunction) -> events.Rule:
        rule = events.Rule(
            self,
            rule_id,
            event_bus=self.bus,
            event_pattern=events.EventPattern(source=list(SOURCES), detail_type=detail_types),
            targets=[
                targets.LambdaFunction(
                    function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=4,
                    # Stream events are only worth delivering while they are fresh.
                    max_event_age=Duration.minutes(5),
                )
            ],
        )
        pin_logical_id(rule, rule_id)
        return rule
