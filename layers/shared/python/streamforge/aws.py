"""Lazily created, cached boto3 clients.

Created plainly so `AWS_ENDPOINT_URL` points them at an emulator. boto3 is imported on first use,
which keeps the import of a handler module cheap when a request never touches AWS.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3

    return boto3.client(service)
