"""The whole local platform, media task included, on free ports for the e2e tier."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.platform import PlatformThread, start_platform

# Short, so a session ends (and its VOD is written) soon after a publisher stops.
RECONNECT_GRACE_S = 4


@pytest.fixture(scope="session")
def platform(emulator: str) -> Iterator[PlatformThread]:
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"e2e needs {', '.join(missing)}; `make test` installs them as root")
    # WebRTC candidates on loopback: the tests' WHIP clients (aiortc, Chromium) need no network interface.
    running = start_platform(with_media=True, media_env={"STREAMFORGE_RECONNECT_GRACE_S": str(RECONNECT_GRACE_S),
                                                         "STREAMFORGE_WHIP_ICE_ADDRESSES": "127.0.0.1"},
                             emulator=emulator)
    yield running
    running.stop()
