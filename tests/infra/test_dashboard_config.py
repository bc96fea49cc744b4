"""The deployed dashboard's config.json carries every key the local one does, so the same web/ works on both."""

from __future__ import annotations

import json
import re

import pytest

from local.platform import PlatformConfig
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def test_deployed_config_has_the_local_keys(synth: Synth) -> None:
    manifest = json.loads((synth.outdir / "StreamForge.assets.json").read_text())
    configs = [synth.outdir / f["source"]["path"] / "config.json" for f in manifest["files"].values()
               if (synth.outdir / f["source"]["path"] / "config.json").is_file()]
    assert len(configs) == 1
    # Deploy-time values are still CDK markers here (not JSON yet), so the keys are read as text.
    deployed_keys = set(re.findall(r'"(\w+)":', configs[0].read_text()))
    assert set(PlatformConfig().dashboard_config) <= deployed_keys
