"""The media task: Fargate service, NLB ingest, autoscaling, image asset and its least-privilege role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.conftest import Synth, as_list, mentions, synthesize

pytestmark = pytest.mark.infra

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


def _media_role(synth: Synth) -> str:
    (task_definition,) = synth.of_type("AWS::ECS::TaskDefinition").values()
    return str(task_definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0])


def test_fargate_task_sized_from_context_with_contract_environment(synth: Synth) -> None:
    (task_definition,) = synth.of_type("AWS::ECS::TaskDefinition").values()
    props = task_definition["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    assert props["Cpu"] == str(CONTEXT["mediaTaskCpu"]) and props["Memory"] == str(CONTEXT["mediaTaskMemoryMiB"])
    (container,) = props["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert {"STREAMS_TABLE", "STREAM_KEYS_TABLE", "SESSIONS_TABLE", "MEDIA_BUCKET", "EVENT_BUS_NAME",
            "CDN_BASE_URL", "STREAMFORGE_RECONNECT_GRACE_S", "RTMP_PORT", "MEDIA_HTTP_PORT", "SRT_PORT"} <= set(env)
    assert env["STREAMFORGE_RECONNECT_GRACE_S"] == str(CONTEXT["reconnectGraceSeconds"])
    assert json.loads(env["STREAMFORGE_LADDER"])[0]["height"] == CONTEXT["ladder"][0]["height"]
    assert container["PortMappings"] == [{"ContainerPort": 1935, "Protocol": "tcp"},
                                         {"ContainerPort": 8889, "Protocol": "tcp"},
                                         {"ContainerPort": 9000, "Protocol": "udp"}]
    assert "HealthCheck" in container and container["LogConfiguration"]["LogDriver"] == "awslogs"
    (cluster,) = synth.of_type("AWS::ECS::Cluster").values()
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["Properties"]["ClusterSettings"]


def test_service_behind_nlb_on_1935_with_cpu_autoscaling(synth: Synth) -> None:
    (service,) = synth.of_type("AWS::ECS::Service").values()
    assert service["Properties"]["LaunchType"] == "FARGATE"
    assert service["Properties"]["LoadBalancers"][0]["ContainerPort"] == 1935
    (nlb,) = synth.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert nlb["Properties"]["Type"] == "network" and nlb["Properties"]["Scheme"] == "internet-facing"
    listeners = [listener["Properties"] for listener in synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()]
    assert sorted((listener["Port"], listener["Protocol"]) for listener in listeners) == [
        (1935, "TCP"), (8889, "TCP"), (9000, "UDP")]
    groups = {g["Properties"]["Port"]: g["Properties"] for g in synth.of_type(
        "AWS::ElasticLoadBalancingV2::TargetGroup").values()}
    assert groups[1935]["TargetType"] == "ip" and groups[1935]["Protocol"] == "TCP"
    (scaling,) = synth.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    tracking = scaling["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    (target,) = synth.of_type("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MaxCapacity"] > target["Properties"]["MinCapacity"] >= 1


def test_image_build_context_holds_only_media_code_and_shared_layer(synth: Synth) -> None:
    manifest = json.loads((synth.outdir / "StreamForge.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["dockerFile"] == "media_tasks/Dockerfile"
    context = synth.outdir / image["source"]["directory"]
    assert sorted(p.name for p in context.iterdir()) == ["layers", "media_tasks"]
    assert [p.name for p in (context / "layers").iterdir()] == ["shared"]
    assert (context / "media_tasks" / "Dockerfile").is_file()
    assert not [p for p in context.rglob("*") if p.name in ("__pycache__", ".venv", "cdk.out", "node_modules")]


def test_media_task_role_is_least_privilege(synth: Synth) -> None:
    statements = synth.policies_of_role(_media_role(synth))
    s3_statements = [s for s in statements if mentions(s["Action"], "s3:")]
    # Only writes: the publisher never reads or lists the bucket.
    assert {a for s in s3_statements for a in as_list(s["Action"])} == {"s3:PutObject"}
    object_resources = [r for s in s3_statements for r in as_list(s["Resource"])]
    # Objects: exactly the three prefixes of the media bucket.
    assert sorted(r["Fn::Join"][1][1] for r in object_resources) == ["/live/*", "/thumbs/*", "/vod/*"]
    assert all(r["Fn::Join"][1][0] == {"Fn::GetAtt": ["MediaBucket", "Arn"]} for r in object_resources)
    assert not any(a in as_list(s["Action"]) for s in s3_statements for a in ("s3:DeleteObject", "s3:*"))
    # Tables: Streams/Sessions read-write, StreamKeys read plus UpdateItem only; nothing else.
    dynamo = [s for s in statements if mentions(s["Action"], "dynamodb:")]
    touched = {r["Fn::GetAtt"][0] for s in dynamo for r in as_list(s["Resource"]) if "Fn::GetAtt" in r}
    assert touched == {"StreamsTable", "StreamKeysTable", "SessionsTable"}
    key_actions = {a for s in dynamo if mentions(s["Resource"], "StreamKeysTable") for a in as_list(s["Action"])}
    assert not key_actions & {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    events = [s for s in statements if s["Action"] == "events:PutEvents"]
    assert events and all(s["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]} for s in events)


def test_rtmps_listener_only_with_a_certificate(tmp_path: Path) -> None:
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    synth = synthesize(tmp_path, context={"rtmpsCertificateArn": certificate})
    listeners = {
        listener["Properties"]["Port"]: listener["Properties"]
        for listener in synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert set(listeners) == {1935, 443, 8443, 9000}  # WHIP over TLS on 8443 replaces plain HTTP on 8889
    assert listeners[443]["Protocol"] == "TLS" and listeners[8443]["Protocol"] == "TLS"
    assert listeners[8443]["Certificates"] == [{"CertificateArn": certificate}]
    assert listeners[443]["Certificates"] == [{"CertificateArn": certificate}]
    assert listeners[443]["DefaultActions"] == listeners[1935]["DefaultActions"]
    assert "RtmpsIngestUrl" in synth.template.to_json()["Outputs"]


def test_srt_udp_listener_with_tcp_health_check_and_whip_media_range(synth: Synth) -> None:
    """SRT through the NLB's UDP listener (health-checked over TCP); WHIP signalling through the NLB to the
    task's HTTP port; WebRTC media to the task's public IP on the pinned UDP range, and nothing wider."""
    listeners = {listener["Properties"]["Port"]: listener["Properties"]
                 for listener in synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()}
    groups = {g["Properties"]["Port"]: g["Properties"]
              for g in synth.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").values()}
    assert listeners[9000]["Protocol"] == "UDP"
    assert groups[9000]["Protocol"] == "UDP"
    assert groups[9000]["HealthCheckProtocol"] == "TCP" and groups[9000]["HealthCheckPort"] == "8889"
    assert groups[8889]["Protocol"] == "TCP"
    sticky = {a["Key"]: a["Value"] for a in groups[8889]["TargetGroupAttributes"]}
    assert sticky["stickiness.type"] == "source_ip"  # a WHIP DELETE returns to the task holding the resource
    (task_definition,) = synth.of_type("AWS::ECS::TaskDefinition").values()
    (container,) = task_definition["Properties"]["ContainerDefinitions"]
    assert container["SystemControls"] == [{"Namespace": "net.ipv4.ip_local_port_range", "Value": "50000 50999"}]
    (service,) = synth.of_type("AWS::ECS::Service").values()
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "ENABLED"
    open_to_all = [(r.get("IpProtocol"), r.get("FromPort"), r.get("ToPort"))
                   for g in synth.of_type("AWS::EC2::SecurityGroup").values()
                   if "media tasks" not in g["Properties"].get("GroupDescription", "").lower()
                   for r in g["Properties"].get("SecurityGroupIngress", []) if r.get("CidrIp") == "0.0.0.0/0"]
    open_to_all += [(r["Properties"].get("IpProtocol"), r["Properties"].get("FromPort"), r["Properties"].get("ToPort"))
                    for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
                    if r["Properties"].get("CidrIp") == "0.0.0.0/0"]
    assert ("udp", 50000, 50999) in open_to_all and ("udp", 9000, 9000) in open_to_all
    assert {(proto, low, high) for proto, low, high in open_to_all} <= {
        ("tcp", 1935, 1935), ("tcp", 8889, 8889), ("udp", 9000, 9000), ("udp", 50000, 50999)}
