"""LocalStack on the host, without Docker: installed on first use and run for the `localstack` test tier.

LocalStack 2026.x needs Python 3.12 or later and its dependencies as of its release (FIELD-NOTES), so it gets
a virtualenv of its own, `.localstack-venv`, built with uv from the first Python 3.13 found (on PATH or in
pyenv). The free edition serves S3, SQS and EventBridge here; DynamoDB would download a jar at first use and
Cognito, API Gateway v2 and CloudFront are paid features, which is what the tier's tests keep to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".localstack-venv"
PACKAGE = "localstack-core[runtime]==2026.3.0"
RELEASED = "2026-03-24"
READY_TIMEOUT_S = 90.0
INSTALL_TIMEOUT_S = 600.0

log = logging.getLogger("streamforge.local.localstack")


class LocalStackUnavailable(RuntimeError):
    """LocalStack cannot be installed or started on this machine; the message says why."""


def python313() -> str | None:
    found = shutil.which("python3.13")
    if found and subprocess.run([found, "--version"], capture_output=True, check=False).returncode == 0:
        return found
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates = sorted(Path(root, "versions").glob("3.13*/bin/python3.13")) if root else []
        if candidates:
            return str(candidates[-1])
    return None


def ensure_installed() -> Path:
    """The LocalStack virtualenv's python, installing it first if needed."""
    python = VENV / "bin" / "python"
    marker = VENV / f".installed-{PACKAGE}"
    if marker.exists():
        return python
    interpreter = python313()
    if interpreter is None:
        raise LocalStackUnavailable("no Python 3.13 (on PATH or in pyenv); LocalStack 2026.x needs 3.12+")
    print(f"*** installing {PACKAGE} into {VENV.name} (first use)", flush=True)
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        raise LocalStackUnavailable(f"{uv} is missing: reinstall the virtualenv (requirements-dev.txt)")
    steps = [[str(uv), "venv", "--quiet", "--allow-existing", "-p", interpreter, str(VENV)],
             [str(uv), "pip", "install", "--quiet", "--python", str(python), "--exclude-newer", RELEASED, PACKAGE]]
    for step in steps:
        try:
            result = subprocess.run(step, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise LocalStackUnavailable(f"`{' '.join(step[:4])} ...` took over {INSTALL_TIMEOUT_S:.0f} s") from exc
        if result.returncode != 0:
            raise LocalStackUnavailable(f"`{' '.join(step[:4])} ...` failed: {result.stderr.strip()[-500:]}")
    marker.touch()
    return python


def _ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2) as response:
            services = json.load(response).get("services", {})
    except OSError:
        return False
    return all(services.get(name) in ("available", "running") for name in ("s3", "sqs", "events"))


@contextlib.contextmanager
def running(port: int) -> Iterator[str]:
    """A LocalStack listening on 127.0.0.1:`port` for the duration; yields its endpoint URL."""
    python = ensure_installed()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GATEWAY_LISTEN": f"127.0.0.1:{port}", "SKIP_SSL_CERT_DOWNLOAD": "1",
           "DISABLE_EVENTS": "1", "LOCALSTACK_VOLUME_DIR": str(VENV / "volume")}
    log_path = VENV / "localstack.log"
    with log_path.open("w") as output:
        process = subprocess.Popen([str(python), "-m", "localstack.runtime.main"], env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-800:]
                raise LocalStackUnavailable(f"LocalStack did not become ready on {endpoint}: {tail}")
            time.sleep(0.2)
        log.info("LocalStack ready on %s", endpoint)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
