"""A route added in CDK is served by the local gateway with no change to gateway code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_

from infra.application import build_app
from infra.functions import RUNTIME
from infra.support import suppress
from tests.support.http import call
from tests.support.platform import start_platform

pytestmark = pytest.mark.integration

PROBE_HANDLER = '''
import json

def lambda_handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"route": event["routeKey"], "params": event.get("pathParameters"),
                                "function": context.function_name})}
'''


def synthesize_with_probe_route(workdir: Path) -> Path:
    code = workdir / "code" / "probe"
    code.mkdir(parents=True)
    (code / "handler.py").write_text(PROBE_HANDLER)
    outdir = workdir / "cdk.out"
    app, stack = build_app(outdir=str(outdir))
    http_api = next(c for c in stack.node.find_all() if isinstance(c, apigwv2.HttpApi))
    probe = lambda_.Function(stack, "ProbeFunction", runtime=RUNTIME,
                             handler="probe.handler.lambda_handler", code=lambda_.Code.from_asset(str(code.parent)))
    routes = http_api.add_routes(path="/v1/probe/{name}", methods=[apigwv2.HttpMethod.GET],
                                 integration=integrations.HttpLambdaIntegration("ProbeIntegration", probe))
    reason = "test-only probe added to prove the local gateway follows the template"
    suppress(probe, "AwsSolutions-IAM4", reason,
             findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])
    suppress(probe, "AwsSolutions-L1", reason)
    for route in routes:
        suppress(route, "AwsSolutions-APIG4", reason)
    app.synth()
    return outdir


def test_a_route_added_in_cdk_is_served_locally(tmp_path: Path) -> None:
    outdir = synthesize_with_probe_route(tmp_path)
    template = json.loads((outdir / "StreamForge.template.json").read_text())
    assert any(r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"]["RouteKey"] == "GET /v1/probe/{name}"
               for r in template["Resources"].values())
    platform = start_platform(with_media=False, assembly_dir=outdir)
    try:
        reply = call("GET", f"{platform.urls['api']}/v1/probe/hello")
        assert reply.status == 200, reply.raw
        assert reply.json["route"] == "GET /v1/probe/{name}"
        assert reply.json["params"] == {"name": "hello"}
        assert "ProbeFunction" in reply.json["function"]
        # The rest of the API is still there, from the same template.
        assert call("GET", f"{platform.urls['api']}/v1/streams?status=live").status == 200
    finally:
        platform.stop()
