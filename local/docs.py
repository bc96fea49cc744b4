"""`/v1/openapi.json`, generated from the handlers themselves, and Swagger UI at `/docs`.

The document is built in a subprocess with the functions' code, layers and environment, so the
gateway process never imports handler code. Swagger UI's assets come from the `swagger-ui-dist`
npm package installed under `web/`, so the page works offline.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from local.functions import FunctionPool

SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StreamForge API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body></html>
"""
BUILD_SCRIPT = "import json, openapi_spec; print(json.dumps(openapi_spec.build_openapi()))"


class ApiDocs:
    def __init__(self, *, pools: dict[str, FunctionPool], public_api_url: str, web_root: Path) -> None:
        self._pools = pools
        self._public_api_url = public_api_url
        self._assets = web_root / "node_modules" / "swagger-ui-dist"
        self._document: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    def routes(self) -> dict[tuple[str, str], Any]:
        routes: dict[tuple[str, str], Any] = {("GET", "/v1/openapi.json"): self.openapi, ("GET", "/docs"): self.page,
                                              ("GET", "/docs/"): self.page}
        for asset in SWAGGER_ASSETS:
            routes[("GET", f"/docs/assets/{asset}")] = self._asset_handler(asset)
        return routes

    async def _build(self) -> dict[str, Any]:
        pools = list(self._pools.values())
        specs = [pool.spec for pool in pools]
        environment: dict[str, str] = {}
        for spec in specs:
            environment.update(spec.environment)
        environment.update(pools[0].base_env)
        path = [str(specs[0].code_dir), *{str(d) for spec in specs for d in spec.layer_dirs}]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"import sys; sys.path[:0] = {path!r}; {BUILD_SCRIPT}",
            env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"building the OpenAPI document failed: {err.decode()[-500:]}")
        document: dict[str, Any] = json.loads(out)
        document["servers"] = [{"url": self._public_api_url}]
        return document

    async def openapi(self, _: web.Request) -> web.Response:
        async with self._lock:
            if self._document is None:
                self._document = await self._build()
        return web.json_response(self._document, headers={"Cache-Control": "no-cache"})

    async def page(self, _: web.Request) -> web.Response:
        return web.Response(text=SWAGGER_PAGE, content_type="text/html")

    def _asset_handler(self, asset: str) -> Any:
        async def serve(_: web.Request) -> web.StreamResponse:
            path = self._assets / asset
            if not path.is_file():
                return web.Response(status=404, text="run `make web` to install swagger-ui-dist")
            return web.FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})
        return serve
