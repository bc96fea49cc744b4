"""A small JSON-over-HTTP client for tests, on the standard library only."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


def call(method: str, url: str, body: Any = None, *, token: str | None = None,
         headers: dict[str, str] | None = None, raw_body: bytes | None = None, timeout: float = 30,
         content_type: str | None = "application/json", client: str | None = None) -> Reply:
    """One request. A body (`body` as JSON, or `raw_body`) goes with `content_type`, or with no Content-Type at all
    when it is None. `client` is the local address to call from, so one test can be several clients (any
    127.x.y.z on Linux); None leaves it to the system."""
    data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
    parts = urlsplit(url)
    sent = {"Host": parts.netloc}
    if data is not None and content_type is not None:
        sent["Content-Type"] = content_type
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout,
                                            source_address=(client, 0) if client else None)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, dict(response.headers), response.read())
    finally:
        connection.close()
