"""The platform on LocalStack keeps its data in LocalStack, asked through LocalStack's own API, and its users in
the moto beside it (LocalStack's free edition has no Cognito)."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest

from local.emulators import endpoint_variable
from tests.support.platform import PlatformThread

pytestmark = [pytest.mark.localstack,
              pytest.mark.parametrize("emulator", ["localstack"], indirect=True, scope="session")]


def test_tables_buckets_and_queues_are_localstack_s_and_users_are_moto_s(api_platform: PlatformThread) -> None:
    platform = api_platform.platform
    endpoint = platform.endpoints.default
    with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=5) as response:
        services = json.load(response)["services"]
    assert {"dynamodb", "s3", "sqs", "events"} <= {name for name, state in services.items() if state == "running"}
    assert "cognito-idp" not in services

    def localstack(service: str) -> boto3.client:
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test")

    template = platform.template
    names = {lid: template.resolved[lid].ref for lid, _ in template.of_type("AWS::DynamoDB::Table")}
    tables = localstack("dynamodb").list_tables()["TableNames"]
    assert set(names.values()) <= set(tables)
    ttl = localstack("dynamodb").describe_time_to_live(TableName=names["ConnectionsTable"])
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    media = template.resolved["MediaBucket"].ref
    assert media in {b["Name"] for b in localstack("s3").list_buckets()["Buckets"]}
    assert localstack("s3").get_bucket_cors(Bucket=media)["CORSRules"][0]["AllowedMethods"] == ["GET", "HEAD"]
    heartbeats = template.resolved["HeartbeatQueue"].ref
    attributes = localstack("sqs").get_queue_attributes(QueueUrl=heartbeats, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        template.resolved["HeartbeatDeadLetterQueue"].attributes["QueueName"])

    pool = template.resolved["UserPool"].ref
    cognito = platform.endpoints.of("cognito-idp")
    assert cognito != endpoint
    assert platform.endpoints.environment()[endpoint_variable("cognito-idp")] == cognito
    moto = boto3.client("cognito-idp", endpoint_url=cognito, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")
    assert moto.describe_user_pool(UserPoolId=pool)["UserPool"]["Id"] == pool
