"""The WebSocket API, locally: route selection from the template, and the `@connections` management API.

`$connect` runs before the upgrade, so a non-2xx answer from the handler refuses the handshake with
that status, as API Gateway does. The management API is served on the same port, so boto3's
`apigatewaymanagementapi` client works unchanged against it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from base64 import b64encode
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from local.functions import FunctionRuntime, InvocationError
from local.http_gateway import json_error
from local.template import LOCAL_ACCOUNT, Template

log = logging.getLogger("streamforge.local.ws")

MAX_FRAME_BYTES = 128 * 1024  # API Gateway's WebSocket message limit
CONNECTIONS_PATH = "/@connections/"
LIFECYCLE_ROUTES = ("$connect", "$disconnect")


@dataclass
class WebSocketApi:
    api_id: str
    selection_expression: str
    routes: dict[str, str]  # route key -> function logical id


def load_websocket_api(template: Template) -> WebSocketApi:
    apis = [(lid, p) for lid, p in template.of_type("AWS::ApiGatewayV2::Api") if p.get("ProtocolType") == "WEBSOCKET"]
    if len(apis) != 1:
        raise ValueError(f"expected one WebSocket API in the template, found {len(apis)}")
    api_id, props = apis[0]
    integrations = {
        logical_id: template.logical_id_of(p["IntegrationUri"])
        for logical_id, p in template.of_type("AWS::ApiGatewayV2::Integration")
        if template.logical_id_of(p["ApiId"]) == api_id
    }
    routes = {
        p["RouteKey"]: integrations[template.logical_id_of(p["Target"])]
        for _, p in template.of_type("AWS::ApiGatewayV2::Route")
        if template.logical_id_of(p["ApiId"]) == api_id and "Target" in p
    }
    return WebSocketApi(api_id=api_id, selection_expression=props.get("RouteSelectionExpression", ""), routes=routes)


@dataclass
class Connection:
    connection_id: str
    socket: web.WebSocketResponse
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)


class WebSocketGateway:
    def __init__(self, api: WebSocketApi, runtime: FunctionRuntime) -> None:
        self.api = api
        self.runtime = runtime
        self.connections: dict[str, Connection] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.replace("/%40connections/", CONNECTIONS_PATH)
        if CONNECTIONS_PATH in path:
            return await self._management(request, path.split(CONNECTIONS_PATH, 1)[1].strip("/"))
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return json_error(426, "upgrade_required", "Connect with a WebSocket client")
        return await self._connect(request)

    def _event(self, route_key: str, event_type: str, connection_id: str, request: web.Request,
               **extra: Any) -> dict[str, Any]:
        now = time.time()
        return {
            "requestContext": {
                "routeKey": route_key, "eventType": event_type, "connectionId": connection_id,
                "messageDirection": "IN", "apiId": self.api.api_id, "accountId": LOCAL_ACCOUNT,
                "domainName": request.host, "stage": "local", "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(now * 1000), "connectedAt": int(now * 1000),
                "identity": {"sourceIp": request.remote or "127.0.0.1",
                             "userAgent": request.headers.get("User-Agent", "")},
            },
            "isBase64Encoded": False,
            **extra,
        }

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> int:
        function_id = self.api.routes.get(route_key)
        if function_id is None:
            return 200
        try:
            result = await self.runtime.invoke(function_id, event)
        except InvocationError as error:
            log.error("%s failed: %s", route_key, error)
            return 500
        return int(result.get("statusCode", 200)) if isinstance(result, dict) else 200

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        connection_id = b64encode(uuid.uuid4().bytes[:9]).decode().replace("/", "_").replace("+", "-")
        headers = {k: v for k, v in request.headers.items()}
        query = dict(request.query)
        connect_event = self._event("$connect", "CONNECT", connection_id, request, headers=headers,
                                    multiValueHeaders={k: [v] for k, v in headers.items()},
                                    **({"queryStringParameters": query} if query else {}))
        status = await self._invoke("$connect", connect_event)
        if status >= 300:
            return json_error(status, "unauthorized" if status in (401, 403) else "connect_refused",
                              "Connection refused")
        socket = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=30)
        connection = Connection(connection_id, socket, request.remote or "127.0.0.1",
                                request.headers.get("User-Agent", ""))
        # Registered before the handshake completes, so the client never sees an id the API calls Gone.
        self.connections[connection_id] = connection
        try:
            await socket.prepare(request)
            async for message in socket:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                connection.last_active_at = time.time()
                body = message.data if message.type == WSMsgType.TEXT else message.data.decode(errors="replace")
                route_key = self._select_route(body)
                event = self._event(route_key, "MESSAGE", connection_id, request, body=body)
                status = await self._invoke(route_key, event)
                if status >= 500:
                    await socket.send_json({"message": "Internal server error", "connectionId": connection_id})
        finally:
            self.connections.pop(connection_id, None)
            await self._invoke("$disconnect", self._event("$disconnect", "DISCONNECT", connection_id, request))
        return socket

    def _select_route(self, body: str) -> str:
        """`$request.body.<field>` selection; anything that doesn't select a known route goes to `$default`."""
        prefix = "$request.body."
        if not self.api.selection_expression.startswith(prefix):
            return "$default"
        try:
            value: Any = json.loads(body)
            for part in self.api.selection_expression[len(prefix):].split("."):
                value = value.get(part) if isinstance(value, dict) else None
        except ValueError:
            return "$default"
        # Lifecycle routes are never selected by a message.
        selectable = isinstance(value, str) and value in self.api.routes and value not in LIFECYCLE_ROUTES
        return value if selectable else "$default"

    async def _management(self, request: web.Request, connection_id: str) -> web.Response:
        connection = self.connections.get(connection_id)
        if connection is None or connection.socket.closed:
            return web.json_response({"message": "Gone"}, status=410,
                                     headers={"x-amzn-ErrorType": "GoneException"})
        if request.method == "POST":
            data = await request.read()
            if len(data) > MAX_FRAME_BYTES:
                return web.json_response({"message": "Payload too large"}, status=413,
                                         headers={"x-amzn-ErrorType": "PayloadTooLargeException"})
            await connection.socket.send_str(data.decode(errors="replace"))
            return web.Response(status=200)
        if request.method == "GET":
            iso = "%Y-%m-%dT%H:%M:%S.000Z"
            return web.json_response({  # the wire names of the real API, which boto3 maps to ConnectedAt etc.
                "connectedAt": time.strftime(iso, time.gmtime(connection.connected_at)),
                "lastActiveAt": time.strftime(iso, time.gmtime(connection.last_active_at)),
                "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            })
        if request.method == "DELETE":
            await connection.socket.close()
            return web.Response(status=204)
        return json_error(405, "method_not_allowed", f"{request.method} is not supported on @connections")

    async def close_all(self) -> None:
        for connection in list(self.connections.values()):
            await connection.socket.close()
