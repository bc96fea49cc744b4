"""A second platform on ports that are taken says which ones, and leaves the first one alone."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from local.platform import LocalPlatform, PlatformConfig, Ports
from tests.support.http import call
from tests.support.platform import PlatformThread

pytestmark = pytest.mark.integration


def test_taken_ports_are_named_and_the_running_platform_is_untouched(api_platform: PlatformThread) -> None:
    taken = dataclasses.replace(Ports.free(), api=api_platform.ports.api, cdn=api_platform.ports.cdn)
    second = LocalPlatform(PlatformConfig(assembly_dir=api_platform.platform.config.assembly_dir, ports=taken,
                                          with_media=False))
    with pytest.raises(OSError, match=rf"api :{taken.api}.*cdn :{taken.cdn}"):
        asyncio.run(second.start())
    assert call("GET", f"{api_platform.urls['api']}/health").status == 200
