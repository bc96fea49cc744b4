"""Where every context's Lambda functions live: one code asset (`functions/`), the shared layer and the public
Powertools layer, and one way to make a function.

Each bounded context adds its own functions here, with the environment its handler's config declares, and grants
them what they touch. Each function gets its own role and log group, so its permissions are exactly its grants.
The scope keeps the construct path every function, role and log group has always had (`StreamForge/Functions/...`),
so their logical ids did not move when infra/ was regrouped by context.
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
DEFAULT_TIMEOUT = Duration.seconds(15)


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        observability: Mapping[str, str],
        powertools_layer_version: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        """`observability`: the Powertools and log settings every function gets besides its own config."""
        super().__init__(scope, construct_id)
        self._observability = dict(observability)
        self._log_retention = log_retention
        self._code = lambda_.Code.from_asset(repo_path(c.FUNCTIONS_ASSET_DIR), exclude=ASSET_EXCLUDE)
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
        self._layers = [shared_layer, powertools_layer]
        # Every function, in the order added (monitoring alarms and graphs follow it).
        self.functions: dict[str, lambda_.Function] = {}

    def add(
        self, function_id: str, *, environment: Mapping[str, str], timeout: Duration = DEFAULT_TIMEOUT
    ) -> lambda_.Function:
        """Function `function_id`, its handler from docs/contracts.md, with `environment`: its config's variables."""
        role = iam.Role(
            self, f"{function_id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"StreamForge {function_id}",
        )
        log_group = logs.LogGroup(self, f"{function_id}Logs", retention=self._log_retention)
        # Instead of the AWSLambdaBasicExecutionRole managed policy: write to this function's log group only.
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            function_id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=c.HANDLERS[function_id],
            code=self._code,
            layers=self._layers,
            role=role,
            log_group=log_group,
            memory_size=512,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                **environment,
                **self._observability,
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
        return function
