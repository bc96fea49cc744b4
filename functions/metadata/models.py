"""Request and response models of the streams API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from streamforge.models import INTEGRAL, PartialUpdate, StreamId, StrictModel
from streamforge.streams import StreamStatus

# Spelled out rather than `\S`: regex engines disagree on which Unicode characters are whitespace.
Title = Annotated[str, Field(min_length=1, max_length=120, pattern=r"[^\t\n\v\f\r ]",
                            description="Not only spaces")]
Description = Annotated[str, Field(max_length=2000)]
Tag = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _\-]*$")]
Tags = Annotated[list[Tag], Field(max_length=10)]
KeyName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")]


# SRT's passphrase (SRTO_PASSPHRASE): 10 to 79 characters; AES encryption of the caller's stream.
SrtPassphrase = Annotated[str, Field(min_length=10, max_length=79, description=(
    "SRT callers must encrypt with this passphrase (AES, SRT's `passphrase` option); never returned. "
    "An empty string in PATCH removes it."))]


# The rewind (DVR) window: how far back a viewer may seek in the live stream; 0 turns rewinding off.
DvrWindow = Annotated[int, Field(ge=0, le=86400, description=(
    "Seconds a viewer can seek back in the live stream (`dvr_url`, and the MPD's timeShiftBufferDepth); "
    "0: none. Unset: the media task's default (STREAMFORGE_DVR_WINDOW_S, 7200)")), INTEGRAL]


class CreateStreamRequest(StrictModel):
    title: Title
    description: Description = ""
    tags: Tags = Field(default_factory=list)
    record: bool = True
    dvr_window_s: DvrWindow | SkipJsonSchema[None] = None
    srt_passphrase: SrtPassphrase | SkipJsonSchema[None] = None


class UpdateStreamRequest(PartialUpdate):
    srt_passphrase: SrtPassphrase | Literal[""] | SkipJsonSchema[None] = None
    title: Title | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    tags: Tags | SkipJsonSchema[None] = None
    record: bool | SkipJsonSchema[None] = None
    reconnect_grace_s: Annotated[int, Field(ge=0, le=1800), INTEGRAL] | SkipJsonSchema[None] = None
    dvr_window_s: DvrWindow | SkipJsonSchema[None] = None


class IngestUrls(BaseModel):
    rtmp_url: str = Field(description="Publish to `{rtmp_url}/{stream_key}`")
    whip_url: str = Field(description="WHIP (RFC 9725): POST an SDP offer with `Authorization: Bearer <stream_key>`")
    srt_url: str = Field(description="SRT caller URL; the key goes in `streamid=#!::r=live/<stream_key>,m=publish`")
    srt_encrypted: bool = Field(description="Whether SRT callers must use the stream's passphrase")


class Ingest(IngestUrls):
    stream_key: str = Field(description="Shown only in this response")
    key_id: str


class CreateStreamResponse(BaseModel):
    id: StreamId
    title: str
    status: StreamStatus
    ingest: Ingest
    playback_url: str


class Rendition(BaseModel):
    name: str
    width: int
    height: int
    bitrate_kbps: int


class IngestHealth(BaseModel):
    bitrate_kbps: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    keyframe_interval_s: float | None = None
    packet_loss_pct: float | None = Field(default=None, description="SRT and WebRTC: packets lost, % of those expected")
    rtt_ms: float | None = Field(default=None, description="SRT and WebRTC: round-trip time to the publisher, ms")
    video_codec: str | None = Field(default=None, description="The publisher's video codec (ffmpeg's name: h264, hevc)")
    audio_codec: str | None = Field(default=None, description="The publisher's audio codec (aac, opus, mp3, ...)")
    at: str | None = None


class StreamSummary(BaseModel):
    id: StreamId
    owner: str = Field(description="The owner's user id (Cognito sub)")
    owner_username: str
    title: str
    tags: list[str]
    status: StreamStatus
    viewer_count: int
    started_at: str | None
    created_at: str
    playback_url: str = Field(description="HLS master of the live stream (short live window)")
    dvr_url: str = Field(description="HLS master of the rewind window: a player can seek back `dvr_window_s`")
    dash_url: str = Field(description=(
        "DASH MPD of the live stream, over the same CMAF segments as `playback_url` (none is written when the "
        "media task runs with STREAMFORGE_SEGMENT_FORMAT=ts)"))
    thumbnail_url: str


class StreamDetail(StreamSummary):
    description: str
    record: bool
    updated_at: str
    current_session_id: str | None
    reconnect_grace_s: int | None
    dvr_window_s: int | None
    ll_playback_url: str = Field(description="Low-Latency HLS master (RFC 8216bis parts and blocking playlist "
                                 "reload, ~0.5 s parts), served by the ingesting media task through the CDN; 404 "
                                 "while the stream is not live. Players without LL-HLS use `playback_url`")
    renditions: list[Rendition]
    ingest_health: IngestHealth | None
    ingest: IngestUrls


class StreamList(BaseModel):
    items: list[StreamSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class CreateKeyRequest(StrictModel):
    name: KeyName = "default"


class KeyCreated(BaseModel):
    key_id: str
    stream_key: str = Field(description="Shown only in this response")
    name: str
    created_at: str


class KeyInfo(BaseModel):
    key_id: str
    name: str
    created_at: str
    last_used_at: str | None


class KeyList(BaseModel):
    items: list[KeyInfo]


class SessionInfo(BaseModel):
    session_id: str
    status: str | None
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    vod_url: str | None
    vod_dash_url: str | None = Field(description="Static DASH MPD of the recording, over the same segments")


class SessionList(BaseModel):
    items: list[SessionInfo]
