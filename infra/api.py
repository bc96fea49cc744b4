"""HTTP API (`/v1/...`): routes of ARCHITECTURE.md §3, a Cognito JWT authorizer, stage throttling and CORS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
from infra.support import pin_logical_id, suppress

GET, POST, PUT, PATCH, DELETE = (
    apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST, apigwv2.HttpMethod.PUT, apigwv2.HttpMethod.PATCH,
    apigwv2.HttpMethod.DELETE,
)


@dataclass(frozen=True)
class Route:
    method: apigwv2.HttpMethod
    path: str
    function_id: str
    public: bool = False


ROUTES: tuple[Route, ...] = (
    Route(POST, "/v1/auth/signup", c.USERS_FUNCTION, public=True),
    Route(POST, "/v1/auth/login", c.USERS_FUNCTION, public=True),
    Route(POST, "/v1/auth/refresh", c.USERS_FUNCTION, public=True),
    Route(GET, "/v1/users/me", c.USERS_FUNCTION),
    Route(PATCH, "/v1/users/me", c.USERS_FUNCTION),
    Route(GET, "/v1/users/{username}", c.USERS_FUNCTION, public=True),
    Route(PUT, "/v1/users/{username}/follow", c.USERS_FUNCTION),
    Route(DELETE, "/v1/users/{username}/follow", c.USERS_FUNCTION),
    Route(POST, "/v1/streams", c.METADATA_FUNCTION),
    Route(GET, "/v1/streams", c.METADATA_FUNCTION, public=True),
    Route(GET, "/v1/streams/{id}", c.METADATA_FUNCTION, public=True),
    Route(PATCH, "/v1/streams/{id}", c.METADATA_FUNCTION),
    Route(DELETE, "/v1/streams/{id}", c.METADATA_FUNCTION),
    Route(POST, "/v1/streams/{id}/keys", c.METADATA_FUNCTION),
    Route(GET, "/v1/streams/{id}/keys", c.METADATA_FUNCTION),
    Route(DELETE, "/v1/streams/{id}/keys/{key_id}", c.METADATA_FUNCTION),
    Route(GET, "/v1/streams/{id}/sessions", c.METADATA_FUNCTION, public=True),
    Route(POST, "/v1/streams/{id}/playback", c.ANALYTICS_FUNCTION, public=True),
    Route(POST, "/v1/analytics/heartbeat", c.ANALYTICS_FUNCTION, public=True),
    Route(GET, "/v1/streams/{id}/analytics", c.ANALYTICS_FUNCTION),
)

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
        # One integration per function, shared by its routes.
        lambda_integrations = {
            function_id: integrations.HttpLambdaIntegration(f"{function_id}Integration", function)
            for function_id, function in functions.items()
        }
        for route in ROUTES:
            routes = self.api.add_routes(
                path=route.path,
                methods=[route.method],
                integration=lambda_integrations[route.function_id],
                authorizer=None if route.public else authorizer,
            )
            if route.public:
                for public_route in routes:
                    suppress(
                        public_route,
                        "AwsSolutions-APIG4",
                        f"{route.method.value} {route.path} is public by the API contract (ARCHITECTURE.md §3): "
                        "sign-up/login/refresh, public profiles, the stream directory and sessions, viewer "
                        "sessions and player heartbeats.",
                    )
        # Each path's `ANY` route takes the methods no other route of the path does, to the path's function,
        # which answers 405 with `Allow` (API Gateway itself would answer 404).
        for path, function_id in sorted({(route.path, route.function_id) for route in ROUTES}):
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
