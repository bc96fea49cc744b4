"""The REST operations ARCHITECTURE.md §3 (and §6b's viewer sessions) promise, with its path parameter names, which
our routes use; and the operations the committed OpenAPI document declares (a superset: a route may be added
without editing this module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OPENAPI_DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"

ARCHITECTURE_OPERATIONS = {
    ("POST", "/v1/auth/signup"), ("POST", "/v1/auth/login"), ("POST", "/v1/auth/refresh"),
    ("GET", "/v1/users/me"), ("PATCH", "/v1/users/me"), ("GET", "/v1/users/{username}"),
    ("PUT", "/v1/users/{username}/follow"), ("DELETE", "/v1/users/{username}/follow"),
    ("POST", "/v1/streams"), ("GET", "/v1/streams"), ("GET", "/v1/streams/{id}"),
    ("PATCH", "/v1/streams/{id}"), ("DELETE", "/v1/streams/{id}"),
    ("POST", "/v1/streams/{id}/keys"), ("GET", "/v1/streams/{id}/keys"),
    ("DELETE", "/v1/streams/{id}/keys/{key_id}"), ("GET", "/v1/streams/{id}/sessions"),
    ("POST", "/v1/streams/{id}/playback"), ("POST", "/v1/analytics/heartbeat"),
    ("GET", "/v1/streams/{id}/analytics"),
}


def operations_of(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation an OpenAPI document declares."""
    return {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}


def documented_operations() -> set[tuple[str, str]]:
    """The operations of the committed docs/openapi.json."""
    return operations_of(json.loads(OPENAPI_DOCUMENT.read_text()))
