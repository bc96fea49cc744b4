"""Lazily created, cached boto3 clients.

Created plainly so `AWS_ENDPOINT_URL` points them at an emulator. boto3 is imported on first use,
which keeps the import of a handler module cheap when a request never touches AWS.
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
def client(service: str) -> Any:
    for hook in _before_first_client:
        hook()
    import boto3

    return boto3.client(service)
