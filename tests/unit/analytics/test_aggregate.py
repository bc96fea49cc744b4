"""Pure aggregation rules: concurrency window, watch time, redelivery, peak."""

from __future__ import annotations

import pytest
from analytics.aggregate import Heartbeat, aggregate_stream, bucket_of
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.unit
NOW = 1_800_000_000.0
STREAM = "st_aaaaaaaaaaaaaaaa"


def beats(viewers: list[str], at: float, session: str = "ses_1") -> list[Heartbeat]:
    return [Heartbeat(STREAM, session, v, at) for v in viewers]


def test_seven_viewers_are_seven_concurrent_and_unique() -> None:
    delta = aggregate_stream(STREAM, beats([f"v{i}" for i in range(7)], NOW), {}, NOW)
    assert (delta.concurrent, delta.peak) == (7, 7)
    assert sum(len(v) for v in delta.uniques.values()) == 7
    assert delta.timeline == {bucket_of(NOW): 7}


def test_viewers_silent_for_more_than_60_s_are_not_concurrent() -> None:
    prior = {bucket_of(NOW - 120): {"old1", "old2"}, bucket_of(NOW - 30): {"recent"}}
    delta = aggregate_stream(STREAM, beats(["new"], NOW), prior, NOW)
    assert delta.concurrent == 2  # "recent" and "new"


def test_watch_time_credits_gaps_within_the_window_only() -> None:
    prior = {bucket_of(NOW - 30): {"steady"}, bucket_of(NOW - 300): {"returning"}}
    delta = aggregate_stream(STREAM, beats(["steady", "returning"], NOW), prior, NOW)
    assert delta.watch_seconds == 30


def test_a_redelivered_batch_adds_no_presence_and_no_watch_time() -> None:
    first = aggregate_stream(STREAM, beats(["a", "b"], NOW), {bucket_of(NOW - 20): {"a"}}, NOW)
    assert first.watch_seconds == 20
    stored = {bucket_of(NOW - 20): {"a"}, bucket_of(NOW): {"a", "b"}}
    again = aggregate_stream(STREAM, beats(["a", "b"], NOW), stored, NOW)
    assert (again.presence, again.watch_seconds, again.concurrent) == ({}, 0, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([f"v{i}" for i in range(12)]), st.integers(0, 119)), min_size=1))
def test_concurrency_never_exceeds_distinct_viewers_and_peak_bounds_it(events: list[tuple[str, int]]) -> None:
    heartbeats = [Heartbeat(STREAM, "ses_1", viewer, NOW - offset) for viewer, offset in events]
    delta = aggregate_stream(STREAM, heartbeats, {}, NOW)
    recent = {viewer for viewer, offset in events if bucket_of(NOW - offset) >= bucket_of(NOW) - 50}
    assert delta.concurrent == len(recent)
    assert delta.peak >= delta.concurrent
    assert all(count <= len({v for v, _ in events}) for count in delta.timeline.values())
    assert sum(len(v) for v in delta.uniques.values()) == len({v for v, _ in events})
