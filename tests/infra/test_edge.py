"""Per-client limits at the edge: the web ACL (us-east-1, CLOUDFRONT scope) with the rate rules of cdk.json, on the
distribution that serves `/v1/*`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import constants as c
from infra.application import cdk_json_context
from tests.infra.conftest import Synth, mentions, synthesize

pytestmark = pytest.mark.infra

# infra/edge.py's rules: name -> (edgeRateLimits key, what the rule's scope-down statement matches).
RULES = {
    "AuthPerClient": ("auth", {"STARTS_WITH": "/v1/auth/"}),
    "HeartbeatPerClient": ("heartbeat", {"EXACTLY": "/v1/analytics/heartbeat"}),
    "PlaybackPerClientPerStream": ("playback", {"STARTS_WITH": "/v1/streams/", "ENDS_WITH": "/playback"}),
    "ApiPerClient": ("api", {"STARTS_WITH": "/v1/"}),
}


def web_acl(synth: Synth) -> dict[str, Any]:
    (acl,) = [r for r in synth.edge_template.to_json()["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"]
    return dict(acl["Properties"])


def _path_matches(statement: dict[str, Any]) -> dict[str, str]:
    statements = statement["AndStatement"]["Statements"] if "AndStatement" in statement else [statement]
    return {s["ByteMatchStatement"]["PositionalConstraint"]: s["ByteMatchStatement"]["SearchString"]
            for s in statements if s["ByteMatchStatement"]["FieldToMatch"] == {"UriPath": {}}}


def test_the_web_acl_is_cloudfront_scoped_in_us_east_1_and_allows_by_default(synth: Synth) -> None:
    edge = synth.app.node.find_child(c.EDGE_STACK_ID)
    assert edge.region == "us-east-1"  # type: ignore[attr-defined]
    acl = web_acl(synth)
    assert acl["Scope"] == "CLOUDFRONT" and acl["DefaultAction"] == {"Allow": {}}


@pytest.mark.parametrize("context", [None, {"edgeRateLimits": {"api": 900, "auth": 15, "heartbeat": 120,
                                                               "playback": 12}}], ids=["cdk.json", "overridden"])
def test_rate_rules_limit_each_client_with_the_limits_from_context(
        synth: Synth, tmp_path_factory: pytest.TempPathFactory, context: dict[str, Any] | None) -> None:
    if context is not None:
        synth = synthesize(tmp_path_factory.mktemp("cdk.out"), context)
    limits = (context or cdk_json_context())["edgeRateLimits"]
    acl = web_acl(synth)
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    assert set(rules) == set(RULES)
    assert [r["Name"] for r in sorted(acl["Rules"], key=lambda r: r["Priority"])][-1] == "ApiPerClient"
    for name, (key, paths) in RULES.items():
        rate = rules[name]["Statement"]["RateBasedStatement"]
        assert rate["Limit"] == limits[key], name
        assert rate["EvaluationWindowSec"] == 60
        assert _path_matches(rate["ScopeDownStatement"]) == paths
        keys = [next(iter(k)) for k in rate["CustomKeys"]] if rate["AggregateKeyType"] == "CUSTOM_KEYS" else ["IP"]
        assert keys == (["IP", "UriPath"] if name == "PlaybackPerClientPerStream" else ["IP"])
        response = rules[name]["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        assert {"Name": "Retry-After", "Value": "60"} in response["ResponseHeaders"]
    body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON" and '"too_many_requests"' in body["Content"]


def test_the_distribution_that_serves_v1_carries_the_web_acl(synth: Synth) -> None:
    config = synth.resources[c.DASHBOARD_DISTRIBUTION]["Properties"]["DistributionConfig"]
    (api,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/v1/*"]
    assert set(api["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    origin = next(o for o in config["Origins"] if o["Id"] == api["TargetOriginId"])
    assert mentions(origin["DomainName"], "HttpApi") and origin["CustomOriginConfig"]["OriginProtocolPolicy"] == \
        "https-only"
    cache_key = synth.resources[api["CachePolicyId"]["Ref"]]["Properties"]["CachePolicyConfig"]
    assert cache_key["DefaultTTL"] == 0
    assert cache_key["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"] == ["Authorization"]
    # The web ACL ARN comes from the edge stack's SSM parameter, read in us-east-1 at deploy time.
    reader_id = config["WebACLId"]["Fn::GetAtt"][0]
    reader = synth.resources[reader_id]["Properties"]
    call = json.loads(reader["Create"])
    assert (call["action"], call["region"], call["parameters"]) == ("getParameter", "us-east-1",
                                                                    {"Name": c.API_WEB_ACL_ARN_PARAMETER})
    (parameter,) = [r["Properties"] for r in synth.edge_template.to_json()["Resources"].values()
                    if r["Type"] == "AWS::SSM::Parameter"]
    assert parameter["Name"] == c.API_WEB_ACL_ARN_PARAMETER
    assert parameter["Value"] == {"Fn::GetAtt": [c.API_WEB_ACL, "Arn"]}


def test_the_api_url_output_is_the_protected_one(synth: Synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    assert outputs[c.OUTPUT_API_URL]["Value"] == {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [
        c.DASHBOARD_DISTRIBUTION, "DomainName"]}]]}
    assert mentions(outputs[c.OUTPUT_DIRECT_API_URL]["Value"], "HttpApi")
