"""Operations: alarms on what breaks a stream or an API call, an encrypted SNS topic for them, and a dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id

PERIOD = Duration.minutes(5)
API_5XX_THRESHOLD = 5
MEDIA_CPU_ALARM_PERCENT = 90
# The media service scales out on CPU; three periods above the alarm level means it has run out of room.
MEDIA_CPU_EVALUATION_PERIODS = 3


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        http_api: apigwv2.HttpApi,
        heartbeat_dead_letter_queue: sqs.IQueue,
        media_service: ecs.FargateService,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        # A customer-managed key: CloudWatch cannot publish to a topic under the AWS-managed SNS key.
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True,
                      description="StreamForge alarm topic encryption")
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, c.ALARM_TOPIC, master_key=key, enforce_ssl=True,
                               display_name="StreamForge alarms")
        pin_logical_id(self.topic, c.ALARM_TOPIC)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.alarms: list[cw.Alarm] = []
        for name, function in functions.items():
            self._alarm(f"{name}Errors", function.metric_errors(period=PERIOD, statistic=cw.Stats.SUM),
                        threshold=1, description=f"{name} raised or timed out (unhandled errors, not 4xx answers)")
        self._alarm("Api5xx", http_api.metric_server_error(period=PERIOD, statistic=cw.Stats.SUM),
                    threshold=API_5XX_THRESHOLD, description="The HTTP API answered 5xx")
        self._alarm("HeartbeatDeadLetters",
                    heartbeat_dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic=cw.Stats.MAXIMUM),
                    threshold=1, description="Heartbeats the analytics consumer gave up on (see the DLQ)")
        self._alarm("MediaCpu", media_service.metric_cpu_utilization(period=PERIOD),
                    threshold=MEDIA_CPU_ALARM_PERCENT, evaluation_periods=MEDIA_CPU_EVALUATION_PERIODS,
                    description="Media tasks near saturation: transcodes may fall behind real time")

        self.dashboard = cw.Dashboard(self, c.OPERATIONS_DASHBOARD,
                                      dashboard_name=f"{Stack.of(self).stack_name}-operations")
        pin_logical_id(self.dashboard, c.OPERATIONS_DASHBOARD)
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
            cw.GraphWidget(title="HTTP API", width=12, left=[
                http_api.metric_count(period=PERIOD), http_api.metric_client_error(period=PERIOD),
                http_api.metric_server_error(period=PERIOD)], right=[
                http_api.metric_latency(period=PERIOD, statistic=cw.Stats.p(90))]),
            cw.GraphWidget(title="Media tasks", width=12, left=[
                media_service.metric_cpu_utilization(period=PERIOD),
                media_service.metric_memory_utilization(period=PERIOD)]),
            cw.GraphWidget(title="Function errors", width=12,
                           left=[f.metric_errors(period=PERIOD, label=n) for n, f in functions.items()]),
            cw.GraphWidget(title="Function duration p90", width=12,
                           left=[f.metric_duration(period=PERIOD, statistic=cw.Stats.p(90), label=n)
                                 for n, f in functions.items()]),
        )

    def _alarm(self, name: str, metric: cw.Metric, *, threshold: float, description: str,
               evaluation_periods: int = 1) -> None:
        alarm = metric.create_alarm(
            self, name, threshold=threshold, evaluation_periods=evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING, alarm_description=description)
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
