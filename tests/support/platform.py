"""Run the local platform inside the test process, on free ports, in a background event loop.

On `moto` each platform embeds a moto server of its own. On `localstack` every platform shares the LocalStack at
STREAMFORGE_LOCALSTACK_ENDPOINT (`make test` starts one) under a namespace of its own, with a moto of its own for
what LocalStack lacks.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from local.edge import EDGE_STACK_NAME
from local.platform import REPO_ROOT, LocalPlatform, PlatformConfig, Ports
from local.template import STACK_NAME

READY_TIMEOUT_S = 120


def ensure_synthesized(assembly_dir: Path = REPO_ROOT / "cdk.out") -> Path:
    """`make test` synthesizes first; a bare `pytest` run synthesizes here."""
    if not all((assembly_dir / f"{stack}.template.json").exists() for stack in (STACK_NAME, EDGE_STACK_NAME)):
        subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, check=True, capture_output=True)
    return assembly_dir


class PlatformThread:
    def __init__(self, config: PlatformConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="local-platform")
        self.platform = LocalPlatform(config)

    @property
    def urls(self) -> dict[str, str]:
        return self.platform.config.urls

    @property
    def ports(self) -> Ports:
        return self.platform.config.ports

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = READY_TIMEOUT_S) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> PlatformThread:
        self._thread.start()
        try:
            self.run(self.platform.start())
            self.run(self.platform.wait_healthy(READY_TIMEOUT_S))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.run(self.platform.stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


def localstack_endpoint() -> str:
    endpoint = os.environ.get("STREAMFORGE_LOCALSTACK_ENDPOINT")
    if not endpoint:
        pytest.skip("STREAMFORGE_LOCALSTACK_ENDPOINT is not set (make test starts LocalStack and sets it)")
    return endpoint


def start_platform(*, with_media: bool, assembly_dir: Path | None = None,
                   media_env: dict[str, str] | None = None, edge_limits: bool = True,
                   emulator: str = "moto") -> PlatformThread:
    on_localstack = emulator == "localstack"
    config = PlatformConfig(assembly_dir=assembly_dir or ensure_synthesized(), ports=Ports.free(),
                            with_media=with_media, media_env=media_env or {}, edge_limits=edge_limits,
                            endpoint_url=localstack_endpoint() if on_localstack else None,
                            namespace=uuid.uuid4().hex[:8] if on_localstack else "")
    return PlatformThread(config).start()
