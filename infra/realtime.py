"""Notifications: the WebSocket API whose routes all go to NotificationsFunction.

The API and stage exist before the functions (their callback URL is part of every function's environment);
routes are attached once the functions exist.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id, suppress


class Realtime(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        throttle_rate_limit: int,
        throttle_burst_limit: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.WebSocketApi(
            self,
            c.WEBSOCKET_API,
            description="StreamForge live notifications",
            route_selection_expression=c.WEBSOCKET_ROUTE_SELECTION,
        )
        pin_logical_id(self.api, c.WEBSOCKET_API)
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=c.WEBSOCKET_STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit),
        )
        suppress(
            self.stage,
            "AwsSolutions-APIG1",
            "WebSocket stage access logging needs the account-wide API Gateway CloudWatch role, which this stack "
            "does not own; connects, messages and fan-out are logged by NotificationsFunction instead.",
        )

    @property
    def url(self) -> str:
        return self.stage.url

    @property
    def management_url(self) -> str:
        """The `@connections` endpoint (`https://.../<stage>`) that `post_to_connection` talks to."""
        return self.stage.callback_url

    def connect(self, *, handler: lambda_.IFunction, publishers: list[lambda_.IFunction]) -> None:
        """Route every WebSocket route to `handler` and let `publishers` push to connections."""
        for route_key in c.WEBSOCKET_ROUTES:
            route = self.api.add_route(
                route_key,
                integration=integrations.WebSocketLambdaIntegration(f"{_safe(route_key)}Integration", handler),
                # `$default` replies are sent to the client (errors for unknown actions).
                return_response=route_key == "$default",
            )
            suppress(
                route,
                "AwsSolutions-APIG4",
                "Anonymous viewers may connect (ARCHITECTURE.md §4); NotificationsFunction verifies the optional "
                "?token= access token at $connect and answers 401 to a bad one; anonymous sockets may only "
                "subscribe to existing streams.",
            )
        # Narrower than `grant_manage_connections()`: only this stage's @connections, not every stage.
        connections_arn = Stack.of(self).format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{c.WEBSOCKET_STAGE_NAME}/*/@connections/*"
        )
        for publisher in [handler, *publishers]:
            iam.Grant.add_to_principal(
                grantee=publisher, actions=["execute-api:ManageConnections"], resource_arns=[connections_arn]
            )
            suppress(
                publisher.role or publisher,
                "AwsSolutions-IAM5",
                "Connection ids are only known at runtime; access is limited to @connections of this API's stage.",
                findings=[f"Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                          f"<{c.WEBSOCKET_API}>/{c.WEBSOCKET_STAGE_NAME}/*/@connections/*"],
            )


def _safe(route_key: str) -> str:
    return route_key.replace("$", "").capitalize()
