"""WHIP endpoint (RFC 9725) on the media task's HTTP port: a browser or OBS publishes over WebRTC.

    POST   /whip/{stream_id}                 Authorization: Bearer <stream key>, application/sdp offer
                                             → 201 SDP answer, Location, ETag
    DELETE /whip/{stream_id}/{resource_id}   ends the publish (→ 200; the session's grace applies as for RTMP)
    PATCH  /whip/{stream_id}/{resource_id}   405: no trickle ICE or ICE restart (RFC 9725 §4.3 allows that)
    OPTIONS on either                        CORS preflight, so a web page can publish

Order on POST: the key (a read-only look-up of its hash, and its stream must be the URL's), the body's type
and size, the offer (`sdp.check_offer`), then the session layer's `admit` (key hash checked in constant time
again, lease taken, session started), and only then a peer connection and its UDP sockets. So a wrong or
missing key (401), a busy stream (409) or a bad offer (400/415/422) never opens a socket. The key is never
logged and never part of a URL.

Media: each track's frames come out of aiortc still encoded (`passthrough`), become neutral access units
(`frames`) and go to the session's `MediaSink` in arrival order, through one queue. A keyframe is asked
for (RTCP PLI, RFC 4585 §6.3.1) at once and every `keyframe_request_s` (browsers send one only when
asked). Packet loss (RTCP receiver statistics) and the round-trip time of an ICE binding request on the
nominated pair (RFC 8445 §7.2) are the connection's transport figures for the ingest health.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from streamforge.keys import hash_stream_key

from streamforge_media.ingest.whip import passthrough
from streamforge_media.ingest.whip.frames import CodecError, EncodedFrame, frames_for
from streamforge_media.ingest.whip.sdp import OfferError, advertise, check_offer, codec_preferences
from streamforge_media.media import AccessUnit, MediaKind, PublisherHints
from streamforge_media.ports import AdmissionHandler, MediaSink, Refusal, TransportStats

log = logging.getLogger(__name__)

SDP_TYPE = "application/sdp"
_KEY_PREFIX = "sk_"
_MAX_KEY_LENGTH = 256
DRAIN_QUIET_S = 0.1
DRAIN_MAX_S = 1.0
_REFUSALS = {Refusal.UNAUTHORIZED: (401, "unauthorized", "the stream key is not valid for this stream"),
             Refusal.BUSY: (409, "conflict", "the stream already has a live publisher")}


@dataclass(frozen=True)
class WhipSettings:
    """`ice_servers`: STUN/TURN URLs given to the peer connection (none: host candidates only; never a
    public default). `ice_addresses`: the local addresses candidates are gathered on (empty: every
    non-loopback one; "127.0.0.1" makes a loopback-only test possible). `public_ip`: the address a 1:1 NAT
    maps the task to (a Fargate task's public IP), advertised in the answer's host candidates instead of
    the private one (a NAT that maps 1:1 keeps the port, so the candidate stays reachable).
    `keyframe_request_s`: seconds between PLIs, the segment duration (`first_keyframe_request_s` until the
    first keyframe). `max_offer_bytes`: the largest offer taken (413 above). `cors_origin`: the
    Access-Control-Allow-Origin sent. `connect_timeout_s`: a publish whose WebRTC connection is not up by
    then is ended. Times in seconds.
    """

    ice_servers: tuple[str, ...] = ()
    ice_addresses: tuple[str, ...] = ()
    public_ip: str = ""
    keyframe_request_s: float = 2.0
    first_keyframe_request_s: float = 0.5
    max_offer_bytes: int = 64 * 1024
    cors_origin: str = "*"
    connect_timeout_s: float = 20.0


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _bearer(request: web.Request) -> str | None:
    """The Bearer token of the Authorization header (RFC 6750 §2.1), or None."""
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_KEY_LENGTH:
        return None
    return token


class WhipEndpoint:
    """The WHIP routes; `add_routes` puts them on the media task's aiohttp application."""

    def __init__(self, handler: AdmissionHandler, settings: WhipSettings | None = None) -> None:
        passthrough.install()
        self.handler = handler
        self.settings = settings = settings or WhipSettings()
        if settings.ice_addresses:
            passthrough.gather_on(settings.ice_addresses)
        self.sessions: dict[str, WhipSession] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", "/whip/{stream_id}", self.post)
        app.router.add_route("OPTIONS", "/whip/{stream_id}", self.options)
        app.router.add_route("DELETE", "/whip/{stream_id}/{resource_id}", self.delete)
        app.router.add_route("PATCH", "/whip/{stream_id}/{resource_id}", self.patch)
        app.router.add_route("OPTIONS", "/whip/{stream_id}/{resource_id}", self.options)
        app.on_response_prepare.append(self._cors)

    async def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/whip/"):
            response.headers["Access-Control-Allow-Origin"] = self.settings.cors_origin
            response.headers["Access-Control-Expose-Headers"] = "Location, ETag"
            if self.settings.cors_origin != "*":
                response.headers["Vary"] = "Origin"

    async def options(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
            "Access-Control-Max-Age": "600"})

    async def post(self, request: web.Request) -> web.Response:
        """RFC 9725 §4.2: an offer in, the answer out (201), or 400/401/409/413/415/422.

        The key comes first (RFC 9725 §4.7: a request that is not authorised is refused whatever it carries),
        with a read-only look-up; then the body; then the session layer's `admit`, the first write.
        """
        stream_id = request.match_info["stream_id"]
        key = _bearer(request)
        check = await self.handler.check_key(key) if key is not None and key.startswith(_KEY_PREFIX) else None
        if check is None or not hmac.compare_digest(check.stream_id.encode(), stream_id.encode()):
            log.info("WHIP publish to %s refused: unauthorized", stream_id)
            return _error(401, "unauthorized", "send this stream's key as Authorization: Bearer <key>",
                          **{"WWW-Authenticate": 'Bearer realm="whip"'})
        assert key is not None
        if request.content_type != SDP_TYPE:
            return _error(415, "unsupported_media_type", f"the offer must be sent as {SDP_TYPE}")
        limit = self.settings.max_offer_bytes
        if request.content_length is not None and request.content_length > limit:
            return _error(413, "payload_too_large", f"the offer is larger than {limit} bytes")
        body = await request.content.read(limit + 1)
        if len(body) > limit:
            return _error(413, "payload_too_large", f"the offer is larger than {limit} bytes")
        try:
            offer = check_offer(body.decode("utf-8"))
        except UnicodeDecodeError:
            return _error(400, "bad_request", "the offer is not UTF-8 text")
        except OfferError as exc:
            return _error(exc.status, "bad_request" if exc.status == 400 else "unprocessable_content", str(exc))
        session = WhipSession(self, stream_id, hash_stream_key(key))
        admission = await self.handler.admit(key, session, stream_id=stream_id)
        if admission.sink is None:
            status, code, message = _REFUSALS[admission.refusal or Refusal.UNAUTHORIZED]
            log.info("WHIP publish to %s refused: %s", stream_id, code)
            extra = {"WWW-Authenticate": 'Bearer realm="whip"'} if status == 401 else {}
            return _error(status, code, message, **extra)
        self.sessions[session.resource_id] = session
        try:
            answer = await session.start(admission.sink, offer.sdp, offer.kinds)
        except Exception as exc:  # aiortc refused what check_offer let through: end what was started
            log.warning("WHIP publish to %s: could not answer the offer: %s", stream_id, exc)
            await session.close("the offer could not be answered")
            return _error(422, "unprocessable_content", "the offer could not be answered")
        log.info("WHIP publish to %s accepted as %s", stream_id, session.resource_id)
        return web.Response(status=201, body=answer.encode(), content_type=SDP_TYPE, headers={
            "Location": f"/whip/{stream_id}/{session.resource_id}", "ETag": session.etag})

    def _resource(self, request: web.Request) -> WhipSession | None:
        session = self.sessions.get(request.match_info["resource_id"])
        if session is None or session.stream_id != request.match_info["stream_id"]:
            return None
        return session

    async def delete(self, request: web.Request) -> web.Response:
        """RFC 9725 §4.2 teardown: 200 once the publish has ended (its transcoder stopped); 404 when unknown.

        The resource URL is unguessable (128 random bits) and is the credential; a Bearer token sent with it
        (OBS sends one) must still be the publishing key (401 otherwise).
        """
        session = self._resource(request)
        if session is None:
            return _error(404, "not_found", "no such WHIP session")
        key = _bearer(request)
        if request.headers.get("Authorization") and (
                key is None or not hmac.compare_digest(hash_stream_key(key), session.key_hash)):
            return _error(401, "unauthorized", "the stream key does not match this session",
                          **{"WWW-Authenticate": 'Bearer realm="whip"'})
        await session.close("publisher sent DELETE", drain=True)
        return web.Response(status=200)

    async def patch(self, request: web.Request) -> web.Response:
        if self._resource(request) is None:
            return _error(404, "not_found", "no such WHIP session")
        return _error(405, "method_not_allowed", "trickle ICE and ICE restarts are not supported; "
                      "send every candidate in the offer", Allow="DELETE, OPTIONS")

    async def close(self) -> None:
        """End every WHIP publish (the task is stopping)."""
        await asyncio.gather(*(s.close("server shutting down") for s in list(self.sessions.values())))


class WhipSession:
    """One WHIP publish: the peer connection, its tracks' readers, and the session layer's sink.

    It is the session layer's `Disconnector` and `TransportStatsSource`. `close` is idempotent; the sink's
    `on_unpublish` is called exactly once, after the last `on_unit`.
    """

    def __init__(self, endpoint: WhipEndpoint, stream_id: str, key_hash: str) -> None:
        self.endpoint = endpoint
        self.settings = endpoint.settings
        self.stream_id = stream_id
        self.key_hash = key_hash
        self.resource_id = secrets.token_urlsafe(16)
        self.etag = f'"{secrets.token_hex(8)}"'
        self.pc: RTCPeerConnection | None = None
        self.sink: MediaSink | None = None
        self.keyframes_seen = 0
        self._units: asyncio.Queue[AccessUnit | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing: asyncio.Task[None] | None = None
        self._started = time.monotonic()
        self._loss_base = (0, 0)  # packets (lost, received) at the last transport_stats()
        self._loss = (0, 0)
        self._rtt_ms = 0.0
        self._frame_arrived = asyncio.Event()

    async def start(self, sink: MediaSink, offer_sdp: str, kinds: frozenset[MediaKind]) -> str:
        """Create the peer connection, answer `offer_sdp` with H.264/Opus; return the answer's SDP."""
        self.sink = sink
        self._tasks.append(asyncio.create_task(self._feed()))
        await sink.on_hints(PublisherHints(kinds=kinds))
        servers = [RTCIceServer(urls=url) for url in self.settings.ice_servers]
        # An explicit empty list: aiortc's default would send STUN to a public server.
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)
        # aiortc negotiates codecs when the offer is applied, with the preferences of the transceiver each
        # section lands on: so the transceivers exist, with H.264/Opus preferred, before the offer does.
        for kind in sorted(kinds):
            transceiver = pc.addTransceiver(kind.value, direction="recvonly")
            transceiver.setCodecPreferences(codec_preferences(kind.value))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self._tasks.append(asyncio.create_task(self._watch_connect()))
        answer: str = pc.localDescription.sdp
        return advertise(answer, self.settings.public_ip) if self.settings.public_ip else answer

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._read(track)))
        if track.kind == "video":
            self._tasks.append(asyncio.create_task(self._request_keyframes()))

    async def _on_state(self) -> None:
        assert self.pc is not None
        if self.pc.connectionState in ("failed", "closed"):
            self.disconnect(f"WebRTC connection {self.pc.connectionState}")

    async def _watch_connect(self) -> None:
        await asyncio.sleep(self.settings.connect_timeout_s)
        if self.pc is not None and self.pc.connectionState != "connected":
            self.disconnect(f"no WebRTC connection within {self.settings.connect_timeout_s:g} s")

    async def _read(self, track: MediaStreamTrack) -> None:
        kind = MediaKind(track.kind)
        converter = frames_for(kind, self._started)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, EncodedFrame):  # a codec the hook does not pass through (never answered)
                continue
            self._frame_arrived.set()
            try:
                unit = converter.unit(frame)
            except CodecError as exc:
                log.info("WHIP %s: dropping a %s frame: %s", self.resource_id, kind, exc)
                continue
            if unit is not None:
                self.keyframes_seen += unit.keyframe and kind is MediaKind.VIDEO
                self._units.put_nowait(unit)

    async def _feed(self) -> None:
        """The sink's `on_unit` in arrival order, one at a time (the session layer's contract)."""
        assert self.sink is not None
        while (unit := await self._units.get()) is not None:
            await self.sink.on_unit(unit)

    def _video_receiver(self) -> Any:
        assert self.pc is not None
        return next((t.receiver for t in self.pc.getTransceivers() if t.kind == "video"), None)

    async def _request_keyframes(self) -> None:
        """PLI every `first_keyframe_request_s` until the first keyframe, then every `keyframe_request_s`;
        the loss and round-trip figures are refreshed on the same beat."""
        receiver = self._video_receiver()
        while receiver is not None:
            for source in receiver.getSynchronizationSources():
                await receiver._send_rtcp_pli(source.source)  # internal to the pinned aiortc
            await self._refresh_transport_stats()
            await asyncio.sleep(self.settings.keyframe_request_s if self.keyframes_seen
                                else self.settings.first_keyframe_request_s)

    async def _refresh_transport_stats(self) -> None:
        assert self.pc is not None
        lost = received = 0
        for transceiver in self.pc.getTransceivers():
            for stats in (await transceiver.receiver.getStats()).values():
                if getattr(stats, "type", "") == "inbound-rtp":
                    lost += max(0, stats.packetsLost)
                    received += stats.packetsReceived
        self._loss = (lost, received)
        with contextlib.suppress(Exception):  # no nominated pair yet, or the check timed out: keep the last
            self._rtt_ms = await _ice_round_trip_ms(self.pc) or self._rtt_ms

    def transport_stats(self) -> TransportStats | None:
        """`TransportStatsSource`: loss over the packets since the previous call, and the latest RTT."""
        lost, received = self._loss[0] - self._loss_base[0], self._loss[1] - self._loss_base[1]
        self._loss_base = self._loss
        if lost + received <= 0 and not self._rtt_ms:
            return None
        return TransportStats(100.0 * lost / (lost + received) if lost + received > 0 else 0.0, self._rtt_ms)

    def disconnect(self, reason: str) -> None:
        """`Disconnector`: close the peer connection now; the sink's `on_unpublish` follows."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(reason))

    async def close(self, reason: str, *, drain: bool = False) -> None:
        """End the publish and wait until the sink has been told (its transcoder is closed by then).

        With `drain` (a DELETE: the publisher stopped on purpose), the frames it sent before are taken first:
        those still in flight (until no frame came for `DRAIN_QUIET_S`, at most `DRAIN_MAX_S`), then those
        aiortc's jitter buffers hold back (the newest video frame waits there for the next one to begin).
        """
        if drain and self._closing is None and self.pc is not None:
            await self._drain()
        self.disconnect(reason)
        assert self._closing is not None
        await asyncio.shield(self._closing)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_MAX_S
        while loop.time() < deadline:
            self._frame_arrived.clear()
            try:
                await asyncio.wait_for(self._frame_arrived.wait(), DRAIN_QUIET_S)
            except TimeoutError:
                break
        assert self.pc is not None
        queues = []
        for transceiver in self.pc.getTransceivers():
            receiver, track = transceiver.receiver, transceiver.receiver._track
            if track is None:
                continue
            # aiortc internals, held still by the pin: the jitter buffer and the RTP timestamp mapping.
            buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer")  # noqa: B009
            mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper")  # noqa: B009
            for data, timestamp in held_frames(buffer, video=transceiver.kind == "video"):
                track._queue.put_nowait(EncodedFrame(data, mapper.map(timestamp), time.monotonic()))
            queues.append(track._queue)
        for _ in range(10_000):  # the readers take what is queued (each get() is one loop turn)
            if all(q.empty() for q in queues):
                break
            await asyncio.sleep(0)

    async def _close(self, reason: str) -> None:
        log.info("closing WHIP session %s of %s: %s", self.resource_id, self.stream_id, reason)
        self.endpoint.sessions.pop(self.resource_id, None)
        feeder = self._tasks[0] if self._tasks else None
        for task in self._tasks[1:]:
            task.cancel()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        if feeder is not None:
            self._units.put_nowait(None)
            with contextlib.suppress(Exception):
                await feeder
        if self.sink is not None:
            await self.sink.on_unpublish()


def held_frames(buffer: Any, *, video: bool) -> list[tuple[bytes, int]]:
    """(depayloaded data, RTP timestamp) of the whole frames an aiortc `JitterBuffer` still holds, in order.

    Packets are read from the buffer's origin up to the first gap; a video frame counts only when its last
    packet carries the RTP marker bit (RFC 6184 §5.1: the access unit's last packet). Nothing is removed.
    """
    frames: list[tuple[bytes, int]] = []
    run: list[Any] = []
    for count in range(buffer.capacity):
        packet = buffer._packets[(buffer._origin + count) % buffer.capacity] if buffer._origin is not None else None
        if packet is None:
            break
        if run and packet.timestamp != run[0].timestamp:
            frames.append((b"".join(p._data for p in run), run[0].timestamp))
            run = []
        run.append(packet)
    if run and (not video or run[-1].marker):
        frames.append((b"".join(p._data for p in run), run[0].timestamp))
    return frames


async def _ice_round_trip_ms(pc: RTCPeerConnection) -> float:
    """Milliseconds for one ICE binding request and its response on the nominated pair (0: no pair yet).

    The same request aioice sends for consent freshness (RFC 7675); reached through aiortc's and aioice's
    internals (`RTCIceTransport._connection`, `Connection._nominated`), which the aiortc pin holds still.
    """
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for pair in list(connection._nominated.values()):
            if connection.remote_password is None:
                return 0.0
            request = connection.build_request(pair, nominate=False)
            started = time.monotonic()
            await asyncio.wait_for(pair.protocol.request(
                request, pair.remote_addr, integrity_key=connection.remote_password.encode("utf8"),
                retransmissions=0), 1.0)
            return (time.monotonic() - started) * 1000
    return 0.0
