"""Public URLs of a stream's media, per docs/contracts.md: the CDN's base URL plus a `media_layout` key."""

from __future__ import annotations

from streamforge import media_layout


def _cdn(cdn_base_url: str, key: str) -> str:
    return f"{cdn_base_url.rstrip('/')}/{key}"


def playback_url(cdn_base_url: str, stream_id: str) -> str:
    """The live HLS master (short live window)."""
    return _cdn(cdn_base_url, media_layout.live_master_key(stream_id))


def ll_playback_url(cdn_base_url: str, stream_id: str) -> str:
    """The Low-Latency HLS master (RFC 8216bis parts, blocking reload), from the ingesting media task through the
    CDN; 404 while the stream is not live on a task. Players without LL-HLS use `playback_url`."""
    return _cdn(cdn_base_url, media_layout.ll_master_path(stream_id))


def dvr_url(cdn_base_url: str, stream_id: str) -> str:
    """The live HLS master of the rewind window (a player can seek back up to `dvr_window_s`)."""
    return _cdn(cdn_base_url, media_layout.live_dvr_master_key(stream_id))


def dash_url(cdn_base_url: str, stream_id: str) -> str:
    """The live DASH MPD (ISO/IEC 23009-1, dynamic), over the same segments as `playback_url`."""
    return _cdn(cdn_base_url, media_layout.live_manifest_key(stream_id))


def thumbnail_url(cdn_base_url: str, stream_id: str) -> str:
    return _cdn(cdn_base_url, media_layout.latest_thumbnail_key(stream_id))


def vod_url(cdn_base_url: str, stream_id: str, session_id: str) -> str:
    return _cdn(cdn_base_url, media_layout.vod_master_key(stream_id, session_id))


def vod_dash_url(cdn_base_url: str, stream_id: str, session_id: str) -> str:
    """The static DASH MPD of a recorded session, over the same segment objects as `vod_url`."""
    return _cdn(cdn_base_url, media_layout.vod_manifest_key(stream_id, session_id))


def time_url(cdn_base_url: str) -> str:
    """The CDN's clock (ISO 8601 UTC), named by the live MPD's UTCTiming element."""
    return _cdn(cdn_base_url, media_layout.TIME_PATH)
