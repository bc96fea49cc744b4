"""Per-client limits at the edge: an AWS WAF web ACL with rate-based rules, on the distribution that serves `/v1/*`.

AWS WAF cannot be associated with an HTTP API, so the API is served through the dashboard's CloudFront distribution
as well (infra/dashboard.py), and the web ACL protects that distribution. A CLOUDFRONT-scope web ACL must be created
in us-east-1, so it lives in a stack of its own there (`StreamForgeEdge`), which also writes its ARN to an SSM
parameter; the main stack, deployable in any region, reads the ARN from us-east-1 at deploy time. The API's
execute-api endpoint stays reachable and is not behind these rules (docs/viewers.md says what that means).

The local gateway applies the same rules, read from the synthesized edge template (local/edge.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Environment, Stack
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as waf
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import constants as c
from infra.settings import EdgeRateLimits
from infra.support import suppress

EDGE_REGION = "us-east-1"
RATE_WINDOW_S = 60
# What the edge answers once a client is over a limit: the API's error shape, and when to try again.
TOO_MANY_REQUESTS_BODY = "too_many_requests"
TOO_MANY_REQUESTS = {"error": {"code": "too_many_requests",
                               "message": "too many requests from this client; retry after the Retry-After seconds"}}


@dataclass(frozen=True)
class RateRule:
    """One rate-based rule: `limit` requests per client per RATE_WINDOW_S on the paths `scope` matches."""

    name: str
    limit: int
    starts_with: str
    ends_with: str | None = None
    exactly: bool = False  # the path is `starts_with` itself
    per_path: bool = False  # counted per client and path (so per stream, for /v1/streams/{id}/...)


def rate_rules(limits: EdgeRateLimits) -> list[RateRule]:
    """In priority order; a request counts towards every rule whose paths it matches until one blocks it."""
    return [
        RateRule("AuthPerClient", limits.auth, "/v1/auth/"),
        RateRule("HeartbeatPerClient", limits.heartbeat, "/v1/analytics/heartbeat", exactly=True),
        RateRule("PlaybackPerClientPerStream", limits.playback, "/v1/streams/", ends_with="/playback", per_path=True),
        RateRule("ApiPerClient", limits.api, "/v1/"),
    ]


def _path_match(search: str, constraint: str) -> waf.CfnWebACL.StatementProperty:
    return waf.CfnWebACL.StatementProperty(byte_match_statement=waf.CfnWebACL.ByteMatchStatementProperty(
        field_to_match=waf.CfnWebACL.FieldToMatchProperty(uri_path={}), positional_constraint=constraint,
        search_string=search, text_transformations=[waf.CfnWebACL.TextTransformationProperty(priority=0,
                                                                                             type="NONE")]))


def _scope(rule: RateRule) -> waf.CfnWebACL.StatementProperty:
    first = _path_match(rule.starts_with, "EXACTLY" if rule.exactly else "STARTS_WITH")
    if rule.ends_with is None:
        return first
    return waf.CfnWebACL.StatementProperty(and_statement=waf.CfnWebACL.AndStatementProperty(
        statements=[first, _path_match(rule.ends_with, "ENDS_WITH")]))


def _rate_statement(rule: RateRule) -> waf.CfnWebACL.RateBasedStatementProperty:
    if not rule.per_path:
        return waf.CfnWebACL.RateBasedStatementProperty(
            limit=rule.limit, evaluation_window_sec=RATE_WINDOW_S, aggregate_key_type="IP",
            scope_down_statement=_scope(rule))
    no_transformation = [waf.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")]
    return waf.CfnWebACL.RateBasedStatementProperty(
        limit=rule.limit, evaluation_window_sec=RATE_WINDOW_S, aggregate_key_type="CUSTOM_KEYS",
        custom_keys=[waf.CfnWebACL.RateBasedStatementCustomKeyProperty(ip={}),
                     waf.CfnWebACL.RateBasedStatementCustomKeyProperty(
                         uri_path=waf.CfnWebACL.RateLimitUriPathProperty(text_transformations=no_transformation))],
        scope_down_statement=_scope(rule))


def _visibility(metric_name: str) -> waf.CfnWebACL.VisibilityConfigProperty:
    return waf.CfnWebACL.VisibilityConfigProperty(cloud_watch_metrics_enabled=True, metric_name=metric_name,
                                                  sampled_requests_enabled=True)


class EdgeStack(Stack):
    """The us-east-1 stack of the API's web ACL (CLOUDFRONT scope) and the SSM parameter naming it."""

    def __init__(self, scope: Construct, construct_id: str, *, limits: EdgeRateLimits) -> None:
        super().__init__(scope, construct_id, env=Environment(region=EDGE_REGION),
                         description="StreamForge edge: the API's per-client limits (AWS WAF, CLOUDFRONT scope)")
        block = waf.CfnWebACL.RuleActionProperty(block=waf.CfnWebACL.BlockActionProperty(
            custom_response=waf.CfnWebACL.CustomResponseProperty(
                response_code=429, custom_response_body_key=TOO_MANY_REQUESTS_BODY,
                response_headers=[waf.CfnWebACL.CustomHTTPHeaderProperty(name="Retry-After",
                                                                         value=str(RATE_WINDOW_S))])))
        self.web_acl = waf.CfnWebACL(
            self,
            c.API_WEB_ACL,
            scope="CLOUDFRONT",
            description="StreamForge API: per-client rate limits, from cdk.json edgeRateLimits",
            default_action=waf.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(c.API_WEB_ACL),
            custom_response_bodies={TOO_MANY_REQUESTS_BODY: waf.CfnWebACL.CustomResponseBodyProperty(
                content_type="APPLICATION_JSON", content=json.dumps(TOO_MANY_REQUESTS, separators=(",", ":")))},
            rules=[waf.CfnWebACL.RuleProperty(name=rule.name, priority=priority, action=block,
                                              statement=waf.CfnWebACL.StatementProperty(
                                                  rate_based_statement=_rate_statement(rule)),
                                              visibility_config=_visibility(rule.name))
                   for priority, rule in enumerate(rate_rules(limits))],
        )
        self.web_acl.override_logical_id(c.API_WEB_ACL)
        ssm.StringParameter(self, "ApiWebAclArnParameter", parameter_name=c.API_WEB_ACL_ARN_PARAMETER,
                            string_value=self.web_acl.attr_arn,
                            description="ARN of the StreamForge API's web ACL, read by the main stack")


def api_web_acl_arn(scope: Construct) -> str:
    """The edge stack's web ACL ARN, read from its SSM parameter in us-east-1 when the main stack deploys."""
    parameter_arn = Stack.of(scope).format_arn(service="ssm", region=EDGE_REGION, resource="parameter",
                                               resource_name=c.API_WEB_ACL_ARN_PARAMETER.lstrip("/"))
    reader = cr.AwsCustomResource(
        scope,
        "ApiWebAclArn",
        on_update=cr.AwsSdkCall(service="SSM", action="getParameter", region=EDGE_REGION,
                                parameters={"Name": c.API_WEB_ACL_ARN_PARAMETER},
                                physical_resource_id=cr.PhysicalResourceId.of(c.API_WEB_ACL_ARN_PARAMETER)),
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[parameter_arn]),
        install_latest_aws_sdk=False,
    )
    # The provider is a stack-level singleton named after this UUID.
    provider = Stack.of(scope).node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))
    reason = ("CDK's AwsCustomResource provider reads one SSM parameter in us-east-1 (the web ACL ARN) at deploy "
              "time; its role and runtime are chosen by aws-cdk-lib.")
    suppress(provider, "AwsSolutions-IAM4", reason,
             findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])
    suppress(provider, "AwsSolutions-L1", reason)
    return reader.get_response_field("Parameter.Value")

