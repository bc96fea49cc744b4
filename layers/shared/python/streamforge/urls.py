"""Public URLs of a stream's media, per docs/contracts.md."""

from __future__ import annotations


def playback_url(cdn_base_url: str, stream_id: str) -> str:
    return f"{cdn_base_url.rstrip('/')}/live/{stream_id}/master.m3u8"


def thumbnail_url(cdn_base_url: str, stream_id: str) -> str:
    return f"{cdn_base_url.rstrip('/')}/thumbs/{stream_id}/latest.jpg"


def vod_url(cdn_base_url: str, stream_id: str, session_id: str) -> str:
    return f"{cdn_base_url.rstrip('/')}/vod/{stream_id}/{session_id}/master.m3u8"
