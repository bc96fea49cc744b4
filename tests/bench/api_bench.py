"""API benchmarks for `make bench`: cold-start import time per function and heartbeat aggregation CPU.

Prints one JSON object. Each figure comes with a reference measured in the same run on the same
machine (`import json`; `json.loads` of the same records), so ratios stay comparable across machines.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("users.handler", "metadata.handler", "analytics.handler", "analytics.consumer")
RUNS = 5
RECORDS = 10_000


def import_ms(module: str) -> float:
    """Median over RUNS fresh interpreters of `-X importtime`'s cumulative time for `module`, in ms."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT / "layers/shared/python")])}
    samples = []
    for _ in range(RUNS):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                                capture_output=True, text=True, env=env, check=True)
        line = [ln for ln in result.stderr.splitlines() if re.search(rf"\|\s*{re.escape(module)}$", ln)][-1]
        samples.append(int(line.split("|")[1]) / 1000)
    return round(statistics.median(samples), 1)


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
    from analytics.consumer import process_sqs_batch

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
    baseline = import_ms("json")
    imports = {m: {"ms": ms, "ratio_vs_import_json": round(ms / baseline, 1)} for m in FUNCTIONS
               for ms in [import_ms(m)]}
    return {"cold_start_import_ms": {"reference_import_json_ms": baseline, "target_ms": 300, **imports},
            f"heartbeat_aggregation_{RECORDS}_records": aggregation_cpu_s()}


def main() -> None:
    print(json.dumps(figures(), indent=2))


if __name__ == "__main__":
    main()
