"""The LocalStack tier: AWS clients pointed at STREAMFORGE_LOCALSTACK_ENDPOINT (`make test` starts one)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def localstack_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = os.environ.get("STREAMFORGE_LOCALSTACK_ENDPOINT")
    if not endpoint:
        pytest.skip("STREAMFORGE_LOCALSTACK_ENDPOINT is not set (make test starts LocalStack and sets it)")
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    return endpoint
