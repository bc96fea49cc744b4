"""Operations: every function, the API, the heartbeat DLQ and the media service alarm to one encrypted topic."""

from __future__ import annotations

import pytest

from infra import constants as c
from tests.infra.conftest import Synth, mentions, synthesize

pytestmark = pytest.mark.infra


def _alarms_on(synth: Synth, logical_id: str) -> list[dict[str, object]]:
    return [alarm["Properties"] for alarm in synth.of_type("AWS::CloudWatch::Alarm").values()
            if mentions(alarm["Properties"].get("Dimensions", []), logical_id)]


def test_every_function_the_api_the_dlq_and_the_media_service_have_an_alarm(synth: Synth) -> None:
    for function_id in c.HANDLERS:
        (errors,) = _alarms_on(synth, function_id)
        assert (errors["MetricName"], errors["Threshold"]) == ("Errors", 1)
    (dead_letters,) = _alarms_on(synth, c.HEARTBEAT_DLQ)
    assert dead_letters["MetricName"] == "ApproximateNumberOfMessagesVisible"
    (server_errors,) = [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()
                        if a["Properties"]["MetricName"] == "5xx"]
    assert server_errors["Namespace"] == "AWS/ApiGateway"
    (cpu,) = [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()
              if a["Properties"]["MetricName"] == "CPUUtilization"]
    assert cpu["Namespace"] == "AWS/ECS" and cpu["EvaluationPeriods"] == 3
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": c.ALARM_TOPIC}] == properties["OKActions"]
        assert properties["TreatMissingData"] == "notBreaching" and properties["AlarmDescription"]


def test_the_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(synth: Synth) -> None:
    topic = synth.resources[c.ALARM_TOPIC]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synth.resources[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and "kms:Decrypt" in s["Action"]
               for s in statements)
    assert not synth.of_type("AWS::SNS::Subscription")  # no alarmEmail in cdk.json


def test_alarm_email_from_context_subscribes_to_the_topic(tmp_path_factory: pytest.TempPathFactory) -> None:
    synth = synthesize(tmp_path_factory.mktemp("cdk.out"), context={"alarmEmail": "ops@example.com"})
    (subscription,) = synth.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": c.ALARM_TOPIC}


def test_operations_dashboard_and_topic_are_stack_outputs(synth: Synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    assert outputs[c.OUTPUT_ALARM_TOPIC_ARN]["Value"] == {"Ref": c.ALARM_TOPIC}
    assert outputs[c.OUTPUT_OPERATIONS_DASHBOARD_NAME]["Value"] == {"Ref": c.OPERATIONS_DASHBOARD}
    body = synth.resources[c.OPERATIONS_DASHBOARD]["Properties"]["DashboardBody"]
    assert mentions(body, "alarm") and mentions(body, "CPUUtilization") and mentions(body, "Duration")
