"""The media bucket's layout: one definition of keys and URLs, and which keys are written once."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from urllib.parse import urljoin

import pytest
from streamforge import media_layout as layout
from streamforge import urls

pytestmark = pytest.mark.unit

SID, SES = "st_aaaaaaaaaaaaaaaa", "ses_20261130T000000abcdef"


def immutable(key: str) -> bool:
    # CloudFront path patterns: `*` matches any characters, `/` included, as fnmatchcase does.
    return any(fnmatchcase(key, pattern) for pattern in layout.IMMUTABLE_KEY_PATTERNS)


def test_objects_written_once_match_the_immutable_patterns_and_manifests_do_not() -> None:
    once = [layout.object_key(SID, "720p", layout.segment_name(SES, 7, ".m4s")),
            layout.object_key(SID, "audio", layout.segment_name(SES, 0, ".ts")),
            layout.object_key(SID, "720p", layout.init_name(SES, 2)),
            layout.thumbnail_key(SID, SES, 3)]
    rewritten = [layout.live_master_key(SID), layout.live_dvr_master_key(SID), layout.live_manifest_key(SID),
                 layout.media_playlist_key(SID, "720p"), layout.dvr_playlist_key(SID, "720p"),
                 layout.vod_master_key(SID, SES), layout.vod_media_playlist_key(SID, SES, "720p"),
                 layout.vod_manifest_key(SID, SES), layout.latest_thumbnail_key(SID)]
    assert all(immutable(k) for k in once) and not any(immutable(k) for k in rewritten)
    assert all(k.startswith(layout.SERVED_PREFIXES) for k in once + rewritten)


def test_the_dash_template_names_the_same_objects_as_segment_name() -> None:
    template = layout.dash_segment_template(SES, ".m4s")
    for seq in (0, 41, 999999):
        expanded = re.sub(r"\$Number%06d\$", f"{seq:06d}", template)
        assert expanded == layout.segment_name(SES, seq, ".m4s")


def test_vod_manifests_reach_the_live_segment_objects_by_relative_uris() -> None:
    segment = layout.object_key(SID, "720p", layout.segment_name(SES, 3, ".m4s"))
    for manifest in (layout.vod_media_playlist_key(SID, SES, "720p"), layout.vod_manifest_key(SID, SES)):
        uri = layout.relative(manifest, segment)
        assert uri.startswith("../") and urljoin(f"https://cdn/{manifest}", uri) == f"https://cdn/{segment}"


def test_public_urls_are_the_cdn_plus_the_keys() -> None:
    cdn = "https://d1.cloudfront.net/"
    assert urls.playback_url(cdn, SID) == f"https://d1.cloudfront.net/live/{SID}/master.m3u8"
    assert urls.dvr_url(cdn, SID) == f"https://d1.cloudfront.net/live/{SID}/dvr.m3u8"
    assert urls.dash_url(cdn, SID) == f"https://d1.cloudfront.net/live/{SID}/manifest.mpd"
    assert urls.vod_url(cdn, SID, SES) == f"https://d1.cloudfront.net/vod/{SID}/{SES}/master.m3u8"
    assert urls.vod_dash_url(cdn, SID, SES) == f"https://d1.cloudfront.net/vod/{SID}/{SES}/manifest.mpd"
    assert urls.time_url(cdn) == "https://d1.cloudfront.net/time"
