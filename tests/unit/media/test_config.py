from __future__ import annotations

import pytest
from streamforge_media.config import ConfigError, MediaConfig
from streamforge_media.segment_format import CMAF, TS

pytestmark = pytest.mark.unit

BASE = {"STREAMS_TABLE": "S", "STREAM_KEYS_TABLE": "K", "SESSIONS_TABLE": "Se", "MEDIA_BUCKET": "b",
        "EVENT_BUS_NAME": "streamforge", "CDN_BASE_URL": "https://d1.cloudfront.net/"}


def test_defaults_and_urls() -> None:
    config = MediaConfig.from_env(BASE)
    assert config.rtmp_port == 1935 and config.reconnect_grace_s == 60
    assert [r.name for r in config.ladder] == ["1080p", "720p", "480p", "360p", "160p"]
    assert config.cdn_base_url == "https://d1.cloudfront.net"
    assert config.encoder.segment_format is CMAF and config.dvr_window_s == 7200


def test_segment_format_and_rewind_window_settings() -> None:
    config = MediaConfig.from_env({**BASE, "STREAMFORGE_SEGMENT_FORMAT": "TS", "STREAMFORGE_DVR_WINDOW_S": "0"})
    assert config.encoder.segment_format is TS and config.dvr_window_s == 0
    with pytest.raises(ConfigError) as error:
        MediaConfig.from_env({**BASE, "STREAMFORGE_SEGMENT_FORMAT": "webm", "STREAMFORGE_DVR_WINDOW_S": "-1"})
    assert "STREAMFORGE_SEGMENT_FORMAT" in str(error.value) and "STREAMFORGE_DVR_WINDOW_S" in str(error.value)


INFRA_LADDER = '[{"name":"720p","width":1280,"height":720,"bitrate_kbps":3000}]'


def test_overrides_including_the_infra_ladder_shape() -> None:
    config = MediaConfig.from_env({**BASE, "RTMP_PORT": "2935", "STREAMFORGE_RECONNECT_GRACE_S": "1800",
                                   "RTMP_MAX_CONNECTIONS_PER_IP": "4",
                                   "STREAMFORGE_LADDER": INFRA_LADDER})
    assert (config.rtmp_port, config.reconnect_grace_s, config.limits.max_connections_per_ip) == (2935, 1800, 4)
    assert [r.height for r in config.ladder] == [720]


def test_every_problem_is_reported() -> None:
    env = {**BASE, "MEDIA_BUCKET": "", "STREAMFORGE_RECONNECT_GRACE_S": "1801", "RTMP_PORT": "x",
           "STREAMFORGE_LADDER": "[]"}
    with pytest.raises(ConfigError) as error:
        MediaConfig.from_env(env)
    for fragment in ("MEDIA_BUCKET", "STREAMFORGE_RECONNECT_GRACE_S", "RTMP_PORT", "STREAMFORGE_LADDER"):
        assert fragment in str(error.value)
