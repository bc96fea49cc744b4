"""Ports between the ingest adapters and the session layer.

An adapter (RTMP, WHIP, SRT) asks a `PublishHandler` whether a key may publish, and hands what the
publisher sends to the `MediaSink` it gets back, as hints, tracks' access units and one unpublish.
The session layer closes a publisher through the adapter's `Disconnector`. Nothing here knows a wire format.
"""

from __future__ import annotations

from typing import Protocol

from streamforge_media.media import AccessUnit, PublisherHints


class Disconnector(Protocol):
    def disconnect(self, reason: str) -> None:
        """Close the publisher's connection now; the sink's `on_unpublish` follows."""


class MediaSink(Protocol):
    """Receives one publisher connection's media; `on_unpublish` is called exactly once, at the end."""

    async def on_hints(self, hints: PublisherHints) -> None: ...

    async def on_unit(self, unit: AccessUnit) -> None:
        """One access unit, with the publisher's own timestamps (the session normalises them)."""

    async def on_unpublish(self) -> None: ...


class PublishHandler(Protocol):
    async def start_publish(self, stream_key: str, control: Disconnector) -> MediaSink | None:
        """A sink to accept the publisher, or None to refuse it (bad key, stream busy)."""
