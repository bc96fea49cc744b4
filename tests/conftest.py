"""Shared fixtures, the emulator parameter of the platform fixtures, and the rule that CI never skips a core tier.

Every test that uses a platform fixture (`api_platform`, e2e's `platform`) runs once per emulator: `moto` and
`localstack` (the `localstack` tier; LocalStack with moto for Cognito, see local/emulators.py). The tests are the
same; where an emulator differs, the test says so. MOTO_ONLY names the modules whose LocalStack variants CI does
not run, and why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

CORE_TIERS = ("unit", "component", "infra", "integration", "e2e")
_skipped_core: list[str] = []

# Module -> why its tests run on moto only. Chosen for CI's time budget (docs/architecture.md, "Emulators").
MOTO_ONLY = {
    "tests/integration/test_fuzz.py": "property-based fuzzing of the API contract tests the handlers, not the "
                                      "emulator, and is the slowest integration module",
    "tests/e2e/test_field_publishers.py": "publisher variety exercises the media task, not the emulator; the live "
                                          "pipeline e2e covers the media path on LocalStack",
    "tests/e2e/test_dashboard.py": "the dashboard is served by the local web server, whichever emulator is behind it",
    "tests/e2e/test_whip_srt.py": "WHIP and SRT ingest exercise the media task's protocols, not the emulator; the "
                                  "live pipeline e2e covers the media path on LocalStack",
    "tests/e2e/test_cmaf_players.py": "hls.js and dash.js playing CMAF exercise the packaging and the CDN, not the "
                                      "emulator; the live pipeline e2e covers the media path on LocalStack",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test's tier is the folder it is in (tests/<tier>/...): a module that forgets its `pytestmark` still runs in
    its tier, and one marked for another core tier is a collection error rather than a test run in the wrong place."""
    misplaced, tests = [], config.rootpath / "tests"
    for item in items:
        if not item.path.is_relative_to(tests):
            continue
        parts = item.path.relative_to(tests).parts
        tier = parts[0] if len(parts) > 1 else None
        if tier not in (*CORE_TIERS, "localstack"):
            continue
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
        misplaced += [f"{item.nodeid} ({other})" for other in CORE_TIERS
                      if other != tier and item.get_closest_marker(other) is not None]
    if misplaced:
        raise pytest.UsageError(f"tests marked for another tier than their folder's: {misplaced}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    pinned = any("emulator" in str(mark.args[0]) for mark in metafunc.definition.iter_markers("parametrize"))
    if "emulator" not in metafunc.fixturenames or pinned:
        return
    module = metafunc.definition.path.relative_to(metafunc.config.rootpath).as_posix()
    emulators = [pytest.param("moto", id="moto")]
    if module not in MOTO_ONLY:
        emulators.append(pytest.param("localstack", id="localstack", marks=pytest.mark.localstack))
    metafunc.parametrize("emulator", emulators, indirect=True, scope="session")


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest) -> str:
    """`moto` or `localstack`: which emulator the platform fixtures run on."""
    name: str = request.param
    return name


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # The LocalStack variants belong to the localstack tier, which test_tiers.py reports on.
    if report.skipped and "localstack" not in report.keywords and any(tier in report.keywords for tier in CORE_TIERS):
        _skipped_core.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("STREAMFORGE_CI") and _skipped_core:
        print(f"\n*** CI must not skip core-tier tests; skipped: {_skipped_core}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def api_platform(emulator: str) -> Iterator[object]:
    """Emulator, functions, HTTP and WebSocket gateways and CDN, without the media task.

    Every test here calls from the same address, so the edge's per-client limits are off; test_edge_limits.py
    runs a platform of its own with them on.
    """
    from tests.support.platform import start_platform

    platform = start_platform(with_media=False, emulator=emulator, edge_limits=False)
    yield platform
    platform.stop()
