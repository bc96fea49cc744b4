"""The Tracer's lazy X-Ray provider: no SDK import while tracing is off, patching before the first client when on.

Each case runs in a fresh interpreter, since the point is what gets imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.component
ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import {module}
from streamforge import observability
before = "aws_xray_sdk.core" in sys.modules
{action}
print(json.dumps({{"before": before, "after": "aws_xray_sdk.core" in sys.modules,
                  "disabled": observability.tracer.disabled, "enabled": observability.xray_provider.enabled}}))
"""

INVOKE = """
from streamforge.observability import tracer
@tracer.capture_lambda_handler(capture_response=False)
def handler(event, context):
    return {"ok": True}
assert handler({}, None) == {"ok": True}
"""

FIRST_CLIENT = """
import botocore.client
from streamforge.aws import client
client("sqs")
from aws_xray_sdk.core import patcher
assert "botocore" in patcher._PATCHED_MODULES, patcher._PATCHED_MODULES
"""


def probe(module: str, action: str, **env: str) -> dict[str, bool]:
    environ = {k: v for k, v in os.environ.items() if k not in {"LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED"}}
    environ.update(PYTHONPATH=os.pathsep.join([str(ROOT / "functions"), str(ROOT / "layers/shared/python")]),
                   AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR", **env)
    result = subprocess.run([sys.executable, "-c", PROBE.format(module=module, action=action)], env=environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", [
    "users.handler", "metadata.handler", "analytics.handler", "analytics.consumer_handler"])
def test_tracing_off_never_imports_the_xray_sdk(module: str) -> None:
    state = probe(module, INVOKE)
    assert state == {"before": False, "after": False, "disabled": True, "enabled": False}


def test_tracing_on_defers_the_sdk_to_first_use() -> None:
    state = probe("analytics.handler", INVOKE, LAMBDA_TASK_ROOT="/var/task")
    assert state == {"before": False, "after": True, "disabled": False, "enabled": True}


def test_tracing_on_patches_botocore_before_the_first_client() -> None:
    state = probe("users.handler", FIRST_CLIENT, LAMBDA_TASK_ROOT="/var/task")
    assert state["before"] is False and state["after"] is True


def test_the_trace_disabled_variable_wins_inside_lambda() -> None:
    state = probe("users.handler", INVOKE, LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_TRACE_DISABLED="true")
    assert state == {"before": False, "after": False, "disabled": True, "enabled": False}
