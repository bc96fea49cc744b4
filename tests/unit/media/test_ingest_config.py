"""Configuration of the WHIP, SRT and RTMPS ingest (docs/contracts.md, environment variables)."""

from __future__ import annotations

import pytest
from streamforge_media.config import ConfigError, MediaConfig

pytestmark = pytest.mark.unit

BASE = {"STREAMS_TABLE": "S", "STREAM_KEYS_TABLE": "K", "SESSIONS_TABLE": "Se", "MEDIA_BUCKET": "b",
        "EVENT_BUS_NAME": "streamforge", "CDN_BASE_URL": "https://d1.cloudfront.net/"}


def test_defaults_whip_on_8889_srt_on_9000_rtmps_off_and_no_public_stun() -> None:
    config = MediaConfig.from_env(BASE)
    assert (config.http_port, config.srt_port, config.rtmps_port) == (8889, 9000, -1)
    assert config.whip.ice_servers == () and config.whip.ice_addresses == () and config.whip.public_ip == ""
    assert config.whip.keyframe_request_s == 2.0 and config.srt.latency_ms == 120


def test_overrides() -> None:
    config = MediaConfig.from_env({
        **BASE, "MEDIA_HTTP_PORT": "0", "SRT_PORT": "-1", "RTMPS_PORT": "1936", "RTMPS_CERT_FILE": "/c.pem",
        "RTMPS_KEY_FILE": "/k.pem", "STREAMFORGE_WHIP_ICE_SERVERS": "stun:stun.example:3478, turn:t.example",
        "STREAMFORGE_WHIP_ICE_ADDRESSES": "127.0.0.1", "STREAMFORGE_WHIP_PUBLIC_IP": "198.51.100.7",
        "SRT_LATENCY_MS": "400"})
    assert (config.http_port, config.srt_port, config.rtmps_port) == (0, -1, 1936)
    assert config.whip.ice_servers == ("stun:stun.example:3478", "turn:t.example")
    assert config.whip.ice_addresses == ("127.0.0.1",) and config.whip.public_ip == "198.51.100.7"
    assert config.srt.latency_ms == 400


def test_bad_ingest_settings_are_all_reported() -> None:
    with pytest.raises(ConfigError) as error:
        MediaConfig.from_env({**BASE, "RTMPS_PORT": "1936", "STREAMFORGE_WHIP_ICE_SERVERS": "http://x",
                              "STREAMFORGE_WHIP_ICE_ADDRESSES": "not-an-ip", "SRT_PORT": "70000"})
    message = str(error.value)
    for name in ("RTMPS_CERT_FILE", "STREAMFORGE_WHIP_ICE_SERVERS", "STREAMFORGE_WHIP_ICE_ADDRESSES", "SRT_PORT"):
        assert name in message
