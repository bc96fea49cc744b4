"""`make test`: run every test tier this machine can run, and say loudly which ones it cannot.

The localstack tier (the LocalStack variants of the integration and e2e tests, and tests/localstack) runs against
STREAMFORGE_LOCALSTACK_ENDPOINT when set, else against a LocalStack this script installs (first use) and starts
for the run.

Under CI (`STREAMFORGE_CI=1`) a core tier that cannot run is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys

from local import localstack
from local.platform import free_port

CORE_TIERS = ("unit", "component", "infra", "integration", "e2e")
ALL_TIERS = (*CORE_TIERS, "localstack")


def unavailable_tiers() -> dict[str, str]:
    """Tier -> why this machine cannot run it."""
    reasons = {}
    if shutil.which("node") is None:
        reasons["infra"] = "node is not installed (jsii needs it for CDK synth)"
    media_tools = [tool for tool in ("ffmpeg", "ffprobe", "gst-launch-1.0") if shutil.which(tool) is None]
    if media_tools:
        reasons["component"] = f"missing {', '.join(media_tools)} (make test installs them when run as root)"
    missing = [tool for tool in ("ffmpeg", "ffprobe", "chromium") if shutil.which(tool) is None]
    if missing:
        reasons["e2e"] = f"missing {', '.join(missing)} (make test installs them when run as root)"
    if localstack.python313() is None and not os.environ.get("STREAMFORGE_LOCALSTACK_ENDPOINT"):
        reasons["localstack"] = "no Python 3.13 to run LocalStack with, and no STREAMFORGE_LOCALSTACK_ENDPOINT"
    return reasons


def main() -> int:
    reasons = unavailable_tiers()
    with contextlib.ExitStack() as stack:
        if "localstack" not in reasons and not os.environ.get("STREAMFORGE_LOCALSTACK_ENDPOINT"):
            try:
                os.environ["STREAMFORGE_LOCALSTACK_ENDPOINT"] = stack.enter_context(localstack.running(free_port()))
            except localstack.LocalStackUnavailable as exc:
                reasons["localstack"] = str(exc)
        for tier, why in reasons.items():
            print(f"*** SKIPPING the {tier} tier: {why}", flush=True)
        if os.environ.get("STREAMFORGE_CI") and any(tier in reasons for tier in CORE_TIERS):
            print("*** CI must run every core tier; failing.", flush=True)
            return 1
        expression = " or ".join(tier for tier in ALL_TIERS if tier not in reasons)
        if "localstack" in reasons:  # the LocalStack variants of core-tier tests carry both marks
            expression = f"({expression}) and not localstack"
        result = subprocess.run([sys.executable, "-m", "pytest", "-m", expression, *sys.argv[1:]], check=False)
    for tier, why in reasons.items():
        print(f"*** SKIPPED the {tier} tier: {why}", flush=True)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
