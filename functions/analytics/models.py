"""Request and response models of the analytics API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from streamforge.models import StreamId, StrictModel


class HeartbeatRequest(StrictModel):
    stream_id: StreamId
    viewer_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$",
                                    description="An opaque id the player keeps for its viewer")]
    rendition: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")] | None = None
    buffering_ms: Annotated[int, Field(ge=0, le=600_000)] | None = None


class HeartbeatAccepted(BaseModel):
    accepted: bool = True


class IngestStats(BaseModel):
    bitrate_kbps: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    keyframe_interval_s: float | None = None
    packet_loss_pct: float | None = Field(default=None, description="SRT and WebRTC: packets lost, % of those expected")
    rtt_ms: float | None = Field(default=None, description="SRT and WebRTC: round-trip time to the publisher, ms")


class TimelinePoint(BaseModel):
    t: str = Field(description="Start of the 10 s bucket, ISO 8601 UTC")
    viewers: int
    bitrate_kbps: float | None


class StreamAnalytics(BaseModel):
    concurrent_viewers: int
    peak_viewers: int
    total_views: int = Field(description="Unique viewers of the current (or latest) session")
    watch_minutes: float
    ingest: IngestStats
    timeline: list[TimelinePoint]
