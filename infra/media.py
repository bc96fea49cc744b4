"""Stream ingestion and processing: the media task on ECS Fargate behind a Network Load Balancer.

Ingest paths (docs/scaling.md, "WHIP and SRT"): RTMP on TCP 1935 (RTMPS on 443 with a certificate); SRT on
UDP 9000 (an NLB UDP listener, health-checked over TCP); WHIP signalling over HTTPS (an NLB TLS listener
on 8443 with the certificate, plain HTTP on 8889 without one) to the task's HTTP port, and WebRTC media
straight to the task's public IP on a pinned UDP range (aioice's ephemeral ports, narrowed by the task's
`net.ipv4.ip_local_port_range`), since an NLB cannot forward to the random ports ICE picks.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id, repo_path, suppress

# The image is built from the repository root (it needs layers/shared/python and media_tasks); everything
# else stays out of the staged build context. Docker ignore syntax: exclude all, then re-include.
MEDIA_IMAGE_EXCLUDE = [
    "*",
    "!media_tasks",
    "!layers",
    "layers/*",
    "!layers/shared",
    "layers/shared/*",
    "!layers/shared/python",
    "**/__pycache__",
    "**/*.pyc",
    "**/tests",
    "**/.pytest_cache",
    "**/.mypy_cache",
]


class MediaService(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        streams_table: dynamodb.ITable,
        stream_keys_table: dynamodb.ITable,
        sessions_table: dynamodb.ITable,
        media_bucket: s3.IBucket,
        event_bus: events.IEventBus,
        log_bucket: s3.IBucket,
        environment: Mapping[str, str],
        cpu: int,
        memory_mib: int,
        min_tasks: int,
        max_tasks: int,
        cpu_target_percent: int,
        rtmps_certificate_arn: str | None,
        log_retention: logs.RetentionDays,
        ll_origin_secret: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        self.whip_tls = bool(rtmps_certificate_arn)

        flow_log_group = logs.LogGroup(self, "VpcFlowLogs", retention=log_retention)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            # One NAT gateway keeps cost down; S3 and DynamoDB traffic bypasses it through gateway endpoints.
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="ingress", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="tasks", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
            flow_logs={
                "All": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group))
            },
        )

        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )

        self.task_role = iam.Role(
            self, c.MEDIA_TASK_ROLE, assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="StreamForge media task: key lookups, sessions, HLS uploads and stream events",
        )
        self._grant_task_permissions(
            streams_table=streams_table,
            stream_keys_table=stream_keys_table,
            sessions_table=sessions_table,
            media_bucket=media_bucket,
            event_bus=event_bus,
        )

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            task_role=self.task_role,
            runtime_platform=ecs.RuntimePlatform(
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
                cpu_architecture=ecs.CpuArchitecture.X86_64,
            ),
            # Segments are staged on local disk before upload; 1080p ladders need more than the 20 GiB default.
            ephemeral_storage_gib=50,
        )
        self.task_definition.add_container(
            c.MEDIA_CONTAINER,
            image=ecs.ContainerImage.from_asset(repo_path("."), file=c.MEDIA_DOCKERFILE, exclude=MEDIA_IMAGE_EXCLUDE),
            environment={
                **environment,
                "MEDIA_HTTP_PORT": str(c.MEDIA_HTTP_PORT),
                "SRT_PORT": str(c.SRT_PORT),
                # The task's public IP reaches the answer as a server-reflexive candidate (1:1 NAT keeps ports).
                "STREAMFORGE_WHIP_ICE_SERVERS": str(self.node.try_get_context("whipIceServers") or c.WHIP_ICE_SERVERS),
            },
            # The LL-HLS origin answers only requests bearing this (CloudFront's origin header).
            secrets={"STREAMFORGE_LL_ORIGIN_SECRET": ecs.Secret.from_secrets_manager(ll_origin_secret)},
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="media", log_group=logs.LogGroup(self, "TaskLogs", retention=log_retention)
            ),
            port_mappings=[
                ecs.PortMapping(container_port=c.RTMP_PORT, protocol=ecs.Protocol.TCP),
                ecs.PortMapping(container_port=c.MEDIA_HTTP_PORT, protocol=ecs.Protocol.TCP),
                ecs.PortMapping(container_port=c.SRT_PORT, protocol=ecs.Protocol.UDP),
            ],
            # WebRTC media arrives on aioice's ephemeral UDP ports: pinned here so the security group can name them.
            system_controls=[ecs.SystemControl(namespace="net.ipv4.ip_local_port_range",
                                               value=f"{c.WHIP_UDP_PORTS[0]} {c.WHIP_UDP_PORTS[1]}")],
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-c",
                         f"import socket; socket.create_connection(('127.0.0.1', {c.RTMP_PORT}), 2).close()"],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(3),
                retries=3,
                start_period=Duration.seconds(20),
            ),
            # Fargate's maximum: lets the task end sessions cleanly (VOD playlists, Stream Offline) on SIGTERM.
            stop_timeout=Duration.seconds(120),
        )
        suppress(
            self.task_definition.obtain_execution_role(),
            "AwsSolutions-IAM5",
            "ecr:GetAuthorizationToken has no resource-level permissions; image pulls and log writes are scoped "
            "to the asset repository and the task log group by CDK.",
            findings=["Resource::*"],
        )
        suppress(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment carries only non-secret configuration (table and bucket names, bus name, ladder, "
            "ports) per docs/contracts.md; credentials come from the task role.",
        )

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=min_tasks,
            min_healthy_percent=100,
            max_healthy_percent=200,
            # Public subnets and a public IP per task: WebRTC media goes to the task itself (see the module doc).
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            assign_public_ip=True,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=Duration.seconds(60),
        )

        nlb_security_group = ec2.SecurityGroup(
            self, "IngestSecurityGroup", vpc=self.vpc, description="Public RTMP/RTMPS ingest", allow_all_outbound=False
        )
        suppress(
            nlb_security_group,
            "AwsSolutions-EC23",
            "RTMP ingest is public by design (encoders connect from anywhere); a publisher is only accepted with a "
            "valid stream key, checked before any media is read.",
        )
        self.load_balancer = elbv2.NetworkLoadBalancer(
            self,
            "IngestLoadBalancer",
            vpc=self.vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[nlb_security_group],
            cross_zone_enabled=True,
        )
        pin_logical_id(self.load_balancer, c.INGEST_LOAD_BALANCER)  # CloudFront's LL origin names it
        self._log_access(log_bucket, prefix="nlb/ingest")

        target_group = elbv2.NetworkTargetGroup(
            self,
            "RtmpTargets",
            vpc=self.vpc,
            port=c.RTMP_PORT,
            protocol=elbv2.Protocol.TCP,
            target_type=elbv2.TargetType.IP,
            targets=[self.service.load_balancer_target(container_name=c.MEDIA_CONTAINER, container_port=c.RTMP_PORT)],
            health_check=elbv2.HealthCheck(
                protocol=elbv2.Protocol.TCP, interval=Duration.seconds(10), healthy_threshold_count=2,
                unhealthy_threshold_count=2,
            ),
            # A reconnecting encoder returns to the task that holds its session during the grace period.
            # Draining lets live publishers finish (or reconnect elsewhere) when a task is replaced.
            deregistration_delay=Duration.seconds(120),
        )
        target_group.set_attribute("stickiness.enabled", "true")
        target_group.set_attribute("stickiness.type", "source_ip")

        self._listen(nlb_security_group, port=c.RTMP_PORT, protocol=elbv2.Protocol.TCP, target_group=target_group)
        if rtmps_certificate_arn:
            # RTMPS terminates TLS at the NLB; the task only ever speaks plain RTMP on 1935.
            self._listen(
                nlb_security_group,
                port=c.RTMPS_PORT,
                protocol=elbv2.Protocol.TLS,
                target_group=target_group,
                certificate=acm.Certificate.from_certificate_arn(self, "RtmpsCertificate", rtmps_certificate_arn),
            )
        self.service.connections.allow_from(nlb_security_group, ec2.Port.tcp(c.RTMP_PORT), "RTMP from the NLB")
        nlb_security_group.add_egress_rule(
            self.service.connections.security_groups[0], ec2.Port.tcp(c.RTMP_PORT), "RTMP to the media tasks"
        )
        self._whip_and_srt(nlb_security_group, rtmps_certificate_arn)

        scaling = self.service.auto_scale_task_count(min_capacity=min_tasks, max_capacity=max_tasks)
        scaling.scale_on_cpu_utilization(
            "CpuScaling",
            target_utilization_percent=cpu_target_percent,
            # Scale out fast (new streams need encoders now); scale in slowly, because removing a task
            # cuts the RTMP connections it holds.
            scale_out_cooldown=Duration.seconds(60),
            scale_in_cooldown=Duration.minutes(15),
        )

    def _whip_and_srt(self, nlb_security_group: ec2.SecurityGroup, certificate_arn: str | None) -> None:
        task_group = self.service.connections.security_groups[0]
        whip_targets = elbv2.NetworkTargetGroup(
            self, "WhipTargets", vpc=self.vpc, port=c.MEDIA_HTTP_PORT, protocol=elbv2.Protocol.TCP,
            target_type=elbv2.TargetType.IP,
            targets=[self.service.load_balancer_target(container_name=c.MEDIA_CONTAINER,
                                                       container_port=c.MEDIA_HTTP_PORT)],
            health_check=elbv2.HealthCheck(protocol=elbv2.Protocol.TCP, interval=Duration.seconds(10)),
            deregistration_delay=Duration.seconds(120),
        )
        # A WHIP resource lives in the task that answered the POST: its DELETE must come back to it.
        whip_targets.set_attribute("stickiness.enabled", "true")
        whip_targets.set_attribute("stickiness.type", "source_ip")
        if certificate_arn:
            self._listen(nlb_security_group, port=c.WHIP_TLS_PORT, protocol=elbv2.Protocol.TLS,
                         target_group=whip_targets,
                         certificate=acm.Certificate.from_certificate_arn(self, "WhipCertificate", certificate_arn))
        else:
            self._listen(nlb_security_group, port=c.MEDIA_HTTP_PORT, protocol=elbv2.Protocol.TCP,
                         target_group=whip_targets)
        self.service.connections.allow_from(nlb_security_group, ec2.Port.tcp(c.MEDIA_HTTP_PORT), "WHIP from the NLB")
        # A task asked for a stream another task ingests forwards the LL-HLS request there.
        self.service.connections.allow_internally(ec2.Port.tcp(c.MEDIA_HTTP_PORT), "LL-HLS forwarding between tasks")
        nlb_security_group.add_egress_rule(task_group, ec2.Port.tcp(c.MEDIA_HTTP_PORT), "WHIP to the media tasks")

        srt_targets = elbv2.NetworkTargetGroup(
            self, "SrtTargets", vpc=self.vpc, port=c.SRT_PORT, protocol=elbv2.Protocol.UDP,
            target_type=elbv2.TargetType.IP,
            targets=[self.service.load_balancer_target(container_name=c.MEDIA_CONTAINER, container_port=c.SRT_PORT,
                                                       protocol=ecs.Protocol.UDP)],
            # An NLB cannot health-check over UDP: the task's WHIP/HTTP port answers for it.
            health_check=elbv2.HealthCheck(protocol=elbv2.Protocol.TCP, port=str(c.MEDIA_HTTP_PORT),
                                           interval=Duration.seconds(10)),
            deregistration_delay=Duration.seconds(120),
        )
        srt_targets.set_attribute("stickiness.enabled", "true")
        srt_targets.set_attribute("stickiness.type", "source_ip")
        self.load_balancer.add_listener("Listener9000Udp", port=c.SRT_PORT, protocol=elbv2.Protocol.UDP,
                                        default_target_groups=[srt_targets])
        nlb_security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.udp(c.SRT_PORT), "SRT ingest")
        nlb_security_group.add_egress_rule(task_group, ec2.Port.udp(c.SRT_PORT), "SRT to the media tasks")
        # UDP through an NLB keeps the caller's address (client IP preservation cannot be turned off for UDP),
        # so the task sees SRT from the callers themselves, not from the NLB.
        task_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.udp(c.SRT_PORT), "SRT callers (through the NLB)")
        task_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.udp_range(*c.WHIP_UDP_PORTS),
                                    "WebRTC media (WHIP) on the pinned ephemeral range")
        suppress(
            task_group,
            "AwsSolutions-EC23",
            "WebRTC media must reach the task directly on the pinned UDP range and SRT keeps the caller's address "
            "through the NLB; both are only accepted after the stream key was checked (WHIP POST, SRT handshake).",
        )

    @property
    def whip_ingest_url(self) -> str:
        if self.whip_tls:
            return f"https://{self.load_balancer.load_balancer_dns_name}:{c.WHIP_TLS_PORT}/whip"
        return f"http://{self.load_balancer.load_balancer_dns_name}:{c.MEDIA_HTTP_PORT}/whip"

    @property
    def srt_ingest_url(self) -> str:
        return f"srt://{self.load_balancer.load_balancer_dns_name}:{c.SRT_PORT}"

    @property
    def rtmp_ingest_url(self) -> str:
        return f"rtmp://{self.load_balancer.load_balancer_dns_name}:{c.RTMP_PORT}/{c.RTMP_APP}"

    @property
    def rtmps_ingest_url(self) -> str:
        return f"rtmps://{self.load_balancer.load_balancer_dns_name}:{c.RTMPS_PORT}/{c.RTMP_APP}"

    def _log_access(self, log_bucket: s3.IBucket, *, prefix: str) -> None:
        # `log_access_logs()` needs a concrete region to pick the ELB account; NLBs deliver through the
        # region-independent log delivery service instead, so the attributes and bucket policy are set here.
        self.load_balancer.set_attribute("access_logs.s3.enabled", "true")
        self.load_balancer.set_attribute("access_logs.s3.bucket", log_bucket.bucket_name)
        self.load_balancer.set_attribute("access_logs.s3.prefix", prefix)
        delivery = iam.ServicePrincipal("delivery.logs.amazonaws.com")
        source_account = {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
        log_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[delivery],
                actions=["s3:PutObject"],
                resources=[log_bucket.arn_for_objects(f"{prefix}/AWSLogs/{Aws.ACCOUNT_ID}/*")],
                conditions={**source_account, "StringEquals": {**source_account["StringEquals"],
                                                               "s3:x-amz-acl": "bucket-owner-full-control"}},
            )
        )
        log_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[delivery], actions=["s3:GetBucketAcl"], resources=[log_bucket.bucket_arn],
                conditions=source_account,
            )
        )
        # The policy must exist before the NLB checks that it may write there; the bucket itself is already
        # ordered by the Ref in the attributes (a DependsOn on it too is redundant: cfn-lint W3005).
        if log_bucket.policy is not None:
            self.load_balancer.node.add_dependency(log_bucket.policy)

    def _listen(
        self,
        security_group: ec2.SecurityGroup,
        *,
        port: int,
        protocol: elbv2.Protocol,
        target_group: elbv2.NetworkTargetGroup,
        certificate: acm.ICertificate | None = None,
    ) -> None:
        self.load_balancer.add_listener(
            f"Listener{port}",
            port=port,
            protocol=protocol,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)] if certificate else None,
            default_target_groups=[target_group],
        )
        security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"Ingest on {port}")

    def _grant_task_permissions(
        self,
        *,
        streams_table: dynamodb.ITable,
        stream_keys_table: dynamodb.ITable,
        sessions_table: dynamodb.ITable,
        media_bucket: s3.IBucket,
        event_bus: events.IEventBus,
    ) -> None:
        # Stream status, event_seq and sessions are written by the task.
        streams_table.grant_read_write_data(self.task_role)
        sessions_table.grant_read_write_data(self.task_role)
        # Keys are only looked up (and stamped with last_used_at); creating and revoking them is the API's job.
        stream_keys_table.grant_read_data(self.task_role)
        stream_keys_table.grant(self.task_role, "dynamodb:UpdateItem")
        event_bus.grant_put_events_to(self.task_role)

        prefixes = [f"{prefix}/*" for prefix in c.MEDIA_PREFIXES]
        # The publisher keeps playlists in memory and only ever writes objects.
        self.task_role.add_to_policy(
            iam.PolicyStatement(
                sid="MediaObjects",
                actions=["s3:PutObject"],
                resources=[media_bucket.arn_for_objects(prefix) for prefix in prefixes],
            )
        )
        suppress(
            self.task_role,
            "AwsSolutions-IAM5",
            "Object access is limited to the live/, vod/ and thumbs/ prefixes of the media bucket, and table access "
            "to the GSIs of the Streams, StreamKeys and Sessions tables.",
            findings=[
                *(f"Resource::<{c.MEDIA_BUCKET}.Arn>/{prefix}" for prefix in prefixes),
                *(f"Resource::<{table}.Arn>/index/*" for table in (c.STREAMS_TABLE, c.STREAM_KEYS_TABLE,
                                                                   c.SESSIONS_TABLE)),
            ],
        )
