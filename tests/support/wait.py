"""The one way a test waits: poll a condition until it holds, or fail at the deadline naming what was awaited.

`wait_for` blocks (platform tests, which wait on other processes); `wait_for_async` yields to the event loop
between polls (in-process servers, which need the loop to make progress). A wait is on a condition, never a
fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _timed_out(timeout: float, what: str) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str = "the condition",
             interval: float = 0.25) -> T:
    """Poll until `condition` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what)
        time.sleep(interval)


async def wait_for_async(condition: Callable[[], T | None], timeout: float, what: str = "the condition",
                         interval: float = 0.05) -> T:
    """Poll until `condition` returns something truthy, and return it; the event loop runs between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(interval)
