"""The event catalog itself (streamforge.events): one detail-type and at most one WebSocket type per event, declared
fields that never shadow the envelope, and details that read back as the event they were published from."""

from __future__ import annotations

import dataclasses

import pytest
from streamforge.events import (
    BY_DETAIL_TYPE,
    CATALOG,
    ENVELOPE,
    IngestHealth,
    MalformedEvent,
    StreamEvent,
    read,
)

pytestmark = pytest.mark.unit


def test_detail_types_and_websocket_types_name_one_event_each() -> None:
    assert len(BY_DETAIL_TYPE) == len(CATALOG)
    pushed = [kind.MESSAGE_TYPE for kind in CATALOG if kind.MESSAGE_TYPE is not None]
    assert len(set(pushed)) == len(pushed)


@pytest.mark.parametrize("kind", CATALOG, ids=lambda kind: kind.DETAIL_TYPE)
def test_a_detail_reads_back_as_its_event_with_declared_fields_only(kind: type[StreamEvent]) -> None:
    assert kind.field_names(), "an event declares what it carries"
    assert not set(kind.field_names()) & {*ENVELOPE, "type"}, "a declared field would shadow the envelope"
    declared = {name: f"value of {name}" for name in kind.field_names()}
    event = kind(stream_id="st_aaaaaaaaaaaaaaaa", session_id=None, **declared)
    detail = {**event.fields(), "stream_id": event.stream_id, "session_id": None, "seq": 4,
              "at": "2026-12-01T00:00:00.000Z", "undeclared": "dropped"}

    received = read(kind.DETAIL_TYPE, detail)

    assert received is not None and (received.event, received.seq, received.at) == (event, 4, detail["at"])
    if kind.MESSAGE_TYPE is None:
        with pytest.raises(TypeError):
            event.message(seq=4, at=detail["at"])


@pytest.mark.parametrize("change", [{"seq": True}, {"seq": "4"}, {"at": None}, {"stream_id": 7}, {"session_id": 1}])
def test_a_bad_envelope_is_malformed(change: dict[str, object]) -> None:
    kind = CATALOG[0]
    detail = {**{name: "x" for name in kind.field_names()}, "stream_id": "st_aaaaaaaaaaaaaaaa", "session_id": None,
              "seq": 4, "at": "2026-12-01T00:00:00.000Z", **change}
    with pytest.raises(MalformedEvent):
        read(kind.DETAIL_TYPE, detail)


def test_an_unknown_detail_type_is_not_the_catalogs() -> None:
    assert read("Something Else", {"stream_id": "st_aaaaaaaaaaaaaaaa"}) is None



def test_analytics_stores_and_serves_every_ingest_figure_the_catalog_declares() -> None:
    from analytics.repository import INGEST_CODECS, INGEST_NUMBERS

    assert sorted((*INGEST_NUMBERS, *INGEST_CODECS)) == sorted(IngestHealth.field_names())
    assert all(IngestHealth.__annotations__[name].startswith("str") for name in INGEST_CODECS)


def test_events_are_frozen_keyword_only_values() -> None:
    health = IngestHealth(stream_id="st_aaaaaaaaaaaaaaaa", session_id="ses_1", bitrate_kbps=2500.0, fps=30.0,
                          width=1280, height=720, keyframe_interval_s=2.0)
    measured = health.replace(rtt_ms=12.5)

    assert (measured.rtt_ms, health.rtt_ms, measured.bitrate_kbps) == (12.5, None, 2500.0)
    assert measured == health.replace(rtt_ms=12.5) and hash(measured) == hash(health.replace(rtt_ms=12.5))
    assert measured != health and "rtt_ms=12.5" in repr(measured)
    with pytest.raises(dataclasses.FrozenInstanceError):
        measured.fps = 25.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        IngestHealth(stream_id="st_aaaaaaaaaaaaaaaa", session_id=None, bitrate_kbps=1.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        health.replace(surprise=True)
