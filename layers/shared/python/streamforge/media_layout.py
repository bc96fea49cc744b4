"""Where a stream's media lives: the keys of the media bucket, the one definition of them.

The media task writes these keys; `streamforge.urls` turns them into the public URLs the functions hand out;
the local CDN serves `SERVED_PREFIXES` (held equal by a test) and CloudFront caches by `IMMUTABLE_KEY_PATTERNS`
(held equal by an infra test). ARCHITECTURE §6 and §6b describe the layout:

    live/{stream_id}/master.m3u8                 HLS master, short live window (RFC 8216bis §4.4.6)
    live/{stream_id}/dvr.m3u8                    HLS master of the rewind (DVR) window
    live/{stream_id}/manifest.mpd                DASH MPD, type="dynamic" (ISO/IEC 23009-1 §5.3.1)
    live/{stream_id}/{rendition}/index.m3u8      media playlist, short live window
    live/{stream_id}/{rendition}/dvr.m3u8        media playlist, rewind window
    live/{stream_id}/{rendition}/{session_id}-{seq:06d}{ext}      a segment (`.m4s` CMAF, `.ts` MPEG-TS)
    live/{stream_id}/{rendition}/{session_id}-init-{gen:03d}.mp4  the CMAF header of one transcoder generation
    vod/{stream_id}/{session_id}/master.m3u8, .../{rendition}/index.m3u8, .../manifest.mpd
    thumbs/{stream_id}/latest.jpg, thumbs/{stream_id}/{session_id}-{n:06d}.jpg

Segments, init segments and numbered thumbnails carry the session id in their names, so each key is written
once and never changes (cached as immutable); manifests and `latest.jpg` are rewritten (cached for a second).
A VOD names the live segment objects through relative URIs: nothing is stored twice.
"""

from __future__ import annotations

import posixpath

LIVE = "live"
LOW_LATENCY = "ll"
"""Path prefix of the LL-HLS origin (ARCHITECTURE §6b): `ll/{stream_id}/master.m3u8` and
`ll/{stream_id}/{rendition}/index.m3u8` are served from the ingesting media task's memory, never from the bucket.
The CDN forwards `ll/*` to the media tasks (query string included)."""
VOD = "vod"
THUMBS = "thumbs"
SERVED_PREFIXES = (f"{LIVE}/", f"{VOD}/", f"{THUMBS}/")
"""Key prefixes the CDN serves; anything else in the bucket is not public."""

SESSION_ID_PREFIX = "ses_"
"""Every session id starts with this (contracts.md: `ses_` + UTC `YYYYMMDDTHHMMSS` + 6 random chars)."""

MASTER_PLAYLIST = "master.m3u8"
DVR_MASTER_PLAYLIST = "dvr.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
DVR_MEDIA_PLAYLIST = "dvr.m3u8"
DASH_MANIFEST = "manifest.mpd"
INIT_EXTENSION = ".mp4"
LATEST_THUMBNAIL = "latest.jpg"

TIME_PATH = "time"
"""The CDN's clock: `GET {cdn}/time` answers the current UTC time in ISO 8601 (DASH UTCTiming, http-iso)."""

IMMUTABLE_KEY_PATTERNS = (f"{LIVE}/*/{SESSION_ID_PREFIX}*", f"{THUMBS}/*/{SESSION_ID_PREFIX}*")
"""CloudFront path patterns (`*` spans `/`) matching exactly the keys that are written once: segments, init
segments and numbered thumbnails. Manifests never match them."""


def live_dir(stream_id: str) -> str:
    return f"{LIVE}/{stream_id}"


def ll_master_path(stream_id: str) -> str:
    """The LL-HLS master's path on the CDN (not a bucket key)."""
    return f"{LOW_LATENCY}/{stream_id}/{MASTER_PLAYLIST}"


def live_master_key(stream_id: str) -> str:
    return f"{live_dir(stream_id)}/{MASTER_PLAYLIST}"


def live_dvr_master_key(stream_id: str) -> str:
    return f"{live_dir(stream_id)}/{DVR_MASTER_PLAYLIST}"


def live_manifest_key(stream_id: str) -> str:
    """The live DASH MPD."""
    return f"{live_dir(stream_id)}/{DASH_MANIFEST}"


def rendition_dir(stream_id: str, rendition: str) -> str:
    """Where a rendition's segments, init segments and live playlists live (every session's)."""
    return f"{live_dir(stream_id)}/{rendition}"


def media_playlist_key(stream_id: str, rendition: str) -> str:
    return f"{rendition_dir(stream_id, rendition)}/{MEDIA_PLAYLIST}"


def dvr_playlist_key(stream_id: str, rendition: str) -> str:
    return f"{rendition_dir(stream_id, rendition)}/{DVR_MEDIA_PLAYLIST}"


def segment_name(session_id: str, seq: int, extension: str) -> str:
    """`{session_id}-{seq:06d}{extension}`; `seq` counts from 0 per session, across generations."""
    return f"{session_id}-{seq:06d}{extension}"


def dash_segment_template(session_id: str, extension: str) -> str:
    """`segment_name` as a DASH `SegmentTemplate@media` (ISO/IEC 23009-1 §5.3.9.4.4): `$Number%06d$` is the seq."""
    return f"{session_id}-$Number%06d${extension}"


def init_name(session_id: str, generation: int) -> str:
    """The CMAF header (ISO/IEC 23000-19 §7.3.2.1) of one transcoder generation of a session."""
    return f"{session_id}-init-{generation:03d}{INIT_EXTENSION}"


def object_key(stream_id: str, rendition: str, name: str) -> str:
    """The key of a segment or init segment called `name` in a rendition."""
    return f"{rendition_dir(stream_id, rendition)}/{name}"


def vod_dir(stream_id: str, session_id: str) -> str:
    return f"{VOD}/{stream_id}/{session_id}"


def vod_master_key(stream_id: str, session_id: str) -> str:
    return f"{vod_dir(stream_id, session_id)}/{MASTER_PLAYLIST}"


def vod_media_playlist_key(stream_id: str, session_id: str, rendition: str) -> str:
    return f"{vod_dir(stream_id, session_id)}/{rendition}/{MEDIA_PLAYLIST}"


def vod_manifest_key(stream_id: str, session_id: str) -> str:
    """The static DASH MPD of a recorded session."""
    return f"{vod_dir(stream_id, session_id)}/{DASH_MANIFEST}"


def latest_thumbnail_key(stream_id: str) -> str:
    return f"{THUMBS}/{stream_id}/{LATEST_THUMBNAIL}"


def thumbnail_key(stream_id: str, session_id: str, number: int) -> str:
    return f"{THUMBS}/{stream_id}/{session_id}-{number:06d}.jpg"


def relative(from_key: str, to_key: str) -> str:
    """The relative URI by which the object at `from_key` names the one at `to_key` (RFC 3986 §4.2)."""
    return posixpath.relpath(to_key, posixpath.dirname(from_key))
