"""One warm Lambda execution environment: imports the handler once, then serves invocations.

Protocol: one JSON line per invocation on stdin (`{"event": ..., "request_id": ...}`), one JSON line
back on the protocol pipe (`{"result": ...}` or `{"error": ...}`). The handler's own stdout (Powertools
logs, EMF metrics) is moved to stderr so it cannot corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_s: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    # Ctrl-C reaches the whole process group; the platform stops its workers itself, and a worker whose
    # platform died sees its stdin close.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handler_path, code_dir, *layer_dirs = sys.argv[1:]
    # Run as a script: drop this file's directory, so only the function's code and layers are importable.
    sys.path[:1] = [code_dir, *layer_dirs]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    module_name, _, function_name = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
            memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            invoked_function_arn=os.environ.get("STREAMFORGE_LOCAL_FUNCTION_ARN", ""),
            aws_request_id=request["request_id"],
            timeout_s=float(request.get("timeout_s", 30)),
        )
        reply: dict[str, Any]
        try:
            reply = {"result": handler(request["event"], context)}
        except Exception as error:  # the handler's failure is the invocation's result, as in Lambda
            reply = {"error": {"errorType": type(error).__name__, "errorMessage": str(error),
                               "stackTrace": traceback.format_exc().splitlines()}}
        protocol.write(json.dumps(reply, default=str) + "\n")


if __name__ == "__main__":
    main()
