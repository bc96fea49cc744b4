"""When a new session turns its stream `live`: at once for a stream's first broadcast, after the manifests'
max-age when an earlier broadcast's manifests may still be cached at the same URLs."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from streamforge_media import session as session_module
from streamforge_media.session import SessionManager
from streamforge_media.store import StreamRecord

from tests.unit.media.media_support import STREAM_ID, STREAM_KEY, FakeEvents, FakeStore, MemoryObjectStore, make_config

# Far longer than any test may take: a session that waits for the max-age cannot turn live within one.
LONG_MAX_AGE_S = 3600


class QuietControl:
    def disconnect(self, reason: str) -> None:
        raise AssertionError(f"no publisher is dropped here ({reason})")


class StoredManifests:
    """The publisher as `_go_live` sees it: `ready` once its entry manifests are stored."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()


async def admitted(tmp_path: Path, store: FakeStore) -> tuple[SessionManager, FakeEvents]:
    events = FakeEvents()
    manager = SessionManager(make_config(tmp_path), store, events, MemoryObjectStore(), ThreadPoolExecutor(2))
    admission = await manager.admit(STREAM_KEY, QuietControl())
    assert admission.sink is not None
    return manager, events


def test_a_stream_never_broadcast_turns_live_once_its_manifests_are_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "MANIFEST_MAX_AGE_S", LONG_MAX_AGE_S)
    store = FakeStore()
    store.add_stream()

    async def scenario() -> None:
        manager, events = await admitted(tmp_path, store)
        await asyncio.wait_for(manager.streams[STREAM_ID]._go_live(StoredManifests()), timeout=10)  # type: ignore[arg-type]
        assert store.streams[STREAM_ID]["status"] == "live"
        assert events.types() == ["Stream Live"]

    asyncio.run(scenario())


@pytest.mark.parametrize("earlier", [{"last_ended_at": "2026-12-01T00:00:00Z"},
                                     {"current_session_id": "ses_left_by_a_task_that_died"}])
def test_a_stream_broadcast_before_waits_for_the_earlier_manifests_to_expire(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earlier: dict[str, str]) -> None:
    monkeypatch.setattr(session_module, "MANIFEST_MAX_AGE_S", LONG_MAX_AGE_S)
    store = FakeStore()
    store.add_stream(**earlier)

    async def scenario() -> None:
        manager, events = await admitted(tmp_path, store)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(manager.streams[STREAM_ID]._go_live(StoredManifests()), timeout=0.5)  # type: ignore[arg-type]
        assert store.streams[STREAM_ID]["status"] == "offline"
        assert events.types() == []

    asyncio.run(scenario())


def test_broadcast_before_is_read_from_the_stream_record() -> None:
    def record(**fields: str) -> StreamRecord:
        return StreamRecord(STREAM_ID, fields.get("current_session_id"), None, True,
                            last_ended_at=fields.get("last_ended_at"))

    assert not record().broadcast_before
    assert record(last_ended_at="2026-12-01T00:00:00Z").broadcast_before
    assert record(current_session_id="ses_x").broadcast_before
