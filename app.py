#!/usr/bin/env python3
"""CDK entry point: `python app.py` or `npx aws-cdk synth` from the repository root (writes cdk.out/)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"

try:
    import aws_cdk  # noqa: F401
except ImportError:
    # cdk.json says `python3 app.py`; when that is a python without the deps, re-run under the project venv.
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    raise

# The CDK app reads the shared layer's event catalog (streamforge.events) for the EventBridge rules.
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "shared" / "python")]

from infra.application import build_app  # noqa: E402


def main() -> None:
    app, _ = build_app(outdir=os.environ.get("CDK_OUTDIR", str(ROOT / "cdk.out")))
    app.synth()


if __name__ == "__main__":
    main()
