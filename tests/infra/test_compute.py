"""Lambda functions, HTTP and WebSocket APIs, events and the heartbeat queue."""

from __future__ import annotations

import dataclasses

import pytest
from streamforge.config import EnvConfig
from streamforge.events import CATALOG, SOURCES

from infra.application import cdk_json_context
from tests.infra.conftest import Synth, integration_function, mentions, routes_of

pytestmark = pytest.mark.infra

# From docs/contracts.md, written out here so the test does not trust infra/constants.py.
HANDLERS = {
    "UsersFunction": "users.handler.lambda_handler",
    "MetadataFunction": "metadata.handler.lambda_handler",
    "AnalyticsFunction": "analytics.handler.lambda_handler",
    "AnalyticsConsumerFunction": "analytics.consumer_handler.lambda_handler",
    "NotificationsFunction": "notifications.handler.lambda_handler",
    "NotificationsFanoutFunction": "notifications.fanout_handler.lambda_handler",
}
# Set for every function besides its config: Powertools' own settings.
OBSERVABILITY_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}


def test_functions_share_one_code_asset_without_tests_or_bytecode(synth: Synth) -> None:
    keys = {synth.resources[f]["Properties"]["Code"]["S3Key"] for f in HANDLERS}
    assert len(keys) == 1
    staged = synth.asset_dir("UsersFunction")
    assert (staged / "users").is_dir()
    assert not [p for p in staged.rglob("*") if p.name in ("tests", "__pycache__") or p.suffix == ".pyc"]
    assert (synth.asset_dir("SharedLayer") / "python" / "streamforge").is_dir()


def _config_of(function_id: str) -> type[EnvConfig]:
    """The EnvConfig class each handler reads its environment with."""
    from analytics.consumer_handler import ConsumerConfig
    from analytics.handler import AnalyticsConfig
    from metadata.handler import MetadataConfig
    from notifications.fanout_handler import FanoutConfig
    from notifications.handler import HandlerConfig
    from users.handler import UsersConfig

    configs: dict[str, type[EnvConfig]] = {
        "UsersFunction": UsersConfig, "MetadataFunction": MetadataConfig, "AnalyticsFunction": AnalyticsConfig,
        "AnalyticsConsumerFunction": ConsumerConfig, "NotificationsFunction": HandlerConfig,
        "NotificationsFanoutFunction": FanoutConfig,
    }
    return configs[function_id]


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_function_environment_is_what_its_config_declares(synth: Synth, function_id: str) -> None:
    """Each function gets only the variables its config declares (docs/contracts.md), and Powertools' settings."""
    env = synth.resources[function_id]["Properties"]["Environment"]["Variables"]
    declared = {field.name.upper() for field in dataclasses.fields(_config_of(function_id))}  # type: ignore[arg-type]
    assert set(env) == declared | OBSERVABILITY_ENV
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "StreamForge"
    expected_refs = {"STREAMS_TABLE": "StreamsTable", "STREAM_KEYS_TABLE": "StreamKeysTable",
                     "SESSIONS_TABLE": "SessionsTable", "USERS_TABLE": "UsersTable",
                     "ANALYTICS_TABLE": "AnalyticsTable", "CONNECTIONS_TABLE": "ConnectionsTable",
                     "IDEMPOTENCY_TABLE": "IdempotencyTable", "EVENT_BUS_NAME": "EventBus",
                     "HEARTBEAT_QUEUE_URL": "HeartbeatQueue", "VIEWER_TOKEN_SECRET_ARN": "ViewerTokenSecret",
                     "USER_POOL_ID": "UserPool", "USER_POOL_CLIENT_ID": "UserPoolClient"}
    for name, logical_id in expected_refs.items():
        if name in env:
            assert env[name] == {"Ref": logical_id}, name
    if "AUTO_CONFIRM_SIGNUP" in env:
        assert env["AUTO_CONFIRM_SIGNUP"] == "true"
    if "CDN_BASE_URL" in env:
        assert mentions(env["CDN_BASE_URL"], "MediaDistribution") and mentions(env["CDN_BASE_URL"], "https://")
    if "RTMP_INGEST_URL" in env:
        assert mentions(env["RTMP_INGEST_URL"], "rtmp://") and mentions(env["RTMP_INGEST_URL"], ":1935/live")
    if "WEBSOCKET_MANAGEMENT_URL" in env:
        assert mentions(env["WEBSOCKET_MANAGEMENT_URL"], "WebSocketApi")
    if "VIEWER_TOKEN_TTL_S" in env:
        assert env["VIEWER_TOKEN_TTL_S"] == str(cdk_json_context()["viewerTokenTtlSeconds"])


def test_jwt_authorizer_trusts_the_user_pool_and_client(synth: Synth) -> None:
    (authorizer,) = synth.of_type("AWS::ApiGatewayV2::Authorizer").values()
    props = authorizer["Properties"]
    assert props["ApiId"] == {"Ref": "HttpApi"}
    assert props["AuthorizerType"] == "JWT"
    assert props["JwtConfiguration"]["Audience"] == [{"Ref": "UserPoolClient"}]
    assert mentions(props["JwtConfiguration"]["Issuer"], "https://cognito-idp.")
    assert mentions(props["JwtConfiguration"]["Issuer"], '{"Ref": "UserPool"}')
    client = synth.resources["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False
    assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} <= set(client["ExplicitAuthFlows"])


def test_http_api_throttling_and_cors(synth: Synth) -> None:
    """The routes themselves are checked against docs/openapi.json in test_routes.py."""
    api = synth.resources["HttpApi"]["Properties"]
    assert api["ProtocolType"] == "HTTP"
    assert "Authorization" in api["CorsConfiguration"]["AllowHeaders"]
    (stage,) = [s["Properties"] for s in synth.of_type("AWS::ApiGatewayV2::Stage").values()
                if s["Properties"]["ApiId"] == {"Ref": "HttpApi"}]
    assert stage["StageName"] == "$default"
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0


def test_websocket_api_routes_all_go_to_notifications(synth: Synth) -> None:
    api = synth.resources["WebSocketApi"]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"
    routes = routes_of(synth, "WebSocketApi")
    assert set(routes) == {"$connect", "$disconnect", "$default", "subscribe", "unsubscribe"}
    assert {integration_function(synth, route) for route in routes.values()} == {"NotificationsFunction"}
    assert any(s["Properties"]["ApiId"] == {"Ref": "WebSocketApi"} for s in
               synth.of_type("AWS::ApiGatewayV2::Stage").values())
    for function_id in ("NotificationsFunction", "NotificationsFanoutFunction"):
        manage = [s for s in synth.function_statements(function_id) if s["Action"] == "execute-api:ManageConnections"]
        assert manage and all(mentions(s["Resource"], "WebSocketApi") for s in manage)


def test_event_bus_rules_route_stream_events(synth: Synth) -> None:
    assert synth.resources["EventBus"]["Properties"]["Name"] == "streamforge"
    rules = {k: v["Properties"] for k, v in synth.of_type("AWS::Events::Rule").items()}
    # ARCHITECTURE §5's detail-types, written out here so that no catalog change can drop one unnoticed; the catalog
    # may add events (the fan-out's rule carries exactly the catalog's pushed ones: the test below).
    expected = {
        "NotificationsFanoutFunction": {"Stream Live", "Stream Offline", "Stream Updated"},
        "AnalyticsConsumerFunction": {"Ingest Health"},
    }
    for function_id, detail_types in expected.items():
        (rule,) = [r for r in rules.values() if r["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}]
        assert rule["EventBusName"] == {"Ref": "EventBus"}
        assert detail_types <= set(rule["EventPattern"]["detail-type"])
        assert "DeadLetterConfig" in rule["Targets"][0]


def test_heartbeat_queue_feeds_consumer_with_partial_batch_failures(synth: Synth) -> None:
    queue = synth.resources["HeartbeatQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["HeartbeatDeadLetterQueue", "Arn"]}
    (mapping,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["HeartbeatQueue", "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Ref": "AnalyticsConsumerFunction"}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue_policies = [p["Properties"] for p in synth.of_type("AWS::SQS::QueuePolicy").values()
                      if {"Ref": "HeartbeatQueue"} in p["Properties"]["Queues"]]
    assert queue_policies and mentions(queue_policies, '"aws:SecureTransport": "false"')
    send = [s for s in synth.function_statements("AnalyticsFunction") if mentions(s["Action"], "sqs:SendMessage")]
    assert send and all(s["Resource"] == {"Fn::GetAtt": ["HeartbeatQueue", "Arn"]} for s in send)


def test_every_catalog_event_with_a_websocket_type_reaches_the_fanout(synth: Synth) -> None:
    """The rules' half of the catalog acceptance (the fan-out's half: tests/unit/notifications/test_fanout.py):
    an event the catalog pushes to clients is routed from both sources to the fan-out, and nothing else is."""
    to_fanout = [r["Properties"]["EventPattern"] for r in synth.of_type("AWS::Events::Rule").values()
                 if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["NotificationsFanoutFunction", "Arn"]}]
    routed = {detail_type for pattern in to_fanout for detail_type in pattern["detail-type"]}
    assert routed == {kind.DETAIL_TYPE for kind in CATALOG if kind.MESSAGE_TYPE is not None}
    assert all(set(pattern["source"]) == set(SOURCES) for pattern in to_fanout)
