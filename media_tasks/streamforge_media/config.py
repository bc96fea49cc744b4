"""Media task configuration, read and validated from environment variables once at start-up."""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from streamforge_media.ingest.rtmp.server import RtmpLimits
from streamforge_media.ingest.srt.server import SrtSettings
from streamforge_media.ingest.whip.server import WhipSettings
from streamforge_media.ladder import DEFAULT_LADDER, Rung, parse_ladder
from streamforge_media.segment_format import DEFAULT as DEFAULT_SEGMENT_FORMAT
from streamforge_media.segment_format import segment_format
from streamforge_media.transcode.pipeline import EncoderSettings

MAX_RECONNECT_GRACE_S = 1800
DEFAULT_DVR_WINDOW_S = 7200
MAX_DVR_WINDOW_S = 86400
T = TypeVar("T", int, float)


class ConfigError(ValueError):
    """One or more environment variables are missing or invalid (all problems are listed)."""


@dataclass(frozen=True)
class MediaConfig:
    streams_table: str
    stream_keys_table: str
    sessions_table: str
    media_bucket: str
    event_bus_name: str
    cdn_base_url: str
    rtmp_host: str = "0.0.0.0"
    rtmp_port: int = 1935
    reconnect_grace_s: int = 60
    ladder: tuple[Rung, ...] = DEFAULT_LADDER
    limits: RtmpLimits = field(default_factory=RtmpLimits)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    key_poll_s: float = 2.0
    health_interval_s: float = 10.0
    finalize_timeout_s: float = 60.0
    work_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "streamforge-media")
    ffmpeg_bin: str = "ffmpeg"
    ingest_lease_s: float = 30.0
    # A publisher that sends no media for this long is dropped (ARCHITECTURE §6 "Health").
    no_media_timeout_s: float = 30.0
    # A new publish with the right key replaces a publisher silent for this long (a network drop without FIN).
    takeover_silence_s: float = 5.0
    # Names this task in a stream's ingest lease; unique per process, so a restarted task is a new owner.
    task_id: str = field(default_factory=lambda: "task_" + secrets.token_hex(8))
    # The media task's HTTP port: WHIP ingest (/whip/...); 0 picks a free port, -1 turns it off.
    http_host: str = "0.0.0.0"
    http_port: int = 8889
    whip: WhipSettings = field(default_factory=WhipSettings)
    # The LL-HLS origin on the HTTP port (/ll/...) answers only requests bearing this value in
    # `llorigin.ORIGIN_SECRET_HEADER` (CloudFront's origin header); "" (locally): any request.
    ll_origin_secret: str = ""
    # SRT listener (UDP); -1 turns it off.
    srt_host: str = "0.0.0.0"
    srt_port: int = 9000
    srt: SrtSettings = field(default_factory=SrtSettings)
    # RTMPS with a certificate and key in PEM files (locally self-signed; in AWS the NLB terminates TLS); -1: off.
    rtmps_port: int = -1
    rtmps_cert_file: str = ""
    rtmps_key_file: str = ""

    # The rewind window of a stream that sets none (`dvr_window_s` on the stream), in seconds; 0: none.
    dvr_window_s: int = DEFAULT_DVR_WINDOW_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MediaConfig:
        env: Mapping[str, str] = os.environ if environ is None else environ
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is required")
            return value

        def number(name: str, default: T, low: T, high: T, kind: Callable[[str], T]) -> T:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not a number")
                return default
            if not low <= value <= high:
                problems.append(f"{name}={raw!r} must be between {low} and {high}")
                return default
            return value

        ladder = DEFAULT_LADDER
        if env.get("STREAMFORGE_LADDER"):
            try:
                ladder = parse_ladder(env["STREAMFORGE_LADDER"])
            except ValueError as exc:
                problems.append(f"STREAMFORGE_LADDER: {exc}")
        fmt = DEFAULT_SEGMENT_FORMAT
        if env.get("STREAMFORGE_SEGMENT_FORMAT"):
            try:
                fmt = segment_format(env["STREAMFORGE_SEGMENT_FORMAT"])
            except ValueError as exc:
                problems.append(f"STREAMFORGE_SEGMENT_FORMAT: {exc}")
        cdn = required("CDN_BASE_URL").rstrip("/")
        if cdn and not cdn.startswith(("http://", "https://")):
            problems.append("CDN_BASE_URL must be an http(s) URL")
        limits = RtmpLimits(
            max_message_size=number("RTMP_MAX_MESSAGE_SIZE", 16 * 1024 * 1024, 1024, 256 * 1024 * 1024, int),
            handshake_timeout_s=number("RTMP_HANDSHAKE_TIMEOUT_S", 5.0, 0.1, 120.0, float),
            idle_timeout_s=number("RTMP_IDLE_TIMEOUT_S", 30.0, 0.5, 3600.0, float),
            max_connections_per_ip=number("RTMP_MAX_CONNECTIONS_PER_IP", 16, 1, 100_000, int),
        )
        def addresses(name: str) -> tuple[str, ...]:
            values = tuple(v.strip() for v in env.get(name, "").split(",") if v.strip())
            for value in values:
                try:
                    ipaddress.ip_address(value)
                except ValueError:
                    problems.append(f"{name}: {value!r} is not an IP address")
            return values

        ice_servers = tuple(v.strip() for v in env.get("STREAMFORGE_WHIP_ICE_SERVERS", "").split(",") if v.strip())
        for url in ice_servers:
            if not url.startswith(("stun:", "turn:", "turns:")):
                problems.append(f"STREAMFORGE_WHIP_ICE_SERVERS: {url!r} is not a stun:/turn: URL")
        public_ip = addresses("STREAMFORGE_WHIP_PUBLIC_IP")
        whip = WhipSettings(
            ice_servers=ice_servers,
            keyframe_request_s=number("STREAMFORGE_WHIP_KEYFRAME_REQUEST_S", 2.0, 0.2, 60.0, float),
            cors_origin=env.get("STREAMFORGE_WHIP_CORS_ORIGIN", "*") or "*",
            connect_timeout_s=number("STREAMFORGE_WHIP_CONNECT_TIMEOUT_S", 20.0, 1.0, 300.0, float),
            public_ip=public_ip[0] if public_ip else "",
            ice_addresses=addresses("STREAMFORGE_WHIP_ICE_ADDRESSES"),
        )
        srt = SrtSettings(
            latency_ms=number("SRT_LATENCY_MS", 120, 20, 8000, int),
            peer_idle_ms=number("SRT_PEER_IDLE_MS", 5000, 1000, 60000, int),
        )
        rtmps_port = number("RTMPS_PORT", -1, -1, 65535, int)
        cert, key = env.get("RTMPS_CERT_FILE", ""), env.get("RTMPS_KEY_FILE", "")
        if rtmps_port >= 0 and not (cert and key):
            problems.append("RTMPS_PORT needs RTMPS_CERT_FILE and RTMPS_KEY_FILE")
        config = cls(
            streams_table=required("STREAMS_TABLE"),
            stream_keys_table=required("STREAM_KEYS_TABLE"),
            sessions_table=required("SESSIONS_TABLE"),
            media_bucket=required("MEDIA_BUCKET"),
            event_bus_name=required("EVENT_BUS_NAME"),
            cdn_base_url=cdn,
            rtmp_host=env.get("RTMP_HOST", "0.0.0.0"),
            rtmp_port=number("RTMP_PORT", 1935, 0, 65535, int),
            reconnect_grace_s=number("STREAMFORGE_RECONNECT_GRACE_S", 60, 0, MAX_RECONNECT_GRACE_S, int),
            ladder=ladder,
            limits=limits,
            encoder=EncoderSettings(preset=env.get("STREAMFORGE_X264_PRESET", "veryfast"), segment_format=fmt,
                                    part_target_s=number("STREAMFORGE_PART_TARGET_S", 0.5, 0.0, 1.0, float)),
            dvr_window_s=number("STREAMFORGE_DVR_WINDOW_S", DEFAULT_DVR_WINDOW_S, 0, MAX_DVR_WINDOW_S, int),
            key_poll_s=number("STREAMFORGE_KEY_POLL_S", 2.0, 0.05, 60.0, float),
            health_interval_s=number("STREAMFORGE_HEALTH_INTERVAL_S", 10.0, 0.1, 300.0, float),
            finalize_timeout_s=number("STREAMFORGE_FINALIZE_TIMEOUT_S", 60.0, 1.0, 3600.0, float),
            work_dir=Path(env.get("STREAMFORGE_WORK_DIR") or Path(tempfile.gettempdir()) / "streamforge-media"),
            ffmpeg_bin=env.get("FFMPEG_BIN", "ffmpeg"),
            ingest_lease_s=number("STREAMFORGE_INGEST_LEASE_S", 30.0, 1.0, 600.0, float),
            no_media_timeout_s=number("STREAMFORGE_NO_MEDIA_TIMEOUT_S", 30.0, 1.0, 3600.0, float),
            takeover_silence_s=number("STREAMFORGE_TAKEOVER_SILENCE_S", 5.0, 0.5, 3600.0, float),
            http_host=env.get("MEDIA_HTTP_HOST", "0.0.0.0"),
            http_port=number("MEDIA_HTTP_PORT", 8889, -1, 65535, int),
            whip=whip,
            ll_origin_secret=env.get("STREAMFORGE_LL_ORIGIN_SECRET", ""),
            srt_host=env.get("SRT_HOST", "0.0.0.0"),
            srt_port=number("SRT_PORT", 9000, -1, 65535, int),
            srt=srt,
            rtmps_port=rtmps_port,
            rtmps_cert_file=cert,
            rtmps_key_file=key,
        )
        if problems:
            raise ConfigError("invalid media task configuration: " + "; ".join(problems))
        return config
