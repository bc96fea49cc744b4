"""Shared fixtures and the rule that CI never skips a core tier."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

CORE_TIERS = ("unit", "infra", "integration", "e2e")
_skipped_core: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and any(tier in report.keywords for tier in CORE_TIERS):
        _skipped_core.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("STREAMFORGE_CI") and _skipped_core:
        print(f"\n*** CI must not skip core-tier tests; skipped: {_skipped_core}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def api_platform() -> Iterator[object]:
    """Emulator, functions, HTTP and WebSocket gateways and CDN, without the media task.

    Every test here calls from the same address, so the edge's per-client limits are off; test_edge_limits.py
    runs a platform of its own with them on.
    """
    from tests.support.platform import start_platform

    platform = start_platform(with_media=False, edge_limits=False)
    yield platform
    platform.stop()
