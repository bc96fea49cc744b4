"""The StreamForge stack: composes one construct per bounded context and wires them together."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Fn, Stack
from constructs import Construct

from infra import constants as c
from infra.access_logs import AccessLogs
from infra.api import HttpApi
from infra.dashboard import Dashboard
from infra.data import Data
from infra.distribution import MediaDistribution
from infra.edge import api_web_acl_arn
from infra.events import Events
from infra.functions import Functions
from infra.identity import Identity
from infra.ingestion import AnalyticsIngestion
from infra.media import MediaService
from infra.monitoring import Monitoring
from infra.realtime import Realtime
from infra.settings import Settings

LOG_LEVEL = "INFO"


class StreamForgeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id, description="StreamForge: live streaming, the AWS-serverless way")
        logs_bucket = AccessLogs(self, "AccessLogs").bucket
        data = Data(self, "Data")
        identity = Identity(self, "Identity")
        events = Events(self, "Events")
        ingestion = AnalyticsIngestion(self, "AnalyticsIngestion")
        distribution = MediaDistribution(
            self, "Distribution", log_bucket=logs_bucket, cors_allow_origins=settings.cors_allow_origins
        )
        observability = {"POWERTOOLS_METRICS_NAMESPACE": c.SERVICE_NAMESPACE, "LOG_LEVEL": LOG_LEVEL}

        media = MediaService(
            self,
            "Media",
            streams_table=data.streams,
            stream_keys_table=data.stream_keys,
            sessions_table=data.sessions,
            media_bucket=distribution.bucket,
            event_bus=events.bus,
            log_bucket=logs_bucket,
            environment={
                "STREAMS_TABLE": data.streams.table_name,
                "STREAM_KEYS_TABLE": data.stream_keys.table_name,
                "SESSIONS_TABLE": data.sessions.table_name,
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
        )
        realtime = Realtime(
            self,
            "Realtime",
            throttle_rate_limit=settings.api_throttle_rate_limit,
            throttle_burst_limit=settings.api_throttle_burst_limit,
        )

        # Every function sees the whole contract environment; what it may touch is decided by the grants below.
        functions = Functions(
            self,
            "Functions",
            environment={
                **data.table_name_environment(),
                "MEDIA_BUCKET": distribution.bucket.bucket_name,
                "EVENT_BUS_NAME": events.bus.event_bus_name,
                "HEARTBEAT_QUEUE_URL": ingestion.queue.queue_url,
                "USER_POOL_ID": identity.user_pool.user_pool_id,
                "USER_POOL_CLIENT_ID": identity.client.user_pool_client_id,
                "AUTO_CONFIRM_SIGNUP": "true" if settings.auto_confirm_signup else "false",
                "CDN_BASE_URL": distribution.base_url,
                "RTMP_INGEST_URL": media.rtmp_ingest_url,
                "WHIP_INGEST_URL": media.whip_ingest_url,
                "SRT_INGEST_URL": media.srt_ingest_url,
                "WEBSOCKET_MANAGEMENT_URL": realtime.management_url,
                "VIEWER_TOKEN_SECRET_ARN": ingestion.viewer_token_key.secret_arn,
                "VIEWER_TOKEN_TTL_S": str(settings.viewer_token_ttl_seconds),
                **observability,
            },
            powertools_layer_version=settings.powertools_layer_version,
            log_retention=settings.log_retention,
        )
        users = functions[c.USERS_FUNCTION]
        metadata = functions[c.METADATA_FUNCTION]
        analytics = functions[c.ANALYTICS_FUNCTION]
        consumer = functions[c.ANALYTICS_CONSUMER_FUNCTION]
        notifications = functions[c.NOTIFICATIONS_FUNCTION]
        fanout = functions[c.NOTIFICATIONS_FANOUT_FUNCTION]

        # Least privilege, function by function.
        data.users.grant_read_write_data(users)
        data.streams.grant_read_data(users)
        identity.user_pool.grant(
            users,
            "cognito-idp:SignUp",
            "cognito-idp:AdminConfirmSignUp",
            "cognito-idp:InitiateAuth",
            "cognito-idp:GetUser",
            "cognito-idp:AdminGetUser",
        )

        for table in (data.streams, data.stream_keys, data.sessions, data.idempotency):
            table.grant_read_write_data(metadata)
        data.analytics.grant_read_data(metadata)
        data.users.grant_read_data(metadata)
        events.bus.grant_put_events_to(metadata)

        data.analytics.grant_read_write_data(analytics)
        data.streams.grant_read_data(analytics)
        ingestion.queue.grant_send_messages(analytics)
        ingestion.viewer_token_key.grant_read(analytics)

        data.analytics.grant_read_write_data(consumer)
        data.streams.grant_read_write_data(consumer)
        events.bus.grant_put_events_to(consumer)

        data.connections.grant_read_write_data(notifications)
        data.streams.grant_read_data(notifications)
        data.users.grant_read_data(notifications)
        identity.user_pool.grant(notifications, "cognito-idp:GetUser")

        data.connections.grant_read_write_data(fanout)
        data.users.grant_read_data(fanout)
        data.streams.grant_read_data(fanout)

        # Triggers.
        api = HttpApi(
            self,
            "Api",
            functions={function_id: functions[function_id] for function_id in
                       (c.USERS_FUNCTION, c.METADATA_FUNCTION, c.ANALYTICS_FUNCTION)},
            user_pool=identity.user_pool,
            user_pool_client=identity.client,
            throttle_rate_limit=settings.api_throttle_rate_limit,
            throttle_burst_limit=settings.api_throttle_burst_limit,
            cors_allow_origins=settings.cors_allow_origins,
            log_retention=settings.log_retention,
        )
        realtime.connect(handler=notifications, publishers=[fanout])
        events.route_stream_lifecycle(fanout)
        events.route_ingest_health(consumer)
        ingestion.feed(consumer)

        dashboard = Dashboard(
            self,
            "Dashboard",
            log_bucket=logs_bucket,
            # The execute-api host, which CloudFront's `/v1/*` behaviour forwards to.
            api_domain=Fn.select(2, Fn.split("/", api.url)),
            web_acl_arn=api_web_acl_arn(self),
            runtime_config={
                # With `apiUrl`, which the dashboard adds, the keys of the local platform's /config.json.
                "websocketUrl": realtime.url,
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
            heartbeat_dead_letter_queue=ingestion.dead_letter_queue,
            media_service=media.service,
            alarm_email=settings.alarm_email,
        )

        outputs = {
            # Through CloudFront and its web ACL; the direct endpoint has no per-client limits (docs/viewers.md).
            c.OUTPUT_API_URL: dashboard.url,
            c.OUTPUT_DIRECT_API_URL: api.url,
            c.OUTPUT_WEBSOCKET_URL: realtime.url,
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
