"""Create the template's data resources in the AWS emulator and bind their physical names.

Covers what StreamForge's handlers touch: DynamoDB tables (indexes, TTL), S3 buckets (CORS), the
Cognito user pool and client, the EventBridge bus and its rules, SQS queues (dead-letter redrive) and
Secrets Manager secrets, each in the emulator that serves its service (local/emulators.py). Everything
is idempotent, so a long-lived emulator (LocalStack, say) is reused across starts. A namespace, when
given, suffixes every name, so several platforms can share one LocalStack without sharing data.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local.emulators import Endpoints
from local.template import LOCAL_ACCOUNT, LOCAL_REGION, STACK_NAME, Template

log = logging.getLogger("streamforge.local.provision")

LAMBDA_ARN_PREFIX = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:"


def emulator_client(service: str, endpoint_url: str) -> Any:
    """Emulators accept any credentials; fixed ones keep a developer's real AWS profile out of it."""
    session = boto3.session.Session(region_name=LOCAL_REGION, aws_access_key_id="test",
                                    aws_secret_access_key="test")
    return session.client(service, endpoint_url=endpoint_url)


def physical_name(logical_id: str) -> str:
    return f"{STACK_NAME}-{logical_id}"


def cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation CORS rule in the S3 API's words."""
    names = {"AllowedHeaders": "AllowedHeaders", "AllowedMethods": "AllowedMethods",
             "AllowedOrigins": "AllowedOrigins", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds",
             "Id": "ID"}
    return {names[key]: value for key, value in rule.items() if key in names}


def queue_arn(sqs: Any, url: str) -> str:
    """The queue's ARN as the emulator has it: its account is the emulator's (LocalStack's is not moto's), and a
    rule whose target names another account delivers nowhere."""
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def bind_functions(template: Template) -> None:
    """Lambda functions run in local workers; their ARN names them by logical id."""
    for logical_id, props in template.of_type("AWS::Lambda::Function"):
        name = props.get("FunctionName") or physical_name(logical_id)
        template.bind(logical_id, name, Arn=LAMBDA_ARN_PREFIX + name)


class Provisioner:
    def __init__(self, template: Template, *, endpoints: Endpoints, namespace: str = "") -> None:
        self.template = template
        self.namespace = namespace
        self._client: Callable[[str], Any] = lambda service: emulator_client(service, endpoints.of(service))

    def _name(self, logical_id: str, explicit: Any = None) -> str:
        name = str(explicit) if explicit else physical_name(logical_id)
        return f"{name}-{self.namespace}" if self.namespace else name

    def provision(self) -> None:
        bind_functions(self.template)
        self._tables()
        self._buckets()
        self._queues()
        self._user_pools()
        self._event_buses()
        self._secrets()

    def _tables(self) -> None:
        dynamodb = self._client("dynamodb")
        existing = set(dynamodb.list_tables().get("TableNames", []))
        for logical_id, props in self.template.of_type("AWS::DynamoDB::Table"):
            name = self._name(logical_id, props.get("TableName"))
            if name not in existing:
                request: dict[str, Any] = {
                    "TableName": name,
                    "KeySchema": props["KeySchema"],
                    "AttributeDefinitions": props["AttributeDefinitions"],
                    "BillingMode": "PAY_PER_REQUEST",
                }
                indexes = [
                    {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
                    for i in props.get("GlobalSecondaryIndexes", [])
                ]
                if indexes:
                    request["GlobalSecondaryIndexes"] = indexes
                dynamodb.create_table(**request)
                ttl = props.get("TimeToLiveSpecification")
                if ttl and ttl.get("Enabled"):
                    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
                log.info("created table %s", name)
            arn = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{name}"
            self.template.bind(logical_id, name, Arn=arn)

    def _buckets(self) -> None:
        s3 = self._client("s3")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for logical_id, props in self.template.of_type("AWS::S3::Bucket"):
            name = self._name(logical_id, props.get("BucketName")).lower()
            if name not in existing:
                s3.create_bucket(Bucket=name)
                log.info("created bucket %s", name)
            if "CorsConfiguration" in props:
                s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [
                    cors_rule(rule) for rule in props["CorsConfiguration"]["CorsRules"]]})
            self.template.bind(
                logical_id, name, Arn=f"arn:aws:s3:::{name}",
                DomainName=f"{name}.s3.amazonaws.com",
                RegionalDomainName=f"{name}.s3.{LOCAL_REGION}.amazonaws.com",
            )

    def _queues(self) -> None:
        sqs = self._client("sqs")
        for logical_id, props in self.template.of_type("AWS::SQS::Queue"):
            name = self._name(logical_id, props.get("QueueName"))
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = queue_arn(sqs, url)
            attributes: dict[str, str] = {
                key: str(props[key]) for key in ("MessageRetentionPeriod", "VisibilityTimeout") if key in props}
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(self.template.resolve(props["RedrivePolicy"]))
            if attributes:
                sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
            self.template.bind(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    def _user_pools(self) -> None:
        cognito = self._client("cognito-idp")
        pools = {p["Name"]: p["Id"] for p in cognito.list_user_pools(MaxResults=60).get("UserPools", [])}
        for logical_id, props in self.template.of_type("AWS::Cognito::UserPool"):
            name = self._name(logical_id, props.get("UserPoolName"))
            pool_id = pools.get(name)
            if pool_id is None:
                request: dict[str, Any] = {"PoolName": name}
                for key in ("Policies", "UsernameAttributes", "AutoVerifiedAttributes", "Schema",
                            "UsernameConfiguration", "AccountRecoverySetting"):
                    if key in props:
                        request[key] = props[key]
                pool_id = cognito.create_user_pool(**request)["UserPool"]["Id"]
                log.info("created user pool %s", pool_id)
            issuer = f"https://cognito-idp.{LOCAL_REGION}.amazonaws.com/{pool_id}"
            self.template.bind(
                logical_id, pool_id, Arn=f"arn:aws:cognito-idp:{LOCAL_REGION}:{LOCAL_ACCOUNT}:userpool/{pool_id}",
                ProviderName=issuer.removeprefix("https://"), ProviderURL=issuer,
            )
        for logical_id, props in self.template.of_type("AWS::Cognito::UserPoolClient"):
            pool_id = self.template.resolve(props["UserPoolId"])
            name = self._name(logical_id, props.get("ClientName"))
            clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
            client_id = next((c["ClientId"] for c in clients if c["ClientName"] == name), None)
            if client_id is None:
                request = {"UserPoolId": pool_id, "ClientName": name, "GenerateSecret": False}
                for key in ("ExplicitAuthFlows", "AccessTokenValidity", "IdTokenValidity",
                            "RefreshTokenValidity", "TokenValidityUnits"):
                    if key in props:
                        request[key] = props[key]
                client_id = cognito.create_user_pool_client(**request)["UserPoolClient"]["ClientId"]
            self.template.bind(logical_id, client_id, ClientId=client_id)

    def _event_buses(self) -> None:
        events = self._client("events")
        for logical_id, props in self.template.of_type("AWS::Events::EventBus"):
            name = self._name(logical_id, props["Name"])
            try:
                events.create_event_bus(Name=name)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            arn = f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:event-bus/{name}"
            self.template.bind(logical_id, name, Arn=arn, Name=name)
        for logical_id, props in self.template.of_type("AWS::Events::Rule"):
            bus = self.template.resolve(props.get("EventBusName", "default"))
            name = self._name(logical_id, props.get("Name"))
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]),
                            State=props.get("State", "ENABLED"))
            self.template.bind(logical_id, name, Arn=f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{bus}/{name}")

    def _secrets(self) -> None:
        """Each secret with a random value, as `GenerateSecretString` makes one; `Ref` of a secret is its ARN."""
        manager = self._client("secretsmanager")
        for logical_id, props in self.template.of_type("AWS::SecretsManager::Secret"):
            name = self._name(logical_id, props.get("Name"))
            try:
                arn = manager.describe_secret(SecretId=name)["ARN"]
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                arn = manager.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))["ARN"]
                log.info("created secret %s", name)
            self.template.bind(logical_id, arn, Id=arn)

    def shadow_queue_for_rule(self, rule_logical_id: str, target_id: str) -> tuple[str, str]:
        """Lambda targets can't be invoked by the emulator, so a rule delivers to an SQS stand-in instead."""
        props = self.template.properties(rule_logical_id)
        bus = self.template.resolve(props.get("EventBusName", "default"))
        rule = self.template.resolved[rule_logical_id].ref
        sqs = self._client("sqs")
        queue_name = f"{self._name(rule_logical_id)}-{target_id}-local"[:80]
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = queue_arn(sqs, url)
        self._client("events").put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": target_id, "Arn": arn}])
        return url, arn
