"""Request and response models of the analytics API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from streamforge.models import INTEGRAL, StreamId, StrictModel

from analytics.viewer_tokens import MAX_TOKEN_CHARS

ViewerId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$",
                                description="An opaque id the player keeps for its viewer")]
ViewerToken = Annotated[str, Field(
    min_length=1, max_length=MAX_TOKEN_CHARS, pattern=r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$",
    description="From `POST /v1/streams/{id}/playback`; a secret of this viewer's session",
    json_schema_extra={"writeOnly": True})]


class HeartbeatRequest(StrictModel):
    stream_id: StreamId
    viewer_id: ViewerId
    viewer_token: ViewerToken | None = Field(
        default=None, description="Without a valid token for this stream and viewer, the heartbeat counts for nothing")
    rendition: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")] | None = None
    buffering_ms: Annotated[int, Field(ge=0, le=600_000), INTEGRAL] | None = None


class HeartbeatAccepted(BaseModel):
    accepted: bool = True
    counted: bool = Field(description="Whether it counts towards viewers and watch time (a valid viewer token)")


class PlaybackRequest(StrictModel):
    viewer_id: ViewerId | None = Field(default=None, description="Keep it across sessions so a returning viewer "
                                                                 "counts once; made for you when left out")


class PlaybackSession(BaseModel):
    stream_id: StreamId
    viewer_id: str
    viewer_token: str = Field(description="Send with every heartbeat of this session; start a new session before "
                                          "it expires")
    expires_in: int = Field(description="Seconds until the viewer token expires")
    playback_url: str


class IngestStats(BaseModel):
    bitrate_kbps: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    keyframe_interval_s: float | None = None
    packet_loss_pct: float | None = Field(default=None, description="SRT and WebRTC: packets lost, % of those expected")
    rtt_ms: float | None = Field(default=None, description="SRT and WebRTC: round-trip time to the publisher, ms")
    video_codec: str | None = Field(default=None, description="The publisher's video codec (ffmpeg's name: h264, hevc)")
    audio_codec: str | None = Field(default=None, description="The publisher's audio codec (aac, opus, mp3, ...)")


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
