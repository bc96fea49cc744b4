"""The six Lambda functions: one code asset (`functions/`), the shared layer and the public Powertools layer.

Each function gets its own role and log group, so its permissions are exactly the grants made for it here.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id, repo_path, suppress

ASSET_EXCLUDE = ["**/tests", "**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache", "**/conftest.py"]
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
TIMEOUTS = {c.ANALYTICS_CONSUMER_FUNCTION: Duration.seconds(30)}
DEFAULT_TIMEOUT = Duration.seconds(15)


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Mapping[str, str],
        powertools_layer_version: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        code = lambda_.Code.from_asset(repo_path(c.FUNCTIONS_ASSET_DIR), exclude=ASSET_EXCLUDE)
        shared_layer = lambda_.LayerVersion(
            self,
            c.SHARED_LAYER,
            code=lambda_.Code.from_asset(repo_path(c.SHARED_LAYER_ASSET_DIR), exclude=ASSET_EXCLUDE),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="StreamForge shared code (streamforge package)",
        )
        pin_logical_id(shared_layer, c.SHARED_LAYER)
        powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            c.POWERTOOLS_LAYER_ARN_TEMPLATE.format(
                partition=Aws.PARTITION, region=Aws.REGION, version=powertools_layer_version
            ),
        )

        self.functions: dict[str, lambda_.Function] = {}
        for function_id, handler in c.HANDLERS.items():
            role = iam.Role(
                self, f"{function_id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"StreamForge {function_id}",
            )
            log_group = logs.LogGroup(self, f"{function_id}Logs", retention=log_retention)
            # Instead of the AWSLambdaBasicExecutionRole managed policy: write to this function's log group only.
            log_group.grant_write(role)
            function = lambda_.Function(
                self,
                function_id,
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=handler,
                code=code,
                layers=[shared_layer, powertools_layer],
                role=role,
                log_group=log_group,
                memory_size=512,
                timeout=TIMEOUTS.get(function_id, DEFAULT_TIMEOUT),
                tracing=lambda_.Tracing.ACTIVE,
                environment={
                    **environment,
                    "POWERTOOLS_SERVICE_NAME": c.POWERTOOLS_SERVICE_NAMES[function_id],
                },
            )
            pin_logical_id(function, function_id)
            suppress(
                role,
                "AwsSolutions-IAM5",
                "X-Ray trace submission (xray:PutTraceSegments/PutTelemetryRecords) has no resource-level "
                "permissions; DynamoDB access includes the GSIs (index/*) of the tables granted to this function, "
                "which the handlers query.",
                findings=["Resource::*", *(f"Resource::<{table}.Arn>/index/*" for table in c.TABLE_IDS)],
            )
            suppress(
                function,
                "AwsSolutions-L1",
                "docs/contracts.md pins python3.12: the Powertools v3 layer, the local platform and the shared "
                "layer are built and tested on it.",
            )
            self.functions[function_id] = function

    def __getitem__(self, function_id: str) -> lambda_.Function:
        return self.functions[function_id]
