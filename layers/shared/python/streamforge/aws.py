"""Lazily created, cached boto3 clients: every function creates its clients here.

Created plainly so `AWS_ENDPOINT_URL` points them at an emulator. boto3 is imported on first use,
which keeps the import of a handler module cheap (boto3 is about 200 ms of it otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

_before_first_client: list[Callable[[], object]] = []


def before_first_client(hook: Callable[[], object]) -> None:
    """Runs `hook` before any client is created (the tracer uses it to patch botocore in time)."""
    _before_first_client.append(hook)


@cache
def client(service: str, *, endpoint_url: str | None = None, connect_timeout_s: float | None = None,
           read_timeout_s: float | None = None, max_attempts: int | None = None,
           max_pool_connections: int | None = None) -> Any:
    """One client per service and settings; unset settings keep botocore's defaults."""
    for hook in _before_first_client:
        hook()
    import boto3
    from botocore.config import Config

    settings: dict[str, Any] = {"connect_timeout": connect_timeout_s, "read_timeout": read_timeout_s,
                                "max_pool_connections": max_pool_connections,
                                "retries": {"max_attempts": max_attempts, "mode": "standard"} if max_attempts else None}
    config = Config(**{name: value for name, value in settings.items() if value is not None})
    return boto3.client(service, endpoint_url=endpoint_url, config=config)
