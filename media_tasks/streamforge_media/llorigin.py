"""The LL-HLS origin: the media task's HTTP server answers `/ll/{stream_id}/...` from memory (ARCHITECTURE §6b).

Routes (on the same aiohttp application as WHIP, port 8889):

    GET /ll/{stream_id}/master.m3u8                     master playlist of the LL media playlists
    GET /ll/{stream_id}/{rendition}/index.m3u8          LL media playlist; `_HLS_msn`/`_HLS_part` block
                                                        (RFC 8216bis §6.2.5.2)
    GET /ll/{stream_id}/{rendition}/p{n}.m4s            a part; the next one (the PRELOAD-HINT) blocks until made
    GET /ll/{stream_id}/{rendition}/s{msn}.m4s          a completed segment of the window
    GET /ll/{stream_id}/{rendition}/init{g}.mp4         a generation's CMAF header

A request for a stream another task ingests is forwarded to that task (`locate` finds its address, recorded
beside the ingest lease) with `FORWARDED_HEADER`, and a forwarded request is never forwarded again. Behind
CloudFront, every request must carry `ORIGIN_SECRET_HEADER` with the configured secret (else 403): the
HTTP port is public for WHIP, the LL origin is for the CDN only.

Answers: 400 for a malformed or too-far `_HLS_msn` (more than one segment ahead), 503 when a blocking request
is not satisfied within three target durations, 404 for a stream no task ingests or a part that has left the
window, 502 when the ingesting task does not answer a forwarded request. Playlists are cacheable for one part
target (the CDN keys on the query); parts, segments and init segments are immutable.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from streamforge_media import hls
from streamforge_media.ladder import Rendition
from streamforge_media.packaging import llhls
from streamforge_media.segment_format import SegmentFormat

log = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
ORIGIN_SECRET_HEADER = "X-StreamForge-Origin-Verify"
"""What CloudFront sends the origin (infra.constants.LL_ORIGIN_SECRET_HEADER, held equal by a test)."""
FORWARDED_HEADER = "X-StreamForge-Forwarded"
FORWARD_TIMEOUT_S = 15.0
"""Longer than a blocking request is held (3 target durations)."""
Locate = Callable[[str], Awaitable[str | None]]
"""Stream id -> the HTTP base URL of the task ingesting it, None if none (or this one)."""
_PART = re.compile(r"p(\d{1,12})\.m4s")
_SEGMENT = re.compile(r"s(\d{1,12})\.m4s")
_INIT = re.compile(r"init(\d{1,6})\.mp4")


@dataclass
class LowLatencyStream:
    """The LL state of one stream this task ingests: its renditions' parts and the ladder for the master."""

    stream_id: str
    fmt: SegmentFormat
    part_target_s: float
    segment_s: float
    ladder: tuple[Rendition, ...] = ()
    fps: float = 0.0
    has_audio: bool = False
    renditions: dict[str, llhls.LowLatencyRendition] = field(default_factory=dict)
    generation: int = -1

    def use_ladder(self, ladder: tuple[Rendition, ...], *, fps: float, has_audio: bool) -> None:
        """The ladder from now on; renditions that leave it are ended."""
        self.ladder, self.fps, self.has_audio = ladder, fps, has_audio
        names = {r.name for r in ladder}
        for name, rendition in self.renditions.items():
            if name not in names:
                rendition.end()
        for r in ladder:
            current = self.renditions.get(r.name)
            if current is None or current.ended:
                self.renditions[r.name] = llhls.LowLatencyRendition(
                    r.name, part_target_s=self.part_target_s, segment_s=self.segment_s)

    def generation_started(self) -> None:
        self.generation += 1

    def add_fragment(self, rendition: str, init: bytes, fragment: llhls.Fragment, origin_s: float) -> None:
        """A fragment of the current generation's `rendition`, whose media time 0 was at wall clock `origin_s`."""
        track = self.renditions.get(rendition)
        if track is None or track.ended:
            return
        try:
            track.add_part(max(self.generation, 0), init, fragment.data,
                           duration_s=fragment.duration / fragment.timescale, independent=fragment.independent,
                           wall_clock_s=origin_s + fragment.start / fragment.timescale)
        except ValueError as exc:  # players would stall on it: this rendition's LL playlist ends here
            log.error("stream %s, %s: %s; its LL-HLS playlist ends", self.stream_id, rendition, exc)
            track.end()

    def end(self) -> None:
        for rendition in self.renditions.values():
            rendition.end()

    def master(self) -> str | None:
        if not self.ladder or not all(self.renditions[r.name].position for r in self.ladder):
            return None
        return hls.render_master(self.ladder, fps=self.fps, has_audio=self.has_audio, fmt=self.fmt)

    def reports(self, rendition: str) -> dict[str, llhls.PlaylistPosition | None]:
        return {r.name: self.renditions[r.name].position for r in self.ladder if r.name != rendition}


class LowLatencyOrigin:
    """The streams this task serves as LL-HLS, by stream id, and their HTTP routes."""

    def __init__(self, secret: str = "", locate: Locate | None = None) -> None:
        """`secret`: the value `ORIGIN_SECRET_HEADER` must carry ("" accepts any request); `locate`: where
        requests for streams ingested elsewhere go (None: they get 404)."""
        self.streams: dict[str, LowLatencyStream] = {}
        self.secret = secret
        self.locate = locate
        self._http: ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ll/{stream_id}/master.m3u8", self._here_or_forwarded(self.master))
        app.router.add_get("/ll/{stream_id}/{rendition}/index.m3u8", self._here_or_forwarded(self.playlist))
        app.router.add_get("/ll/{stream_id}/{rendition}/{name}", self._here_or_forwarded(self.media))
        app.on_cleanup.append(lambda _: self.close())

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _here_or_forwarded(self, handler: Callable[[web.Request], Awaitable[web.Response]]) \
            -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if self.secret and not hmac.compare_digest(request.headers.get(ORIGIN_SECRET_HEADER, ""), self.secret):
                raise web.HTTPForbidden(text="the LL-HLS origin answers the CDN only\n")
            if request.match_info["stream_id"] not in self.streams and self.locate is not None \
                    and FORWARDED_HEADER not in request.headers:
                address = await self.locate(request.match_info["stream_id"])
                if address:
                    return await self._forward(request, address)
            return await handler(request)
        return handle

    async def _forward(self, request: web.Request, address: str) -> web.Response:
        """The same request, answered by the task at `address`: status, body, Content-Type, Cache-Control."""
        if self._http is None:
            self._http = ClientSession(timeout=ClientTimeout(total=FORWARD_TIMEOUT_S))
        headers = {FORWARDED_HEADER: "1", **({ORIGIN_SECRET_HEADER: self.secret} if self.secret else {})}
        try:
            async with self._http.get(f"{address.rstrip('/')}{request.path_qs}", headers=headers) as answer:
                body = await answer.read()
                kept = {k: answer.headers[k] for k in ("Content-Type", "Cache-Control") if k in answer.headers}
                return web.Response(status=answer.status, body=body, headers=kept)
        except (ClientError, TimeoutError) as exc:
            log.warning("could not forward %s to %s: %s", request.path, address, exc)
            raise web.HTTPBadGateway(text="the ingesting task did not answer\n") from None

    def _stream(self, request: web.Request) -> LowLatencyStream:
        stream = self.streams.get(request.match_info["stream_id"])
        if stream is None:
            raise web.HTTPNotFound(text="stream not ingested here\n")
        return stream

    def _rendition(self, request: web.Request) -> tuple[LowLatencyStream, llhls.LowLatencyRendition]:
        stream = self._stream(request)
        rendition = stream.renditions.get(request.match_info["rendition"])
        if rendition is None:
            raise web.HTTPNotFound(text="no such rendition\n")
        return stream, rendition

    async def master(self, request: web.Request) -> web.Response:
        text = self._stream(request).master()
        if text is None:
            raise web.HTTPNotFound(text="not live yet\n")
        return web.Response(text=text, content_type=hls.PLAYLIST_CONTENT_TYPE, headers={"Cache-Control": "max-age=1"})

    async def playlist(self, request: web.Request) -> web.Response:
        stream, rendition = self._rendition(request)
        try:
            directive = llhls.BlockingRequest.from_query(request.query)
            directive.check(rendition)
        except llhls.BadRequest as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        if not await rendition.wait_for(lambda: directive.ready(rendition), rendition.block_timeout_s) \
                and not rendition.ended:  # once ended, the playlist (with EXT-X-ENDLIST) is the answer
            raise web.HTTPServiceUnavailable(text="the requested segment or part was not produced in time\n")
        text = llhls.render_playlist(rendition, stream.reports(rendition.name))
        if text is None:
            raise web.HTTPNotFound(text="not live yet\n")
        # A blocking response is final for its query; the bare URL changes with every part.
        max_age = 60 if directive.msn is not None else max(1, int(stream.part_target_s))
        return web.Response(text=text, content_type=hls.PLAYLIST_CONTENT_TYPE,
                            headers={"Cache-Control": f"max-age={max_age}"})

    async def media(self, request: web.Request) -> web.Response:
        stream, rendition = self._rendition(request)
        name = request.match_info["name"]
        body: bytes | None = None
        if match := _PART.fullmatch(name):
            number = int(match[1])
            if number == rendition.next_part:  # the PRELOAD-HINT: held until it exists
                await rendition.wait_for(lambda: rendition.part(number) is not None, rendition.block_timeout_s)
            part = rendition.part(number)
            body = part.data if part is not None else None
        elif match := _SEGMENT.fullmatch(name):
            segment = rendition.segment(int(match[1]))
            body = segment.data if segment is not None else None
        elif match := _INIT.fullmatch(name):
            body = rendition.inits.get(int(match[1]))
        if body is None:
            raise web.HTTPNotFound(text="not in the low-latency window\n")
        content_type = stream.fmt.init_content_type if name.endswith(".mp4") else stream.fmt.content_type
        return web.Response(body=body, content_type=content_type, headers={"Cache-Control": IMMUTABLE})
