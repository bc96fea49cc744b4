"""One publisher per stream across media tasks: the ingest lease, with two in-process tasks on one store."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_rtmp_server import FakeTranscoder, codes, publish_ok

from tests.support.wait import wait_for_async
from tests.unit.media.media_support import STREAM_ID, FakeStore, Harness, make_config, running_harness

pytestmark = pytest.mark.component

PUBLISHING = "NetStream.Publish.Start"
REFUSED = "NetStream.Publish.BadName"


@contextlib.asynccontextmanager
async def two_tasks(tmp_path: Path, store: FakeStore | None = None,
                    **overrides: Any) -> AsyncIterator[tuple[Harness, Harness]]:
    if store is None:
        store = FakeStore()
        store.add_stream()
    FakeTranscoder.instances.clear()
    async with (
        running_harness(make_config(tmp_path / "a", task_id="task_a", **overrides), store=store,
                        transcoder_factory=FakeTranscoder) as a,
        running_harness(make_config(tmp_path / "b", task_id="task_b", **overrides), store=store,
                        transcoder_factory=FakeTranscoder) as b,
    ):
        yield a, b


def test_a_second_task_refuses_the_stream_until_the_first_ends_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_tasks(tmp_path, reconnect_grace_s=0) as (a, b):
            first, commands = await publish_ok(a.server.port)
            assert codes(commands)[-1] == PUBLISHING
            session = a.store.streams[STREAM_ID]["current_session_id"]
            _, commands = await publish_ok(b.server.port)
            assert codes(commands)[-1] == REFUSED
            # The refusal wrote nothing: same session, same owner, no second session, no event from B.
            assert a.store.streams[STREAM_ID]["current_session_id"] == session
            assert a.store.streams[STREAM_ID]["ingest_owner"] == "task_a"
            assert len(a.store.sessions) == 1 and not b.events.events and not b.manager.streams
            first.close()
            await wait_for_async(lambda: a.store.sessions[(STREAM_ID, session)]["status"] == "ended", 3)
            assert "ingest_owner" not in a.store.streams[STREAM_ID]
            _, commands = await publish_ok(b.server.port)
            assert codes(commands)[-1] == PUBLISHING
            assert b.store.streams[STREAM_ID]["ingest_owner"] == "task_b"
    asyncio.run(scenario())


def test_the_lease_is_renewed_through_reconnect_grace(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_tasks(tmp_path, reconnect_grace_s=5, ingest_lease_s=0.6) as (a, b):
            first, _ = await publish_ok(a.server.port)
            first.close()
            await wait_for_async(lambda: a.manager.streams[STREAM_ID].connection is None, 2)  # in grace
            renewed_until = a.store.streams[STREAM_ID]["ingest_lease_until"]
            await wait_for_async(lambda: a.store.streams[STREAM_ID]["ingest_lease_until"] > renewed_until, 2)
            # Past the first lease's term, so only renewal keeps B out.
            await wait_for_async(lambda: time.time() > renewed_until + 0.1, 2)
            _, commands = await publish_ok(b.server.port)
            assert codes(commands)[-1] == REFUSED
            _, commands = await publish_ok(a.server.port)
            assert codes(commands)[-1] == PUBLISHING
            assert len(a.store.sessions) == 1
    asyncio.run(scenario())


@pytest.mark.parametrize(("lease_left_s", "expected"), [(-1.0, PUBLISHING), (60.0, REFUSED)])
def test_a_vanished_tasks_lease_is_taken_over_once_expired(tmp_path: Path, lease_left_s: float,
                                                            expected: str) -> None:
    store = FakeStore()
    store.add_stream(status="live", current_session_id="ses_20261125T000000vanish", ingest_owner="task_gone",
                     ingest_lease_until=time.time() + lease_left_s)

    async def scenario() -> None:
        async with two_tasks(tmp_path, store) as (a, _):
            _, commands = await publish_ok(a.server.port)
            assert codes(commands)[-1] == expected
            owner = "task_a" if expected == PUBLISHING else "task_gone"
            assert store.streams[STREAM_ID]["ingest_owner"] == owner
    asyncio.run(scenario())


def test_a_task_that_lost_its_lease_stops_ingesting_without_touching_the_new_holder(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_tasks(tmp_path, reconnect_grace_s=60, ingest_lease_s=0.6) as (a, _):
            client, _ = await publish_ok(a.server.port)
            (session_id,) = (sid for _, sid in a.store.sessions)
            # Another task took the stream over, as it may once this task's lease has run out.
            with a.store.lock:
                a.store.streams[STREAM_ID].update(ingest_owner="task_c", current_session_id="ses_new", status="live")
            await client.read_commands(3)  # returns when the server closes the connection
            await wait_for_async(lambda: a.store.sessions[(STREAM_ID, session_id)]["status"] == "ended", 3)
            stream = a.store.streams[STREAM_ID]
            assert (stream["ingest_owner"], stream["current_session_id"], stream["status"]) == \
                   ("task_c", "ses_new", "live")
            await wait_for_async(lambda: not a.manager.streams, 3)  # forgotten once its end is announced, last
    asyncio.run(scenario())
