"""How the local platform starts an emulator (moto, LocalStack): out of reach of the terminal's Ctrl-C, so the
platform's own shutdown still has it for its last writes, yet never outliving the platform's process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.wait import wait_for

pytestmark = pytest.mark.component
ROOT = Path(__file__).resolve().parents[3]

# A stand-in for the platform: starts a long-lived child as it starts an emulator and prints its pid; on SIGINT
# it says whether the child is still running a second later (a child the SIGINT reached would be dead by then).
PLATFORM = """
import signal, subprocess, sys
from local.emulators import EMULATOR_PROCESS
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], **EMULATOR_PROCESS)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # after the start: a child inherits the mask
print(child.pid, flush=True)
signal.sigwait({signal.SIGINT})
try:
    child.wait(timeout=1)
    print("emulator stopped", flush=True)
except subprocess.TimeoutExpired:
    print("emulator running", flush=True)
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (this container's init may not reap orphans)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.fixture
def platform_with_emulator() -> Iterator[tuple[subprocess.Popen[str], int]]:
    platform = subprocess.Popen([sys.executable, "-c", PLATFORM], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                start_new_session=True)
    assert platform.stdout is not None
    emulator = int(platform.stdout.readline())
    yield platform, emulator
    for pid in (platform.pid, emulator):
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    platform.wait()


def test_ctrl_c_at_the_terminal_reaches_the_platform_but_not_its_emulator(
        platform_with_emulator: tuple[subprocess.Popen[str], int]) -> None:
    platform, emulator = platform_with_emulator
    assert os.getsid(emulator) == emulator != os.getsid(platform.pid)
    os.killpg(platform.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    assert platform.stdout is not None
    assert platform.stdout.readline().strip() == "emulator running"
    assert platform.wait(timeout=10) == 0
    # The platform is gone; its emulator follows it (SIGTERM on the parent's death), however the parent died.
    wait_for(lambda: gone(emulator), 10, "the emulator to stop with its platform")


def test_an_emulator_never_outlives_a_killed_platform(
        platform_with_emulator: tuple[subprocess.Popen[str], int]) -> None:
    platform, emulator = platform_with_emulator
    platform.kill()
    platform.wait(timeout=10)
    wait_for(lambda: gone(emulator), 10, "the emulator to stop with its killed platform")
