"""The edge's per-client limits, locally: the rate-based rules of the API's web ACL, as AWS WAF applies them.

The rules are read from the synthesized edge stack (`StreamForgeEdge.template.json`, infra/edge.py), so a limit
changed in cdk.json changes here at the next synth. A rule counts each request its scope-down statement matches,
per aggregation key (the client address, and the path for custom keys), over its evaluation window; past the limit
it answers with its custom response (429 with a JSON body and Retry-After), as CloudFront does. Rules are evaluated
in priority order and the first that blocks ends the evaluation. AWS WAF notices a rate with a delay of some
seconds; here the count is exact.

Only what infra/edge.py writes is emulated (rate-based rules over `ByteMatchStatement`s on the URI path, combined
with And/Or/Not); anything else fails the start loudly instead of being silently ignored.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.template import Template, UnresolvableError

EDGE_STACK_NAME = "StreamForgeEdge"
_CONTENT_TYPES = {"APPLICATION_JSON": "application/json", "TEXT_PLAIN": "text/plain", "TEXT_HTML": "text/html"}
_POSITIONS: dict[str, Callable[[str, str], bool]] = {
    "EXACTLY": lambda value, search: value == search,
    "STARTS_WITH": str.startswith,
    "ENDS_WITH": str.endswith,
    "CONTAINS": lambda value, search: search in value,
}


@dataclass(frozen=True)
class EdgeResponse:
    """What the edge answers instead of passing the request on."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class RateRule:
    name: str
    limit: int
    window_s: float
    keys: tuple[str, ...]  # "IP" and/or "UriPath"
    matches: Callable[[str], bool]
    response: EdgeResponse
    _seen: defaultdict[tuple[str, ...], deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def over_limit(self, client: str, path: str, now: float) -> bool:
        """Counts this request for its key; True once the key has made more than `limit` in the window."""
        key = tuple(client if kind == "IP" else path for kind in self.keys)
        seen = self._seen[key]
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        seen.append(now)
        return len(seen) > self.limit


class EdgeRules:
    def __init__(self, rules: list[RateRule], clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self._clock = clock

    def check(self, client: str, path: str) -> EdgeResponse | None:
        """The edge's answer for a request from `client` (its address) to `path`, or None to pass it on."""
        now = self._clock()
        for rule in self.rules:
            if rule.matches(path) and rule.over_limit(client, path, now):
                return rule.response
        return None


def _statement(statement: dict[str, Any]) -> Callable[[str], bool]:
    """A predicate on the URI path for a WAF statement of the kinds infra/edge.py writes."""
    if "ByteMatchStatement" in statement:
        match = statement["ByteMatchStatement"]
        transformations = {t["Type"] for t in match.get("TextTransformations", [])}
        if set(match["FieldToMatch"]) != {"UriPath"} or transformations - {"NONE"}:
            raise UnresolvableError(f"only untransformed URI path matches are emulated, not {match}")
        search, test = match["SearchString"], _POSITIONS[match["PositionalConstraint"]]
        return lambda path: test(path, search)
    if "AndStatement" in statement:
        parts = [_statement(s) for s in statement["AndStatement"]["Statements"]]
        return lambda path: all(part(path) for part in parts)
    if "OrStatement" in statement:
        parts = [_statement(s) for s in statement["OrStatement"]["Statements"]]
        return lambda path: any(part(path) for part in parts)
    if "NotStatement" in statement:
        inner = _statement(statement["NotStatement"]["Statement"])
        return lambda path: not inner(path)
    raise UnresolvableError(f"WAF statement {sorted(statement)} is not emulated")


def _response(action: dict[str, Any], bodies: dict[str, Any]) -> EdgeResponse:
    if set(action) != {"Block"}:
        raise UnresolvableError(f"only blocking rate rules are emulated, not {sorted(action)}")
    custom = action["Block"].get("CustomResponse")
    if custom is None:
        # AWS WAF's own block answer.
        return EdgeResponse(403, {"Content-Type": "text/html"}, b"<h1>403 Forbidden</h1>")
    headers = {h["Name"]: h["Value"] for h in custom.get("ResponseHeaders", [])}
    body = b""
    if "CustomResponseBodyKey" in custom:
        content = bodies[custom["CustomResponseBodyKey"]]
        headers["Content-Type"] = _CONTENT_TYPES[content["ContentType"]]
        body = content["Content"].encode()
    return EdgeResponse(int(custom["ResponseCode"]), headers, body)


def _rule(rule: dict[str, Any], bodies: dict[str, Any]) -> RateRule:
    rate = rule["Statement"].get("RateBasedStatement")
    if rate is None:
        raise UnresolvableError(f"web ACL rule {rule['Name']} is not rate-based; only those are emulated")
    keys: tuple[str, ...] = ("IP",)
    if rate["AggregateKeyType"] == "CUSTOM_KEYS":
        keys = tuple(next(iter(key)) for key in rate["CustomKeys"])
        if set(keys) - {"IP", "UriPath"}:
            raise UnresolvableError(f"rate keys {keys} of {rule['Name']} are not emulated")
    elif rate["AggregateKeyType"] != "IP":
        raise UnresolvableError(f"rate key {rate['AggregateKeyType']} of {rule['Name']} is not emulated")
    scope = rate.get("ScopeDownStatement")
    return RateRule(name=rule["Name"], limit=int(rate["Limit"]), window_s=float(rate.get("EvaluationWindowSec", 300)),
                    keys=keys, matches=_statement(scope) if scope else lambda _path: True,
                    response=_response(rule["Action"], bodies))


def load_edge_rules(template: Template) -> EdgeRules:
    """The rate rules of the edge template's one CLOUDFRONT-scope web ACL, in priority order."""
    acls = [props for _, props in template.of_type("AWS::WAFv2::WebACL") if props.get("Scope") == "CLOUDFRONT"]
    if len(acls) != 1:
        raise ValueError(f"expected one CLOUDFRONT web ACL in the edge template, found {len(acls)}")
    acl = acls[0]
    if set(acl["DefaultAction"]) != {"Allow"}:
        raise UnresolvableError("only a web ACL that allows by default is emulated")
    bodies = acl.get("CustomResponseBodies", {})
    return EdgeRules([_rule(rule, bodies) for rule in sorted(acl.get("Rules", []), key=lambda r: r["Priority"])])
