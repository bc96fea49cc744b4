"""Notifications bounded context: live notifications over a WebSocket API, and the fan-out of stream events.

NotificationsFunction serves every WebSocket route (`$connect` with the optional token, `subscribe`,
`unsubscribe`, ...); NotificationsFanoutFunction takes the stream lifecycle events from the bus and pushes them to
the subscribers and followers of the stream. Built in the stack's passes (infra/stack.py): its table and WebSocket
API first (the API's callback URL is in both functions' environment), then its functions and grants, then its
triggers (the WebSocket routes and the stream lifecycle rule).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants as c
from infra.events import Events
from infra.functions import Functions
from infra.support import pin_logical_id, suppress
from infra.tables import GSI1, Tables, TableSpec


class Realtime(Construct):
    """The WebSocket API and its stage; `connect` routes it to a handler and lets publishers push."""

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


class Notifications:
    """Not a construct scope of its own: its resources keep the construct paths, so the logical ids, they had."""

    def __init__(
        self, scope: Construct, *, tables: Tables, throttle_rate_limit: int, throttle_burst_limit: int
    ) -> None:
        self.connections = tables.add(
            c.CONNECTIONS_TABLE, TableSpec("pk", "sk", indexes=(GSI1,), ttl_attribute="expires_at")
        )
        self.realtime = Realtime(
            scope, "Realtime", throttle_rate_limit=throttle_rate_limit, throttle_burst_limit=throttle_burst_limit
        )

    def add_functions(
        self,
        *,
        functions: Functions,
        streams_table: dynamodb.ITable,
        users_table: dynamodb.ITable,
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
    ) -> None:
        management_url = self.realtime.management_url
        # HandlerConfig (functions/notifications/handler.py).
        self.function = functions.add(c.NOTIFICATIONS_FUNCTION, environment={
            "STREAMS_TABLE": streams_table.table_name,
            "CONNECTIONS_TABLE": self.connections.table_name,
            "USER_POOL_ID": user_pool.user_pool_id,
            "USER_POOL_CLIENT_ID": user_pool_client.user_pool_client_id,
            "WEBSOCKET_MANAGEMENT_URL": management_url,
        })
        # FanoutConfig (functions/notifications/fanout_handler.py).
        self.fanout = functions.add(c.NOTIFICATIONS_FANOUT_FUNCTION, environment={
            "STREAMS_TABLE": streams_table.table_name,
            "USERS_TABLE": users_table.table_name,
            "CONNECTIONS_TABLE": self.connections.table_name,
            "WEBSOCKET_MANAGEMENT_URL": management_url,
        })

        self.connections.grant_read_write_data(self.function)
        streams_table.grant_read_data(self.function)
        users_table.grant_read_data(self.function)
        # `$connect` checks the optional access token with Cognito.
        user_pool.grant(self.function, "cognito-idp:GetUser")

        self.connections.grant_read_write_data(self.fanout)
        # A stream's `Stream Live` also reaches the followers of its channel.
        users_table.grant_read_data(self.fanout)
        streams_table.grant_read_data(self.fanout)

    def add_triggers(self, *, bus: Events) -> None:
        """Every WebSocket route to NotificationsFunction; the stream lifecycle events to the fan-out."""
        self.realtime.connect(handler=self.function, publishers=[self.fanout])
        bus.route_stream_lifecycle(self.fanout)
