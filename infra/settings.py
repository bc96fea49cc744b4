"""Deployment settings, read once from CDK context (`cdk.json`, overridable with `cdk synth -c key=value`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk.aws_logs import RetentionDays
from constructs import Node

MAX_RECONNECT_GRACE_SECONDS = 1800
# A viewer token lives at least long enough for a few heartbeats (10-30 s apart), and short enough that a client
# holds few at once: docs/viewers.md.
VIEWER_TOKEN_TTL_RANGE = (30, 900)
# AWS WAF's bounds for a rate-based rule's limit (requests per evaluation window).
WAF_RATE_LIMIT_RANGE = (10, 2_000_000_000)
# Fargate CPU units and the memory (MiB) range each allows.
_FARGATE_MEMORY_RANGE = {256: (512, 2048), 512: (1024, 4096), 1024: (2048, 8192), 2048: (4096, 16384),
                         4096: (8192, 30720), 8192: (16384, 61440), 16384: (32768, 122880)}


@dataclass(frozen=True, kw_only=True)
class Rendition:
    name: str
    width: int
    height: int
    bitrate_kbps: int


@dataclass(frozen=True, kw_only=True)
class EdgeRateLimits:
    """Requests one client address may make per minute before the edge answers 429 (cdk.json `edgeRateLimits`)."""

    api: int  # any /v1/* request
    auth: int  # /v1/auth/*
    heartbeat: int  # POST /v1/analytics/heartbeat
    playback: int  # POST /v1/streams/{id}/playback, per stream

    def __post_init__(self) -> None:
        low, high = WAF_RATE_LIMIT_RANGE
        for name, limit in vars(self).items():
            if not low <= limit <= high:
                raise ValueError(f"edgeRateLimits.{name}={limit} is outside AWS WAF's {low}..{high}")


@dataclass(frozen=True, kw_only=True)
class Settings:
    auto_confirm_signup: bool
    reconnect_grace_seconds: int
    rtmps_certificate_arn: str | None
    ladder: tuple[Rendition, ...]
    media_task_cpu: int
    media_task_memory_mib: int
    media_min_tasks: int
    media_max_tasks: int
    media_cpu_target_percent: int
    powertools_layer_version: int
    api_throttle_rate_limit: int
    api_throttle_burst_limit: int
    cors_allow_origins: tuple[str, ...]
    log_retention: RetentionDays
    alarm_email: str | None
    viewer_token_ttl_seconds: int
    edge_rate_limits: EdgeRateLimits

    def __post_init__(self) -> None:
        if not 0 < self.reconnect_grace_seconds <= MAX_RECONNECT_GRACE_SECONDS:
            raise ValueError(f"reconnectGraceSeconds must be 1..{MAX_RECONNECT_GRACE_SECONDS}")
        memory_range = _FARGATE_MEMORY_RANGE.get(self.media_task_cpu)
        if memory_range is None or not memory_range[0] <= self.media_task_memory_mib <= memory_range[1]:
            raise ValueError(f"mediaTaskCpu={self.media_task_cpu} / mediaTaskMemoryMiB={self.media_task_memory_mib} "
                             "is not a Fargate size")
        if not 1 <= self.media_min_tasks <= self.media_max_tasks:
            raise ValueError("need 1 <= mediaMinTasks <= mediaMaxTasks")
        if not self.ladder:
            raise ValueError("ladder needs at least one rendition")
        low, high = VIEWER_TOKEN_TTL_RANGE
        if not low <= self.viewer_token_ttl_seconds <= high:
            raise ValueError(f"viewerTokenTtlSeconds must be {low}..{high}")

    def ladder_json(self) -> str:
        return json.dumps([vars(r) for r in self.ladder], separators=(",", ":"))

    @classmethod
    def from_context(cls, node: Node) -> Settings:
        def get(key: str) -> Any:
            value = node.try_get_context(key)
            if value is None:
                raise KeyError(f"CDK context value {key!r} is missing (see cdk.json)")
            return value

        ladder = get("ladder")
        # `-c ladder=...` on the CLI arrives as a JSON string, cdk.json gives a list.
        if isinstance(ladder, str):
            ladder = json.loads(ladder)
        limits = get("edgeRateLimits")
        if isinstance(limits, str):
            limits = json.loads(limits)
        certificate_arn = node.try_get_context("rtmpsCertificateArn") or None
        alarm_email = node.try_get_context("alarmEmail") or None
        return cls(
            auto_confirm_signup=_as_bool(get("autoConfirmSignup")),
            reconnect_grace_seconds=int(get("reconnectGraceSeconds")),
            rtmps_certificate_arn=certificate_arn,
            ladder=tuple(Rendition(**rung) for rung in ladder),
            media_task_cpu=int(get("mediaTaskCpu")),
            media_task_memory_mib=int(get("mediaTaskMemoryMiB")),
            media_min_tasks=int(get("mediaMinTasks")),
            media_max_tasks=int(get("mediaMaxTasks")),
            media_cpu_target_percent=int(get("mediaCpuTargetPercent")),
            powertools_layer_version=int(get("powertoolsLayerVersion")),
            api_throttle_rate_limit=int(get("apiThrottleRateLimit")),
            api_throttle_burst_limit=int(get("apiThrottleBurstLimit")),
            cors_allow_origins=_as_list(get("corsAllowOrigins")),
            log_retention=RetentionDays[str(get("logRetention"))],
            alarm_email=alarm_email,
            viewer_token_ttl_seconds=int(get("viewerTokenTtlSeconds")),
            edge_rate_limits=EdgeRateLimits(**{name: int(value) for name, value in limits.items()}),
        )


def _as_bool(value: Any) -> bool:
    # Context from the CLI is always a string.
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _as_list(value: Any) -> tuple[str, ...]:
    # `-c corsAllowOrigins=https://a,https://b` arrives as one string.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(item) for item in value)
