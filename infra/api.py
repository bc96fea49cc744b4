"""HTTP API (`/v1/...`): the routes of docs/openapi.json, a Cognito JWT authorizer, stage throttling and CORS."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c
from infra.support import REPO_ROOT, pin_logical_id, suppress

# The security scheme of docs/openapi.json that the Cognito JWT authorizer enforces.
BEARER_SCHEME = "bearerAuth"


@dataclass(frozen=True)
class Route:
    """One operation of the OpenAPI document, as an HTTP API route."""

    method: apigwv2.HttpMethod
    path: str
    function_id: str
    public: bool


def openapi_routes(document: Mapping[str, Any] | None = None) -> tuple[Route, ...]:
    """The routes of the committed OpenAPI document (docs/openapi.json), in its order.

    The document is generated from the handlers' decorators (functions/openapi_spec.py), so method, path, the
    serving function (`x-streamforge-handler`) and public-or-private (`security`) are declared once, there.
    """
    if document is None:
        document = json.loads((REPO_ROOT / c.OPENAPI_DOCUMENT).read_text())
    function_of_handler = {handler: function_id for function_id, handler in c.HANDLERS.items()}
    routes: list[Route] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            # Only the bearer scheme has an authorizer here; anything else must not silently become public.
            if not schemes <= {BEARER_SCHEME}:
                raise ValueError(f"{method.upper()} {path}: no authorizer for security schemes {sorted(schemes)}")
            routes.append(Route(
                method=apigwv2.HttpMethod[method.upper()],
                path=path,
                function_id=function_of_handler[operation[c.OPENAPI_HANDLER_EXTENSION]],
                public=not schemes,
            ))
    return tuple(routes)


CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key"]


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """JSON access log lines; the interface has no concrete class in aws_apigatewayv2."""

    def __init__(self, destination: apigwv2.IAccessLogDestination) -> None:
        self._destination = destination

    # jsii reads interface members through properties, not instance attributes.
    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.json_with_standard_fields(
            caller=False, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
            response_length=True, status=True, user=True,
        )


class HttpApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        throttle_rate_limit: int,
        throttle_burst_limit: int,
        cors_allow_origins: Sequence[str],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(
            self,
            c.HTTP_API,
            description="StreamForge REST API v1",
            create_default_stage=False,
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(cors_allow_origins),
                allow_methods=[apigwv2.CorsHttpMethod.ANY],
                allow_headers=CORS_HEADERS,
                max_age=Duration.hours(1),
            ),
        )
        pin_logical_id(self.api, c.HTTP_API)

        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention)
        self.stage = self.api.add_stage(
            "DefaultStage",
            stage_name=c.HTTP_API_STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit),
            access_log_settings=_AccessLogSettings(apigwv2.LogGroupLogDestination(access_logs)),
        )

        authorizer = authorizers.HttpUserPoolAuthorizer(
            c.HTTP_API_AUTHORIZER, user_pool, user_pool_clients=[user_pool_client]
        )
        # One integration per function, shared by its routes; CDK creates it under the first route that uses it.
        integration_ids = {function_id: f"{function_id}Integration" for function_id in functions}
        lambda_integrations = {
            function_id: integrations.HttpLambdaIntegration(integration_ids[function_id], function)
            for function_id, function in functions.items()
        }
        first_routes: dict[str, Construct] = {}
        routes_of_api = openapi_routes()
        for route in routes_of_api:
            routes = self.api.add_routes(
                path=route.path,
                methods=[route.method],
                integration=lambda_integrations[route.function_id],
                authorizer=None if route.public else authorizer,
            )
            first_routes.setdefault(route.function_id, routes[0])
            if route.public:
                for public_route in routes:
                    suppress(
                        public_route,
                        "AwsSolutions-APIG4",
                        f"{route.method.value} {route.path} has no `security` in docs/openapi.json: public by "
                        "the API contract (ARCHITECTURE.md §3), like sign-up/login/refresh, public profiles, the "
                        "stream directory and sessions, viewer sessions and player heartbeats.",
                    )
        for function_id, first_route in first_routes.items():
            pin_logical_id(first_route.node.find_child(integration_ids[function_id]),
                           c.HTTP_API_INTEGRATIONS[function_id])
        # Each path's `ANY` route takes the methods no other route of the path does, to the path's function,
        # which answers 405 with `Allow` (API Gateway itself would answer 404).
        for path, function_id in sorted({(route.path, route.function_id) for route in routes_of_api}):
            for catch_all in self.api.add_routes(path=path, methods=[apigwv2.HttpMethod.ANY],
                                                 integration=lambda_integrations[function_id]):
                suppress(
                    catch_all,
                    "AwsSolutions-APIG4",
                    f"ANY {path} only receives methods that no route of the path takes, and the function answers "
                    "them with 405 before any handler or data is reached.",
                )

    @property
    def url(self) -> str:
        # The `$default` stage is served at the API endpoint itself; clients append `/v1/...`.
        return self.api.api_endpoint
