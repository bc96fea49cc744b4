"""The local edge: AWS WAF's rate-based rules as the synthesized edge template states them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import constants as c
from local.edge import EDGE_STACK_NAME, load_edge_rules
from local.template import Template, UnresolvableError

pytestmark = pytest.mark.unit


def path_is(constraint: str, search: str) -> dict[str, Any]:
    return {"ByteMatchStatement": {"FieldToMatch": {"UriPath": {}}, "PositionalConstraint": constraint,
                                   "SearchString": search, "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}


def rule(name: str, priority: int, limit: int, scope: dict[str, Any], *, per_path: bool = False) -> dict[str, Any]:
    rate: dict[str, Any] = {"Limit": limit, "EvaluationWindowSec": 60, "AggregateKeyType": "IP",
                            "ScopeDownStatement": scope}
    if per_path:
        rate.update(AggregateKeyType="CUSTOM_KEYS", CustomKeys=[{"IP": {}}, {"UriPath": {"TextTransformations": []}}])
    return {"Name": name, "Priority": priority, "Statement": {"RateBasedStatement": rate},
            "Action": {"Block": {"CustomResponse": {"ResponseCode": 429, "CustomResponseBodyKey": "slow",
                                                    "ResponseHeaders": [{"Name": "Retry-After", "Value": "60"}]}}},
            "VisibilityConfig": {}}


def edge_template(*rules: dict[str, Any]) -> Template:
    acl = {"Type": "AWS::WAFv2::WebACL", "Properties": {
        "Scope": "CLOUDFRONT", "DefaultAction": {"Allow": {}}, "Rules": list(rules),
        "CustomResponseBodies": {"slow": {"ContentType": "APPLICATION_JSON", "Content": '{"error": "slow"}'}}}}
    return Template({"Resources": {"Acl": acl}}, assembly_dir=Path("."))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_edge_stack_is_the_one_infra_synthesizes() -> None:
    assert EDGE_STACK_NAME == c.EDGE_STACK_ID


def test_a_client_past_the_limit_gets_the_rules_response_until_the_window_moves_on() -> None:
    rules = load_edge_rules(edge_template(rule("Auth", 0, 2, path_is("STARTS_WITH", "/v1/auth/"))))
    clock = Clock()
    rules._clock = clock
    assert [rules.check("10.0.0.1", "/v1/auth/login") for _ in range(2)] == [None, None]
    blocked = rules.check("10.0.0.1", "/v1/auth/login")
    assert blocked is not None and blocked.status == 429 and blocked.headers == {
        "Retry-After": "60", "Content-Type": "application/json"} and json.loads(blocked.body) == {"error": "slow"}
    assert rules.check("10.0.0.2", "/v1/auth/login") is None  # another client
    assert rules.check("10.0.0.1", "/v1/streams") is None  # outside the rule's scope
    clock.now += 61
    assert rules.check("10.0.0.1", "/v1/auth/login") is None


def test_custom_keys_count_per_client_and_path_and_the_first_blocking_rule_answers() -> None:
    per_stream = rule("Playback", 0, 1, {"AndStatement": {"Statements": [
        path_is("STARTS_WITH", "/v1/streams/"), path_is("ENDS_WITH", "/playback")]}}, per_path=True)
    everything = rule("Api", 1, 3, path_is("STARTS_WITH", "/v1/"))
    rules = load_edge_rules(edge_template(everything, per_stream))
    assert rules.check("c", "/v1/streams/a/playback") is None
    assert rules.check("c", "/v1/streams/a/playback") is not None  # the second on stream a
    # Stream b is counted apart. The blocked request ended the evaluation, so the API-wide rule counted two so far.
    assert rules.check("c", "/v1/streams/b/playback") is None
    assert rules.check("c", "/v1/streams") is None
    assert rules.check("c", "/v1/streams") is not None


@pytest.mark.parametrize("statement", [
    {"GeoMatchStatement": {"CountryCodes": ["FR"]}},
    {"ByteMatchStatement": {"FieldToMatch": {"QueryString": {}}, "PositionalConstraint": "EXACTLY",
                            "SearchString": "x", "TextTransformations": []}},
])
def test_a_rule_the_local_edge_cannot_apply_fails_the_start(statement: dict[str, Any]) -> None:
    with pytest.raises(UnresolvableError):
        load_edge_rules(edge_template(rule("Odd", 0, 10, statement)))
