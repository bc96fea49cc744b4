"""Ports between the ingest adapters and the session layer.

An adapter (RTMP, WHIP, SRT) asks a `PublishHandler` whether a key may publish, and hands what the
publisher sends to the `MediaSink` it gets back, as hints, tracks' access units and one unpublish.
The session layer closes a publisher through the adapter's `Disconnector`. Nothing here knows a wire format.

Protocols whose answer depends on why a publish is refused (WHIP's 401 or 409, SRT's reject codes) ask an
`AdmissionHandler` with `admit` instead of `start_publish`; a protocol that must decide inside its handshake,
before the publish itself (SRT's listen callback), first asks `check_key`, which writes nothing. An adapter
whose transport measures loss and round trip (SRT, WebRTC) makes its `Disconnector` a `TransportStatsSource`
too, and the session adds those figures to the ingest health.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

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


class Refusal(StrEnum):
    """Why a publish was refused."""

    UNAUTHORIZED = "unauthorized"
    """Unknown or revoked key, deleted stream, or a key of another stream than the one asked for."""
    BUSY = "busy"
    """The stream has a live publisher (not silent), its session is ending, or another media task holds it."""


@dataclass(frozen=True)
class Admission:
    """The answer to a publish: `sink` when accepted, else None and the `refusal`."""

    sink: MediaSink | None
    refusal: Refusal | None = None


@dataclass(frozen=True)
class KeyCheck:
    """What a valid key opens, read without writing anything.

    `stream_id` is the key's stream; `srt_passphrase` the stream's SRT passphrase (None: unencrypted);
    `busy` is True when a publish now would be refused as `Refusal.BUSY` by this task.
    """

    stream_id: str
    srt_passphrase: str | None
    busy: bool


@dataclass(frozen=True)
class TransportStats:
    """Transport figures over the last reporting window: packets lost in percent of those expected
    (after retransmission), and the round-trip time in milliseconds (0: not measured)."""

    packet_loss_pct: float
    rtt_ms: float


@runtime_checkable
class TransportStatsSource(Protocol):
    def transport_stats(self) -> TransportStats | None:
        """The figures since the previous call (None: nothing measured yet); called at each health report."""


class PublishHandler(Protocol):
    async def start_publish(self, stream_key: str, control: Disconnector) -> MediaSink | None:
        """A sink to accept the publisher, or None to refuse it (bad key, stream busy)."""


class AdmissionHandler(PublishHandler, Protocol):
    """A `PublishHandler` that also says why it refuses, for protocols whose answer depends on it (WHIP, SRT)."""

    async def admit(self, stream_key: str, control: Disconnector, *, stream_id: str | None = None) -> Admission:
        """`start_publish` with the reason of a refusal; with `stream_id`, a key of another stream is refused."""

    async def check_key(self, stream_key: str) -> KeyCheck | None:
        """What `stream_key` opens (None: unknown or revoked key, deleted stream); writes nothing."""
