"""Pure heartbeat aggregation: group a batch in memory, merge it with recent presence, derive the figures.

Presence is kept per 10 s bucket as a set of viewer ids, sharded so that no item outgrows DynamoDB's
400 KB limit. A viewer is concurrent at the end of bucket b if seen in any bucket b-50 .. b, i.e. a
heartbeat within the last 60 s (at 10 s resolution).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

BUCKET_S = 10
WINDOW_S = 60
SHARDS = 8
# Heartbeats older than this (a long outage, say) are dropped rather than rewriting old history.
MAX_AGE_S = 15 * 60
NO_SESSION = "none"


def bucket_of(at: float) -> int:
    return int(at // BUCKET_S) * BUCKET_S


def shard_of(viewer_id: str) -> int:
    return zlib.crc32(viewer_id.encode()) % SHARDS


@dataclass(frozen=True, slots=True)
class Heartbeat:
    stream_id: str
    session_id: str
    viewer_id: str
    at: float


@dataclass
class StreamDelta:
    """What one batch changes for one stream."""

    stream_id: str
    session_id: str
    presence: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    uniques: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    watch_seconds: int = 0
    timeline: dict[int, int] = field(default_factory=dict)
    concurrent: int = 0
    peak: int = 0


def presence_range(heartbeats: Iterable[Heartbeat], now: float) -> tuple[int, int]:
    """The buckets of prior presence that `aggregate_stream` needs for these heartbeats."""
    buckets = [bucket_of(h.at) for h in heartbeats]
    now_bucket = bucket_of(now)
    return min(*buckets, now_bucket) - WINDOW_S, max(*buckets, now_bucket)


def concurrent_at(presence: dict[int, set[str]], bucket: int) -> int:
    window = [presence[b] for b in range(bucket - WINDOW_S + BUCKET_S, bucket + BUCKET_S, BUCKET_S) if b in presence]
    if len(window) == 1:
        return len(window[0])
    return len(set().union(*window)) if window else 0


def aggregate_stream(stream_id: str, heartbeats: list[Heartbeat], prior: dict[int, set[str]],
                     now: float) -> StreamDelta:
    """Merge one stream's heartbeats with the presence already stored (`prior`, bucket -> viewers)."""
    latest = max(heartbeats, key=lambda h: h.at)
    delta = StreamDelta(stream_id=stream_id, session_id=latest.session_id)

    seen: dict[str, set[int]] = defaultdict(set)
    uniques: dict[tuple[str, int], set[str]] = defaultdict(set)
    for h in heartbeats:
        seen[h.viewer_id].add(bucket_of(h.at))
        uniques[(h.session_id, shard_of(h.viewer_id))].add(h.viewer_id)
    delta.uniques = dict(uniques)

    merged = {b: set(v) for b, v in prior.items()}
    presence: dict[tuple[int, int], set[str]] = defaultdict(set)
    touched: set[int] = set()
    watch = 0
    for viewer, buckets in seen.items():
        shard = shard_of(viewer)
        known = sorted(b for b in range(min(buckets) - WINDOW_S, max(buckets) + 1, BUCKET_S)
                       if viewer in prior.get(b, ()))
        new = buckets.difference(known)
        for b in new:
            presence[(b, shard)].add(viewer)
            merged.setdefault(b, set()).add(viewer)
            touched.add(b)
        # Watch time: credit the gap back to the viewer's previous bucket when it is within the window.
        # Only buckets new to the store are credited, so a redelivered record adds nothing.
        timeline_of_viewer = sorted(set(known) | new)
        for previous, current in pairwise(timeline_of_viewer):
            if current in new and current - previous <= WINDOW_S:
                watch += current - previous
    delta.presence = dict(presence)
    delta.watch_seconds = watch

    delta.timeline = {b: concurrent_at(merged, b) for b in sorted(touched)}
    delta.concurrent = concurrent_at(merged, bucket_of(now))
    delta.peak = max([delta.concurrent, *delta.timeline.values()])
    return delta
