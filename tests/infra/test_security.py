"""Least privilege, stable outputs and cdk-nag."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import Synth, as_list

pytestmark = pytest.mark.infra

WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
# The brief's access matrix: function -> {table: "r" | "rw"}; any other table is a failure.
TABLE_ACCESS: dict[str, dict[str, str]] = {
    "UsersFunction": {"UsersTable": "rw", "StreamsTable": "r"},
    "MetadataFunction": {"StreamsTable": "rw", "StreamKeysTable": "rw", "SessionsTable": "rw",
                         "IdempotencyTable": "rw", "AnalyticsTable": "r", "UsersTable": "r"},
    "AnalyticsFunction": {"AnalyticsTable": "rw", "StreamsTable": "r"},
    "AnalyticsConsumerFunction": {"AnalyticsTable": "rw", "StreamsTable": "rw"},
    "NotificationsFunction": {"ConnectionsTable": "rw", "StreamsTable": "r", "UsersTable": "r"},
    "NotificationsFanoutFunction": {"ConnectionsTable": "rw", "UsersTable": "r", "StreamsTable": "r"},
}
OUTPUTS = ["ApiUrl", "DirectApiUrl", "WebSocketUrl", "RtmpIngestUrl", "CdnDomain", "UserPoolId", "UserPoolClientId",
           "MediaBucketName", "DashboardUrl", "AlarmTopicArn", "OperationsDashboardName"]


def _table_of(resource: Any) -> str | None:
    """The table a policy resource points at (the table itself or its indexes)."""
    if "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    if "Fn::Join" in resource and isinstance(resource["Fn::Join"][1][0], dict):
        return _table_of(resource["Fn::Join"][1][0])
    return None


def _table_access(synth: Synth, function_id: str) -> dict[str, str]:
    access: dict[str, str] = {}
    for statement in synth.function_statements(function_id):
        actions = set(as_list(statement["Action"]))
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        for resource in as_list(statement["Resource"]):
            table = _table_of(resource)
            assert table is not None, f"{function_id} has DynamoDB access to an unscoped resource {resource}"
            level = "rw" if actions & WRITE_ACTIONS else "r"
            access[table] = "rw" if "rw" in (level, access.get(table)) else "r"
    return access


@pytest.mark.parametrize("function_id", sorted(TABLE_ACCESS))
def test_function_table_access_is_exactly_what_it_needs(synth: Synth, function_id: str) -> None:
    assert _table_access(synth, function_id) == TABLE_ACCESS[function_id]


def test_users_function_cannot_write_stream_keys(synth: Synth) -> None:
    assert "StreamKeysTable" not in _table_access(synth, "UsersFunction")


def test_cognito_and_bus_permissions_are_scoped(synth: Synth) -> None:
    users = synth.function_statements("UsersFunction")
    cognito = {a for s in users for a in as_list(s["Action"]) if a.startswith("cognito-idp:")}
    assert cognito == {"cognito-idp:SignUp", "cognito-idp:AdminConfirmSignUp", "cognito-idp:InitiateAuth",
                       "cognito-idp:GetUser", "cognito-idp:AdminGetUser"}
    assert all(s["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]} for s in users
               if any(a.startswith("cognito-idp:") for a in as_list(s["Action"])))
    for function_id in TABLE_ACCESS:
        puts = [s for s in synth.function_statements(function_id) if "events:PutEvents" in as_list(s["Action"])]
        expected = function_id in ("MetadataFunction", "AnalyticsConsumerFunction")
        assert bool(puts) == expected, function_id
        assert all(s["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]} for s in puts)


def test_only_the_analytics_function_reads_the_viewer_token_key(synth: Synth) -> None:
    for function_id in TABLE_ACCESS:
        reads = [s for s in synth.function_statements(function_id)
                 if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
        if function_id != "AnalyticsFunction":
            assert not reads, function_id
            continue
        (statement,) = reads
        assert set(as_list(statement["Action"])) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
        assert statement["Resource"] == {"Ref": "ViewerTokenSecret"}


def test_the_api_schema_states_the_user_pools_password_policy(synth: Synth) -> None:
    """A password the sign-up schema allows is one Cognito takes (users.models holds the policy a second time)."""
    from users import models

    policy = synth.resources["UserPool"]["Properties"]["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] == models.PASSWORD_MIN_LENGTH
    assert all(policy[f"Require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols"))
    for lookahead in ("[a-z]", "[A-Z]", "[0-9]", "[\\^$*."):
        assert lookahead in models.PASSWORD_PATTERN


def test_no_policy_grants_wildcard_actions(synth: Synth) -> None:
    for logical_id, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), f"{logical_id}: {action}"


def test_outputs_have_stable_names(synth: Synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    assert set(OUTPUTS) <= set(outputs)
    assert outputs["UserPoolId"]["Value"] == {"Ref": "UserPool"}
    assert outputs["MediaBucketName"]["Value"] == {"Ref": "MediaBucket"}
    assert outputs["CdnDomain"]["Value"] == {"Fn::GetAtt": ["MediaDistribution", "DomainName"]}


def test_cdk_nag_reports_no_unacknowledged_findings(synth: Synth) -> None:
    report = AwsSolutionsChecks(verbose=True).validate_scope(synth.app)
    findings = [
        f"{v.severity} {v.rule_name}: {[r.construct_path for r in v.violating_resources]}" for v in report.violations
    ]
    assert report.success, "\n".join(findings)
    assert not findings


def test_every_acknowledgement_has_a_written_reason(synth: Synth) -> None:
    acknowledged: dict[str, str] = {}
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acknowledged |= {f"{construct.node.path} {rule}": reason for rule, reason in entry.data.items()}
    assert acknowledged, "expected the documented cdk-nag acknowledgements"
    too_short = {where: reason for where, reason in acknowledged.items() if len(reason.split()) < 8}
    assert not too_short
