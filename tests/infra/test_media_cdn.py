"""The media distribution caches by the bucket's layout (streamforge.media_layout) and answers the CDN's clock."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest
from streamforge import media_layout

from infra import distribution
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

SID, SES = "st_aaaaaaaaaaaaaaaa", "ses_20261130T000000abcdef"


def media_distribution(synth: Synth) -> dict[str, Any]:
    for props in (r["Properties"] for r in synth.of_type("AWS::CloudFront::Distribution").values()):
        config: dict[str, Any] = props["DistributionConfig"]
        if any(b["PathPattern"] == "*.mpd" for b in config.get("CacheBehaviors", [])):
            return config
    raise AssertionError("no media distribution")


def ttl_of(synth: Synth, config: dict[str, Any], key: str) -> int:
    """The max TTL CloudFront applies to `key`: the first behaviour whose pattern matches wins."""
    behavior = next((b for b in config["CacheBehaviors"] if fnmatchcase(key, b["PathPattern"])),
                    config["DefaultCacheBehavior"])
    policy = synth.resources[behavior["CachePolicyId"]["Ref"]]["Properties"]["CachePolicyConfig"]
    return int(policy["MaxTTL"])


def test_the_immutable_patterns_are_the_layouts() -> None:
    assert distribution.IMMUTABLE_PATTERNS == media_layout.IMMUTABLE_KEY_PATTERNS
    assert distribution.CLOCK_PATTERN == media_layout.TIME_PATH


def test_segments_are_cached_a_year_and_manifests_a_second_or_two(synth: Synth) -> None:
    config = media_distribution(synth)
    once = [media_layout.object_key(SID, "720p", media_layout.segment_name(SES, 1, ".m4s")),
            media_layout.object_key(SID, "720p", media_layout.init_name(SES, 0)),
            media_layout.thumbnail_key(SID, SES, 0)]
    rewritten = [media_layout.live_master_key(SID), media_layout.live_manifest_key(SID),
                 media_layout.dvr_playlist_key(SID, "720p"), media_layout.vod_manifest_key(SID, SES),
                 media_layout.latest_thumbnail_key(SID)]
    assert all(ttl_of(synth, config, k) == 365 * 86400 for k in once)
    assert all(ttl_of(synth, config, k) <= 2 for k in rewritten)


def test_the_clock_is_a_viewer_request_function_never_cached(synth: Synth) -> None:
    config = media_distribution(synth)
    (clock,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == media_layout.TIME_PATH]
    (association,) = clock["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    (function,) = synth.of_type("AWS::CloudFront::Function").values()
    assert "toISOString" in function["Properties"]["FunctionCode"]
    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
