"""Names, construct ids and output names shared by the CDK app, its tests and the local platform.

Logical ids of the resources that other code looks up in the template are pinned to these ids with
`override_logical_id`, so `cdk.out/StreamForge.template.json` is stable across refactors of the construct tree.
"""

from __future__ import annotations

from typing import Final

STACK_ID: Final = "StreamForge"
OUTDIR: Final = "cdk.out"
SERVICE_NAMESPACE: Final = "StreamForge"

# Directories (relative to the repository root) that become assets.
FUNCTIONS_ASSET_DIR: Final = "functions"
SHARED_LAYER_ASSET_DIR: Final = "layers/shared"
WEB_ASSET_DIR: Final = "web"
MEDIA_DOCKERFILE: Final = "media_tasks/Dockerfile"

# DynamoDB tables (construct id == logical id).
STREAMS_TABLE: Final = "StreamsTable"
STREAM_KEYS_TABLE: Final = "StreamKeysTable"
SESSIONS_TABLE: Final = "SessionsTable"
USERS_TABLE: Final = "UsersTable"
ANALYTICS_TABLE: Final = "AnalyticsTable"
CONNECTIONS_TABLE: Final = "ConnectionsTable"
IDEMPOTENCY_TABLE: Final = "IdempotencyTable"
TABLE_IDS: Final = (STREAMS_TABLE, STREAM_KEYS_TABLE, SESSIONS_TABLE, USERS_TABLE, ANALYTICS_TABLE, CONNECTIONS_TABLE,
                    IDEMPOTENCY_TABLE)

# Lambda functions (construct id == logical id) and their handlers.
USERS_FUNCTION: Final = "UsersFunction"
METADATA_FUNCTION: Final = "MetadataFunction"
ANALYTICS_FUNCTION: Final = "AnalyticsFunction"
ANALYTICS_CONSUMER_FUNCTION: Final = "AnalyticsConsumerFunction"
NOTIFICATIONS_FUNCTION: Final = "NotificationsFunction"
NOTIFICATIONS_FANOUT_FUNCTION: Final = "NotificationsFanoutFunction"

HANDLERS: Final[dict[str, str]] = {
    USERS_FUNCTION: "users.handler.lambda_handler",
    METADATA_FUNCTION: "metadata.handler.lambda_handler",
    ANALYTICS_FUNCTION: "analytics.handler.lambda_handler",
    ANALYTICS_CONSUMER_FUNCTION: "analytics.consumer_handler.lambda_handler",
    NOTIFICATIONS_FUNCTION: "notifications.handler.lambda_handler",
    NOTIFICATIONS_FANOUT_FUNCTION: "notifications.fanout_handler.lambda_handler",
}
POWERTOOLS_SERVICE_NAMES: Final[dict[str, str]] = {
    USERS_FUNCTION: "users",
    METADATA_FUNCTION: "metadata",
    ANALYTICS_FUNCTION: "analytics",
    ANALYTICS_CONSUMER_FUNCTION: "analytics-consumer",
    NOTIFICATIONS_FUNCTION: "notifications",
    NOTIFICATIONS_FANOUT_FUNCTION: "notifications-fanout",
}

SHARED_LAYER: Final = "SharedLayer"
POWERTOOLS_LAYER_ARN_TEMPLATE: Final = (
    "arn:{partition}:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:{version}"
)

# Identity.
USER_POOL: Final = "UserPool"
USER_POOL_CLIENT: Final = "UserPoolClient"

# HTTP API: its routes are the operations of the committed OpenAPI document, which names each operation's handler
# in an extension (written by functions/openapi_spec.py).
OPENAPI_DOCUMENT: Final = "docs/openapi.json"
OPENAPI_HANDLER_EXTENSION: Final = "x-streamforge-handler"
HTTP_API: Final = "HttpApi"
HTTP_API_AUTHORIZER: Final = "CognitoJwtAuthorizer"
HTTP_API_STAGE_NAME: Final = "$default"
# Each function's integration keeps the logical id that deployed stacks have: CDK names an integration after the
# first route it serves, and the routes used to be listed by hand, in another order than docs/openapi.json's.
HTTP_API_INTEGRATIONS: Final[dict[str, str]] = {
    USERS_FUNCTION: "ApiHttpApiPOSTv1authsignupUsersFunctionIntegration820F4C12",
    METADATA_FUNCTION: "ApiHttpApiPOSTv1streamsMetadataFunctionIntegration59343702",
    ANALYTICS_FUNCTION: "ApiHttpApiPOSTv1streamsidplaybackAnalyticsFunctionIntegration7D4F63AA",
}

# Edge (us-east-1): the API's web ACL and the SSM parameter that names it to the main stack.
EDGE_STACK_ID: Final = "StreamForgeEdge"
API_WEB_ACL: Final = "ApiWebAcl"
API_WEB_ACL_ARN_PARAMETER: Final = "/streamforge/edge/api-web-acl-arn"

# WebSocket API.
WEBSOCKET_API: Final = "WebSocketApi"
WEBSOCKET_STAGE_NAME: Final = "live"
WEBSOCKET_ROUTE_SELECTION: Final = "$request.body.action"
WEBSOCKET_ROUTES: Final = ("$connect", "$disconnect", "$default", "subscribe", "unsubscribe")

# Events.
EVENT_BUS: Final = "EventBus"
EVENT_BUS_NAME: Final = "streamforge"
# The rules' sources and detail-types come from the event catalog, streamforge.events (infra/events.py).
STREAM_LIFECYCLE_RULE: Final = "StreamLifecycleRule"
INGEST_HEALTH_RULE: Final = "IngestHealthRule"

# Analytics ingestion.
HEARTBEAT_QUEUE: Final = "HeartbeatQueue"
HEARTBEAT_DLQ: Final = "HeartbeatDeadLetterQueue"
VIEWER_TOKEN_SECRET: Final = "ViewerTokenSecret"

# Storage and distribution.
MEDIA_BUCKET: Final = "MediaBucket"
MEDIA_DISTRIBUTION: Final = "MediaDistribution"
MEDIA_PREFIXES: Final = ("live", "vod", "thumbs")
DASHBOARD_BUCKET: Final = "DashboardBucket"
DASHBOARD_DISTRIBUTION: Final = "DashboardDistribution"
DASHBOARD_CONFIG_FILE: Final = "config.json"

# Operations.
ALARM_TOPIC: Final = "AlarmTopic"
OPERATIONS_DASHBOARD: Final = "OperationsDashboard"

# Media ingest service.
RTMP_PORT: Final = 1935
RTMPS_PORT: Final = 443
RTMP_APP: Final = "live"
# The media task's HTTP port (WHIP signalling), its TLS listener on the NLB, and SRT (UDP).
MEDIA_HTTP_PORT: Final = 8889
INGEST_LOAD_BALANCER: Final = "MediaIngestLoadBalancer48F7E745"
"""The NLB's logical id, pinned to the one CDK first gave it (so deployed stacks keep their NLB)."""
LL_PATH_PATTERN: Final = "ll/*"
"""CloudFront's behaviour for the LL-HLS origin (the media tasks' HTTP port): streamforge.media_layout.LOW_LATENCY."""
LL_QUERY_STRINGS: Final = ("_HLS_msn", "_HLS_part", "_HLS_skip")
"""The delivery directives (RFC 8216bis §6.2.5.1) a blocking playlist request carries: the LL cache key."""
LL_ORIGIN_SECRET_HEADER: Final = "X-StreamForge-Origin-Verify"
"""Sent by CloudFront to the LL origin; the media task answers /ll/ only with it (streamforge_media.llorigin)."""
WHIP_TLS_PORT: Final = 8443
SRT_PORT: Final = 9000
# WebRTC media: aioice's ephemeral UDP ports, pinned with net.ipv4.ip_local_port_range (inclusive).
WHIP_UDP_PORTS: Final = (50000, 50999)
# How a task learns its public IP for ICE (server-reflexive candidate); context `whipIceServers` overrides.
WHIP_ICE_SERVERS: Final = "stun:stun.l.google.com:19302"
MEDIA_CONTAINER: Final = "media"
MEDIA_TASK_ROLE: Final = "MediaTaskRole"

# Stack outputs (output name == logical id).
OUTPUT_API_URL: Final = "ApiUrl"
OUTPUT_DIRECT_API_URL: Final = "DirectApiUrl"
OUTPUT_WEBSOCKET_URL: Final = "WebSocketUrl"
OUTPUT_RTMP_INGEST_URL: Final = "RtmpIngestUrl"
OUTPUT_RTMPS_INGEST_URL: Final = "RtmpsIngestUrl"
OUTPUT_CDN_DOMAIN: Final = "CdnDomain"
OUTPUT_USER_POOL_ID: Final = "UserPoolId"
OUTPUT_USER_POOL_CLIENT_ID: Final = "UserPoolClientId"
OUTPUT_MEDIA_BUCKET_NAME: Final = "MediaBucketName"
OUTPUT_DASHBOARD_URL: Final = "DashboardUrl"
OUTPUT_ALARM_TOPIC_ARN: Final = "AlarmTopicArn"
OUTPUT_OPERATIONS_DASHBOARD_NAME: Final = "OperationsDashboardName"
