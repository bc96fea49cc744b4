"""API benchmarks for `make bench`: cold-start import time per function and heartbeat aggregation CPU.

Prints one JSON object. Each figure comes with a reference measured in the same run on the same machine
(a handler written as Powertools' documentation shows; `json.loads` of the same records), so ratios
stay comparable across machines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from local.functions import layer_dirs, triggered_functions
from local.template import Template

ROOT = Path(__file__).resolve().parents[2]
STOCK_HANDLER = "stock_handler"
RUNS = 5
RECORDS = 10_000
TARGET_MS = 300


def deployed_import_paths() -> dict[str, list[Path]]:
    """Each function's handler module and import path (code asset, then layer assets), as staged in cdk.out."""
    template = Template.load(ROOT / "cdk.out")
    triggered = triggered_functions(template)
    return {props["Handler"].rpartition(".")[0]: [template.asset_path(logical_id), *layer_dirs(template, props)]
            for logical_id, props in template.of_type("AWS::Lambda::Function") if logical_id in triggered}


def interpreters() -> dict[str, str]:
    """The virtualenv's interpreter and, when installed, the distribution's build of the same Python version.

    Distributions (Debian here) build CPython with PGO and LTO, as production runtimes are built; pyenv's
    default builds are not, and import about 1.5x slower on these machines. The target is judged on the
    distribution build when there is one.
    """
    found = {"virtualenv": sys.executable}
    distribution = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin")
    if distribution and Path(distribution).resolve() != Path(sys.executable).resolve():
        found["distribution"] = distribution
    return found


def import_ms(python: str, module: str, path: list[Path]) -> float:
    """`-X importtime`'s cumulative time for `module`, in ms, in a fresh interpreter.

    The virtualenv's packages stand in for the Powertools layer. Bytecode is not written: Lambda's code
    directories are read-only, so the assets' modules compile at every cold start there too.
    """
    packages = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join([*map(str, path), *packages])}
    result = subprocess.run([python, "-X", "importtime", "-c", f"import {module}"],
                            capture_output=True, text=True, env=env, check=True)
    line = [ln for ln in result.stderr.splitlines() if re.search(rf"\|\s*{re.escape(module)}$", ln)][-1]
    return int(line.split("|")[1]) / 1000


def cold_start_imports() -> dict[str, Any]:
    """Median of RUNS per function and interpreter, rounds interleaved so that load spikes hit all alike."""
    modules = {STOCK_HANDLER: [ROOT / "tests" / "bench"], **deployed_import_paths()}
    pythons = interpreters()
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(RUNS):
        for module, path in modules.items():
            for kind, python in pythons.items():
                samples.setdefault((module, kind), []).append(import_ms(python, module, path))
    median = {key: round(statistics.median(values), 1) for key, values in samples.items()}
    judged_on = "distribution" if "distribution" in pythons else "virtualenv"
    reference = median[(STOCK_HANDLER, judged_on)]
    return {
        "target_ms": TARGET_MS,
        "interpreters": {kind: f"{python} ({_version(python)})" for kind, python in pythons.items()},
        "judged_on": judged_on,
        "reference_stock_powertools_handler_ms": {kind: median[(STOCK_HANDLER, kind)] for kind in pythons},
        "functions": {module: {**{f"{kind}_ms": median[(module, kind)] for kind in pythons},
                               "ratio_vs_stock_powertools_handler": round(median[(module, judged_on)] / reference, 2)}
                      for module in modules if module != STOCK_HANDLER},
    }


def _version(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


class _MemoryStore:
    """Stands in for DynamoDB so that only the in-process aggregation is timed."""

    def load_presence(self, stream_id: str, first: int, last: int) -> dict[int, set[str]]:
        return {}

    def apply(self, delta: Any, now: float) -> int | None:
        self.last = delta
        return None

    def record_ingest(self, *args: Any) -> None: ...

    def summary(self, stream_id: str, session_id: str | None, now: float) -> dict[str, Any]:
        return {}


def aggregation_cpu_s() -> dict[str, float]:
    sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "layers/shared/python")]
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from analytics.consumer_service import process_sqs_batch

    now = time.time()
    streams = [f"st_{chr(97 + i) * 16}" for i in range(20)]
    bodies = [json.dumps({"v": 1, "stream_id": streams[i % 20], "session_id": "ses_1", "viewer_id": f"viewer-{i}",
                          "at": now - (i % 30)}) for i in range(RECORDS)]
    event = {"Records": [{"messageId": str(i), "receiptHandle": "r", "body": b, "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"}
                        for i, b in enumerate(bodies)]}
    start = time.process_time()
    result = process_sqs_batch(event, _MemoryStore(), now=now)
    consumer = time.process_time() - start
    assert not result["batchItemFailures"]
    start = time.process_time()
    for body in bodies:
        json.loads(body)
    reference = time.process_time() - start
    return {"consumer_cpu_s": round(consumer, 3), "reference_json_loads_cpu_s": round(reference, 4),
            "ratio": round(consumer / reference, 1), "target_cpu_s": 0.5}


def figures() -> dict[str, Any]:
    return {"cold_start_import_ms": cold_start_imports(),
            f"heartbeat_aggregation_{RECORDS}_records": aggregation_cpu_s()}


def main() -> None:
    print(json.dumps(figures(), indent=2))


if __name__ == "__main__":
    main()
