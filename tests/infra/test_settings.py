"""Context validation: a bad cdk.json value fails the synth with a clear message instead of a broken stack."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from infra.application import cdk_json_context
from infra.settings import Settings

pytestmark = pytest.mark.infra


def _settings(**overrides: Any) -> Settings:
    return Settings.from_context(App(context={**cdk_json_context(), **overrides}).node)


def test_cdk_json_context_is_valid_and_cli_strings_are_parsed() -> None:
    settings = _settings(autoConfirmSignup="false", corsAllowOrigins="https://a.example, https://b.example")
    assert settings.auto_confirm_signup is False
    assert settings.cors_allow_origins == ("https://a.example", "https://b.example")
    assert settings.rtmps_certificate_arn is None
    assert [r.height for r in settings.ladder] == [1080, 720, 480, 360, 160]
    cli = _settings(edgeRateLimits='{"api": 900, "auth": 30, "heartbeat": 90, "playback": 12}')
    assert (cli.edge_rate_limits.auth, cli.edge_rate_limits.playback) == (30, 12)


@pytest.mark.parametrize(
    "overrides",
    [
        {"reconnectGraceSeconds": 1801},
        {"mediaTaskCpu": 4096, "mediaTaskMemoryMiB": 4096},
        {"mediaMinTasks": 3, "mediaMaxTasks": 2},
        {"ladder": []},
        {"autoConfirmSignup": "maybe"},
        {"viewerTokenTtlSeconds": 5},
        {"edgeRateLimits": {"api": 600, "auth": 5, "heartbeat": 60, "playback": 10}},  # under AWS WAF's 10
    ],
)
def test_invalid_context_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _settings(**overrides)
