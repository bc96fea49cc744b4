"""The HTTP API, locally: routes, JWT authorizer, throttling and CORS read from the template.

Each request becomes an API Gateway payload v2.0 event for the route's function, and the function's
answer becomes the HTTP response, as API Gateway does it. In front of it, as CloudFront's web ACL is in AWS,
the edge's per-client limits (local/edge.py), keyed on the client's address.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from local.edge import EdgeRules
from local.functions import FunctionRuntime, InvocationError
from local.jwt_authorizer import JwtAuthorizer, MissingToken, Unauthorized, claims_as_api_gateway_strings
from local.template import LOCAL_ACCOUNT, Template

log = logging.getLogger("streamforge.local.http")

# API Gateway's own payload limit for HTTP APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded",
              "application/javascript", "application/problem+json")


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


def gateway_answer(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An answer the HTTP API gives itself, before or instead of any function: AWS's shape, `{"message": ...}`
    (compact, as AWS sends it), never the application's error shape (docs/api.md, "Answers from the gateway")."""
    return web.Response(status=status, text=json.dumps({"message": message}, separators=(",", ":")),
                        content_type="application/json", headers=headers)


def bearer_challenge(error: Unauthorized) -> dict[str, str]:
    """The `www-authenticate` header AWS's JWT authorizer adds when it refuses a token it was given; a request
    without a token gets the 401 without it (AWS documents the header for refused tokens only)."""
    if isinstance(error, MissingToken):
        return {}
    description = str(error).replace('"', "'")
    return {"www-authenticate": f'Bearer scope="" error="invalid_token" error_description="{description}"'}


@dataclass
class Route:
    method: str  # "ANY" matches every method
    path: str | None  # None for $default
    function_id: str
    authorizer: JwtAuthorizer | None
    scopes: list[str]
    pattern: re.Pattern[str] | None = None
    literal_segments: int = 0
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.path is None:
            return
        parts, regex = self.path.strip("/").split("/"), []
        for part in parts:
            if part.startswith("{") and part.endswith("+}"):
                regex.append(f"(?P<{part[1:-2]}>.+)")
                self.greedy = True
            elif part.startswith("{") and part.endswith("}"):
                regex.append(f"(?P<{part[1:-1]}>[^/]+)")
            else:
                regex.append(re.escape(part))
                self.literal_segments += 1
        self.pattern = re.compile("^/" + "/".join(regex) + "/?$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        if self.pattern is None:
            return {}
        found = self.pattern.match(path)
        return found.groupdict() if found else None

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        """API Gateway prefers literal paths, then parameters, then greedy paths, then $default."""
        return (self.pattern is not None, not self.greedy, self.literal_segments, self.method != "ANY")

    @property
    def route_key(self) -> str:
        return "$default" if self.path is None else f"{self.method} {self.path}"


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class HttpApi:
    api_id: str
    routes: list[Route]
    cors: dict[str, Any]
    throttle: TokenBucket | None


def jwks_url_for(issuer: str, endpoint_url: str) -> str:
    pool_id = issuer.rstrip("/").rsplit("/", 1)[-1]
    return f"{endpoint_url.rstrip('/')}/{pool_id}/.well-known/jwks.json"


def load_http_api(template: Template, *, endpoint_url: str) -> HttpApi:
    apis = [lid for lid, props in template.of_type("AWS::ApiGatewayV2::Api") if props.get("ProtocolType") == "HTTP"]
    if len(apis) != 1:
        raise ValueError(f"expected one HTTP API in the template, found {len(apis)}")
    api_id = apis[0]
    authorizers = {}
    for logical_id, props in template.of_type("AWS::ApiGatewayV2::Authorizer"):
        if template.logical_id_of(props["ApiId"]) != api_id or props.get("AuthorizerType") != "JWT":
            continue
        jwt_config = props["JwtConfiguration"]
        issuer = template.resolve(jwt_config["Issuer"])
        header = props.get("IdentitySource", ["$request.header.Authorization"])[0].rsplit(".", 1)[-1]
        authorizers[logical_id] = JwtAuthorizer(
            issuer=issuer, audiences=[str(a) for a in template.resolve(jwt_config.get("Audience", []))],
            jwks_url=jwks_url_for(issuer, endpoint_url), header=header.lower(),
        )
    integrations = {
        logical_id: template.logical_id_of(props["IntegrationUri"])
        for logical_id, props in template.of_type("AWS::ApiGatewayV2::Integration")
        if template.logical_id_of(props["ApiId"]) == api_id
    }
    routes = []
    for _, props in template.of_type("AWS::ApiGatewayV2::Route"):
        if template.logical_id_of(props["ApiId"]) != api_id:
            continue
        route_key = props["RouteKey"]
        method, _, path = route_key.partition(" ")
        authorizer = None
        if props.get("AuthorizationType") == "JWT":
            authorizer = authorizers[template.logical_id_of(props["AuthorizerId"])]
        routes.append(Route(
            method="ANY" if route_key == "$default" else method,
            path=None if route_key == "$default" else path,
            function_id=integrations[template.logical_id_of(props["Target"])],
            authorizer=authorizer, scopes=list(props.get("AuthorizationScopes", [])),
        ))
    routes.sort(key=lambda r: r.specificity, reverse=True)
    throttle = None
    for _, props in template.of_type("AWS::ApiGatewayV2::Stage"):
        settings = props.get("DefaultRouteSettings", {})
        if template.logical_id_of(props["ApiId"]) == api_id and "ThrottlingRateLimit" in settings:
            throttle = TokenBucket(rate=float(settings["ThrottlingRateLimit"]),
                                   burst=float(settings.get("ThrottlingBurstLimit", settings["ThrottlingRateLimit"])))
    return HttpApi(api_id=api_id, routes=routes, cors=template.properties(api_id).get("CorsConfiguration", {}),
                   throttle=throttle)


def is_utf8(raw: bytes) -> bool:
    """A body that claims to be text but isn't UTF-8 goes to the function base64-encoded, never dropped."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_event(request: web.Request, body: bytes, route: Route, params: dict[str, str],
                claims: dict[str, Any] | None, api_id: str) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers and key != "cookie" else value
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    query: dict[str, str] = {}
    for name, value in request.query.items():
        query[name] = f"{query[name]},{value}" if name in query else value
    content_type = headers.get("content-type", "")
    is_text = not body or (content_type.startswith(TEXT_TYPES) and is_utf8(body))
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string,
        "headers": headers,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": api_id,
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {"method": request.method, "path": request.path, "protocol": f"HTTP/{request.version.major}."
                     f"{request.version.minor}", "sourceIp": request.remote or "127.0.0.1",
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": claims_as_api_gateway_strings(claims),
                    "scopes": str(claims["scope"]).split() if "scope" in claims else None}}
    return event


def to_response(result: Any) -> web.Response:
    """Payload format 2.0: a dict with statusCode is a response; anything else is a 200 JSON body."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return web.Response(status=200, text=body, content_type="application/json")
    raw = result.get("body") or ""
    payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    response = web.Response(status=int(result["statusCode"]), body=payload)
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    if "Content-Type" not in response.headers:
        response.headers["Content-Type"] = "application/json"
    return response


ExtraRoute = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpGateway:
    def __init__(self, api: HttpApi, runtime: FunctionRuntime, *,
                 extra_routes: dict[tuple[str, str], ExtraRoute] | None = None, edge: EdgeRules | None = None) -> None:
        self.api = api
        self.runtime = runtime
        self.extra_routes = extra_routes or {}
        self.edge = edge

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        # Any path, a decoded newline included (`.` would stop at it and leave aiohttp's text/plain 404).
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.handle)
        return app

    def _cors_headers(self, origin: str | None) -> dict[str, str]:
        allowed = self.api.cors.get("AllowOrigins", [])
        if not origin or not allowed or ("*" not in allowed and origin not in allowed):
            return {}
        headers = {"Access-Control-Allow-Origin": "*" if "*" in allowed else origin}
        if self.api.cors.get("ExposeHeaders"):
            headers["Access-Control-Expose-Headers"] = ",".join(self.api.cors["ExposeHeaders"])
        if self.api.cors.get("AllowCredentials"):
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    async def handle(self, request: web.Request) -> web.StreamResponse:
        cors = self._cors_headers(request.headers.get("Origin"))
        response = await self._dispatch(request, cors)
        response.headers.update(cors)
        return response

    async def _dispatch(self, request: web.Request, cors: dict[str, str]) -> web.StreamResponse:
        blocked = self.edge.check(request.remote or "", request.path) if self.edge is not None else None
        if blocked is not None:
            return web.Response(status=blocked.status, headers=blocked.headers, body=blocked.body)
        extra = self.extra_routes.get((request.method if request.method != "HEAD" else "GET", request.path))
        if extra is not None:
            return await extra(request)
        if request.method == "OPTIONS" and cors and "Access-Control-Request-Method" in request.headers:
            return web.Response(status=204, headers={
                "Access-Control-Allow-Methods": ",".join(self.api.cors.get("AllowMethods", ["*"])),
                "Access-Control-Allow-Headers": ",".join(self.api.cors.get("AllowHeaders", ["*"])),
                "Access-Control-Max-Age": str(self.api.cors.get("MaxAge", 0)),
            })
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return json_error(413, "payload_too_large", "Request body exceeds 10 MB")
        route, params = self._route(request.method, request.path)
        if route is None:
            return gateway_answer(404, "Not Found")
        if self.api.throttle is not None and not self.api.throttle.take():
            return gateway_answer(429, "Too Many Requests")
        claims = None
        if route.authorizer is not None:
            try:
                headers = {k.lower(): v for k, v in request.headers.items()}
                claims = await asyncio.to_thread(route.authorizer.authorize, headers, route.scopes)
            except Unauthorized as error:
                log.info("401 %s %s: %s", request.method, request.path, error)
                return gateway_answer(401, "Unauthorized", bearer_challenge(error))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, "payload_too_large", "Request body exceeds 10 MB")
        event = build_event(request, body, route, params, claims, self.api.api_id)
        try:
            result = await self.runtime.invoke(route.function_id, event)
        except InvocationError as error:
            log.error("%s %s failed: %s", request.method, request.path, error)
            return gateway_answer(500, "Internal Server Error")
        return to_response(result)

    def _route(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.api.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None, {}
