"""The StreamForge stack: composes the bounded contexts and the foundations they share, and wires them together.

Contexts (each a module of infra/): streams, users, analytics, notifications (each with its tables, functions, HTTP
or WebSocket routes, event rules and grants), media (ingest and processing on ECS) and distribution (S3 and
CloudFront). Shared foundations: access logs, identity (Cognito), the event bus, the `Data` and `Functions` scopes
that hold every context's tables and functions, the HTTP API (whose routes are docs/openapi.json's), the dashboard
and monitoring.

The contexts are built in passes, because they read each other's tables (users read streams; streams read users
and analytics; notifications read both): every context's storage first, then every context's functions with their
grants, then the triggers. Within a pass the order is the one the resources have always been created in, so the
synthesized template and every logical id are the same as before the regroup.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Fn, Stack
from constructs import Construct

from infra import constants as c
from infra.access_logs import AccessLogs
from infra.analytics import Analytics
from infra.api import HttpApi
from infra.dashboard import Dashboard
from infra.distribution import MediaDistribution
from infra.edge import api_web_acl_arn
from infra.events import Events
from infra.functions import Functions
from infra.identity import Identity
from infra.media import MediaService
from infra.monitoring import Monitoring
from infra.notifications import Notifications
from infra.settings import Settings
from infra.streams import Streams
from infra.tables import Tables
from infra.users import Users

LOG_LEVEL = "INFO"


class StreamForgeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id, description="StreamForge: live streaming, the AWS-serverless way")
        logs_bucket = AccessLogs(self, "AccessLogs").bucket
        tables = Tables(self, "Data")
        identity = Identity(self, "Identity")
        events = Events(self, "Events")
        observability = {"POWERTOOLS_METRICS_NAMESPACE": c.SERVICE_NAMESPACE, "LOG_LEVEL": LOG_LEVEL}

        # Storage pass: what other contexts read or publish to.
        streams = Streams(tables=tables)
        users = Users(tables=tables)
        analytics = Analytics(self, tables=tables)
        distribution = MediaDistribution(
            self, "Distribution", log_bucket=logs_bucket, cors_allow_origins=settings.cors_allow_origins
        )
        media = MediaService(
            self,
            "Media",
            streams_table=streams.streams,
            stream_keys_table=streams.stream_keys,
            sessions_table=streams.sessions,
            media_bucket=distribution.bucket,
            event_bus=events.bus,
            log_bucket=logs_bucket,
            environment={
                "STREAMS_TABLE": streams.streams.table_name,
                "STREAM_KEYS_TABLE": streams.stream_keys.table_name,
                "SESSIONS_TABLE": streams.sessions.table_name,
                "MEDIA_BUCKET": distribution.bucket.bucket_name,
                "EVENT_BUS_NAME": events.bus.event_bus_name,
                "CDN_BASE_URL": distribution.base_url,
                "STREAMFORGE_RECONNECT_GRACE_S": str(settings.reconnect_grace_seconds),
                "STREAMFORGE_LADDER": settings.ladder_json(),
                "RTMP_PORT": str(c.RTMP_PORT),
                "AWS_DEFAULT_REGION": Aws.REGION,
                "POWERTOOLS_SERVICE_NAME": "media",
                **observability,
            },
            cpu=settings.media_task_cpu,
            memory_mib=settings.media_task_memory_mib,
            min_tasks=settings.media_min_tasks,
            max_tasks=settings.media_max_tasks,
            cpu_target_percent=settings.media_cpu_target_percent,
            rtmps_certificate_arn=settings.rtmps_certificate_arn,
            log_retention=settings.log_retention,
            ll_origin_secret=distribution.ll_origin_secret,
        )
        notifications = Notifications(
            self,
            tables=tables,
            throttle_rate_limit=settings.api_throttle_rate_limit,
            throttle_burst_limit=settings.api_throttle_burst_limit,
        )

        # Function pass: each function gets only the environment its config declares, and its grants.
        functions = Functions(
            self,
            "Functions",
            observability=observability,
            powertools_layer_version=settings.powertools_layer_version,
            log_retention=settings.log_retention,
        )
        users.add_function(
            functions=functions,
            user_pool=identity.user_pool,
            user_pool_client=identity.client,
            streams_table=streams.streams,
            auto_confirm_signup=settings.auto_confirm_signup,
            cdn_base_url=distribution.base_url,
        )
        streams.add_function(
            functions=functions,
            event_bus=events.bus,
            users_table=users.users,
            analytics_table=analytics.analytics,
            cdn_base_url=distribution.base_url,
            rtmp_ingest_url=media.rtmp_ingest_url,
            whip_ingest_url=media.whip_ingest_url,
            srt_ingest_url=media.srt_ingest_url,
        )
        analytics.add_functions(
            functions=functions,
            streams_table=streams.streams,
            event_bus=events.bus,
            cdn_base_url=distribution.base_url,
            viewer_token_ttl_seconds=settings.viewer_token_ttl_seconds,
        )
        notifications.add_functions(
            functions=functions,
            streams_table=streams.streams,
            users_table=users.users,
            user_pool=identity.user_pool,
            user_pool_client=identity.client,
        )

        # Trigger pass: each operation of docs/openapi.json goes to the function whose handler declares it.
        api = HttpApi(
            self,
            "Api",
            functions={**users.http_functions, **streams.http_functions, **analytics.http_functions},
            user_pool=identity.user_pool,
            user_pool_client=identity.client,
            throttle_rate_limit=settings.api_throttle_rate_limit,
            throttle_burst_limit=settings.api_throttle_burst_limit,
            cors_allow_origins=settings.cors_allow_origins,
            log_retention=settings.log_retention,
        )
        notifications.add_triggers(bus=events)
        analytics.add_triggers(bus=events)

        dashboard = Dashboard(
            self,
            "Dashboard",
            log_bucket=logs_bucket,
            # The execute-api host, which CloudFront's `/v1/*` behaviour forwards to.
            api_domain=Fn.select(2, Fn.split("/", api.url)),
            web_acl_arn=api_web_acl_arn(self),
            runtime_config={
                # With `apiUrl`, which the dashboard adds, the keys of the local platform's /config.json.
                "websocketUrl": notifications.realtime.url,
                "cdnUrl": distribution.base_url,
                "rtmpUrl": media.rtmp_ingest_url,
                "userPoolId": identity.user_pool.user_pool_id,
                "userPoolClientId": identity.client.user_pool_client_id,
            },
        )

        monitoring = Monitoring(
            self,
            "Monitoring",
            functions=functions.functions,
            http_api=api.api,
            heartbeat_dead_letter_queue=analytics.ingestion.dead_letter_queue,
            media_service=media.service,
            alarm_email=settings.alarm_email,
        )

        outputs = {
            # Through CloudFront and its web ACL; the direct endpoint has no per-client limits (docs/viewers.md).
            c.OUTPUT_API_URL: dashboard.url,
            c.OUTPUT_DIRECT_API_URL: api.url,
            c.OUTPUT_WEBSOCKET_URL: notifications.realtime.url,
            c.OUTPUT_RTMP_INGEST_URL: media.rtmp_ingest_url,
            c.OUTPUT_CDN_DOMAIN: distribution.distribution.distribution_domain_name,
            c.OUTPUT_USER_POOL_ID: identity.user_pool.user_pool_id,
            c.OUTPUT_USER_POOL_CLIENT_ID: identity.client.user_pool_client_id,
            c.OUTPUT_MEDIA_BUCKET_NAME: distribution.bucket.bucket_name,
            c.OUTPUT_DASHBOARD_URL: dashboard.url,
            c.OUTPUT_ALARM_TOPIC_ARN: monitoring.topic.topic_arn,
            c.OUTPUT_OPERATIONS_DASHBOARD_NAME: monitoring.dashboard.dashboard_name,
        }
        if settings.rtmps_certificate_arn:
            outputs[c.OUTPUT_RTMPS_INGEST_URL] = media.rtmps_ingest_url
        for name, value in outputs.items():
            CfnOutput(self, name, value=value).override_logical_id(name)
