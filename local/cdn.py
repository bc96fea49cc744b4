"""The local CDN: CloudFront's part, serving the media bucket from the emulated S3.

Objects go out with the Cache-Control and Content-Type they were stored with, plus CORS for browser
players. A miss is a 404 that may be cached for one second only, so a playlist that appears a moment
later is not hidden behind a cached error. `GET /time` is the CDN's clock (the live MPD's UTCTiming),
as a CloudFront Function answers it in AWS. `ll/...` (LL-HLS) is proxied, query string included, to the media
task's HTTP port, as CloudFront's second origin does in AWS: the origin's status, Content-Type and
Cache-Control come back unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from botocore.exceptions import ClientError as BotoClientError

from local.provision import emulator_client
from local.template import Template

log = logging.getLogger("streamforge.local.cdn")

ERROR_CACHE_CONTROL = "max-age=1"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, Origin, Accept",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag",
    "Access-Control-Max-Age": "86400",
}
# streamforge.media_layout's SERVED_PREFIXES and TIME_PATH (held equal by tests/unit/local/test_cdn_layout.py).
SERVED_PREFIXES = ("live/", "vod/", "thumbs/")
TIME_PATH = "time"
LL_PREFIX = "ll/"  # media_layout.LOW_LATENCY (held equal by the same test)
LL_TIMEOUT_S = 15.0
"""Longer than a blocking playlist request is held (3 target durations)."""


def media_bucket_of(template: Template) -> str:
    """The bucket behind the distribution that has separate cache behaviours (the media one)."""
    for _, props in template.of_type("AWS::CloudFront::Distribution"):
        config = props["DistributionConfig"]
        if not config.get("CacheBehaviors"):
            continue
        for origin in config.get("Origins", []):
            bucket_id = template.logical_id_of(origin["DomainName"])
            if template.resources.get(bucket_id, {}).get("Type") == "AWS::S3::Bucket":
                return template.resolved[bucket_id].ref
    raise LookupError("no CloudFront distribution with an S3 origin and cache behaviours in the template")


class Cdn:
    _http: ClientSession | None = None
    ll_origin: str | None = None

    def __init__(self, *, bucket: str, endpoint_url: str, ll_origin: str | None = None) -> None:
        """`ll_origin`: the media task's HTTP base URL (`http://host:8889`), None to answer `ll/` with 404."""
        self.bucket = bucket
        self._s3 = emulator_client("s3", endpoint_url)
        self.ll_origin = ll_origin.rstrip("/") if ll_origin else None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _low_latency(self, request: web.Request, key: str) -> web.Response:
        if self.ll_origin is None:
            return self._error(404, "Not Found")
        if self._http is None:
            self._http = ClientSession(timeout=ClientTimeout(total=LL_TIMEOUT_S))
        url = f"{self.ll_origin}/{key}" + (f"?{request.query_string}" if request.query_string else "")
        try:
            async with self._http.request(request.method, url) as origin:
                body = await origin.read()
                headers = {**CORS_HEADERS, "X-Cache": "Miss from local-cdn"}
                for name in ("Content-Type", "Cache-Control"):
                    if name in origin.headers:
                        headers[name] = origin.headers[name]
                return web.Response(status=origin.status, body=body, headers=headers)
        except (ClientError, TimeoutError) as error:  # the task is gone: the player falls back
            log.warning("LL-HLS origin error for %s: %s", key, error)
            return self._error(502, "Bad Gateway")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{key:.*}", self.handle)
        app.on_cleanup.append(lambda _: self.close())
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=CORS_HEADERS)
        if request.method not in ("GET", "HEAD"):
            return self._error(405, "Method Not Allowed")
        key = request.match_info["key"]
        if key == TIME_PATH:
            return self._time(request)
        if key.startswith(LL_PREFIX) and ".." not in key.split("/"):
            return await self._low_latency(request, key)
        if not key.startswith(SERVED_PREFIXES) or ".." in key.split("/"):
            return self._error(404, "Not Found")
        request_args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if "Range" in request.headers:
            request_args["Range"] = request.headers["Range"]
        if "If-None-Match" in request.headers:
            request_args["IfNoneMatch"] = request.headers["If-None-Match"]
        try:
            method = self._s3.head_object if request.method == "HEAD" else self._s3.get_object
            if request.method == "HEAD":
                request_args.pop("Range", None)
            obj = await asyncio.to_thread(method, **request_args)
        except BotoClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 502))
            if status == 304:
                return web.Response(status=304, headers=CORS_HEADERS)
            if status in (403, 404):
                return self._error(404, "Not Found")
            if status == 416:
                return self._error(416, "Range Not Satisfiable")
            log.error("origin error for %s: %s", key, error)
            return self._error(502, "Bad Gateway")
        body = b"" if request.method == "HEAD" else await asyncio.to_thread(obj["Body"].read)
        headers = {**CORS_HEADERS, "Content-Type": obj.get("ContentType", "application/octet-stream"),
                   "ETag": obj.get("ETag", ""), "Accept-Ranges": "bytes", "X-Cache": "Miss from local-cdn"}
        if obj.get("CacheControl"):
            headers["Cache-Control"] = obj["CacheControl"]
        if obj.get("ContentRange"):
            headers["Content-Range"] = obj["ContentRange"]
        status = 206 if obj.get("ContentRange") else 200
        if request.method == "HEAD":
            headers["Content-Length"] = str(obj.get("ContentLength", 0))
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, body=body, headers=headers)

    @staticmethod
    def _time(request: web.Request) -> web.Response:
        """Now, as ISO 8601 UTC with milliseconds (DASH UTCTiming `urn:mpeg:dash:utc:http-iso:2014`)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return web.Response(text="" if request.method == "HEAD" else now, content_type="text/plain",
                            headers={**CORS_HEADERS, "Cache-Control": "no-store"})

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.Response(status=status, text=message, content_type="text/plain",
                            headers={**CORS_HEADERS, "Cache-Control": ERROR_CACHE_CONTROL})
