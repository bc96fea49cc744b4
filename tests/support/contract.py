"""The REST operations ARCHITECTURE.md §3 (and §6b's viewer sessions) promise, with its path parameter names, which
our routes use."""

from __future__ import annotations

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
