"""The template's Lambda functions, each served by warm worker processes of its own.

A worker gets the function's resolved environment and its code and layer paths from the template,
so locally a handler runs exactly as deployed: same handler string, same env, same layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.emulators import Endpoints
from local.template import Template, UnresolvableError

log = logging.getLogger("streamforge.local.functions")

WORKER_SCRIPT = Path(__file__).resolve().parent / "lambda_worker.py"

LAYER_TYPE = "AWS::Lambda::LayerVersion"
# Lambda returns at most 6 MB; a line this long means a broken worker, not a big answer.
MAX_REPLY_BYTES = 8 * 1024 * 1024


class InvocationError(RuntimeError):
    """The function raised, timed out, or its worker died."""


@dataclass
class FunctionSpec:
    logical_id: str
    handler: str
    code_dir: Path
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int
    arn: str


def triggered_functions(template: Template) -> set[str]:
    """Functions something invokes locally: API integrations, event source mappings and rule targets.

    CDK's own custom-resource providers (deploy-time only) are left out.
    """
    references = [props.get("IntegrationUri") for _, props in template.of_type("AWS::ApiGatewayV2::Integration")]
    references += [props.get("FunctionName") for _, props in template.of_type("AWS::Lambda::EventSourceMapping")]
    references += [target.get("Arn") for _, props in template.of_type("AWS::Events::Rule")
                   for target in props.get("Targets", [])]
    return {logical_id for logical_id in map(template.try_logical_id_of, references) if logical_id}


def layer_dirs(template: Template, function_props: dict[str, Any]) -> list[Path]:
    """The staged `python/` directories of a function's own layers, in order.

    External layers (Powertools) are provided by the local virtualenv.
    """
    dirs = []
    for layer in function_props.get("Layers", []):
        layer_id = template.try_logical_id_of(layer)
        if layer_id and template.resources[layer_id].get("Type") == LAYER_TYPE:
            dirs.append(template.asset_path(layer_id) / "python")
    return dirs


def function_specs(template: Template, *, overrides: dict[str, str]) -> dict[str, FunctionSpec]:
    specs = {}
    triggered = triggered_functions(template)
    for logical_id, props in template.of_type("AWS::Lambda::Function"):
        if logical_id not in triggered:
            continue
        environment = {}
        for name, value in props.get("Environment", {}).get("Variables", {}).items():
            resolved = template.try_resolve(value)
            if resolved is None and name not in overrides:
                log.warning("%s: %s is not resolvable locally; left unset", logical_id, name)
                continue
            environment[name] = str(resolved)
        environment.update({k: v for k, v in overrides.items() if k in environment})
        resolved_name = template.resolved.get(logical_id)
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            handler=props["Handler"],
            code_dir=template.asset_path(logical_id),
            layer_dirs=layer_dirs(template, props),
            environment=environment,
            timeout_s=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            arn=resolved_name.attributes.get("Arn", "") if resolved_name else "",
        )
    return specs


async def forward_lines(stream: asyncio.StreamReader | None, logger: logging.Logger,
                        level: int = logging.INFO) -> None:
    """A child's output, line by line, into the platform's logging (where tests can capture it)."""
    if stream is None:
        return
    async for line in stream:
        logger.log(level, "%s", line.decode(errors="replace").rstrip())


class Worker:
    def __init__(self, spec: FunctionSpec, base_env: dict[str, str]) -> None:
        self.spec = spec
        self._base_env = base_env
        self._process: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = {**self._base_env, **self.spec.environment,
               "AWS_LAMBDA_FUNCTION_NAME": self.spec.arn.rsplit(":", 1)[-1] or self.spec.logical_id,
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
               "STREAMFORGE_LOCAL_FUNCTION_ARN": self.spec.arn}
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER_SCRIPT), self.spec.handler, str(self.spec.code_dir),
            *map(str, self.spec.layer_dirs),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env, limit=MAX_REPLY_BYTES,
        )
        self._stderr_task = asyncio.create_task(self._forward_logs())
        ready = await self._read_line(timeout=60)
        if not ready.get("ready"):
            raise InvocationError(f"{self.spec.logical_id} did not start: {ready}")

    async def _forward_logs(self) -> None:
        assert self._process and self._process.stderr
        await forward_lines(self._process.stderr, logging.getLogger(f"streamforge.fn.{self.spec.logical_id}"))

    async def _read_line(self, *, timeout: float) -> dict[str, Any]:
        assert self._process and self._process.stdout
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if not line:
            raise InvocationError(f"{self.spec.logical_id} worker exited ({self._process.returncode})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def invoke(self, event: dict[str, Any]) -> Any:
        assert self._process and self._process.stdin
        request = {"event": event, "request_id": str(uuid.uuid4()), "timeout_s": self.spec.timeout_s}
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        await self._process.stdin.drain()
        try:
            reply = await self._read_line(timeout=self.spec.timeout_s + 1)
        except TimeoutError as error:
            await self.stop()
            raise InvocationError(f"{self.spec.logical_id} timed out after {self.spec.timeout_s:.0f} s") from error
        if "error" in reply:
            raise InvocationError(f"{self.spec.logical_id}: {reply['error']['errorType']}: "
                                  f"{reply['error']['errorMessage']}")
        return reply["result"]

    async def stop(self) -> None:
        if self._process and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
        if self._stderr_task:
            self._stderr_task.cancel()


@dataclass
class FunctionPool:
    """Up to `concurrency` warm workers per function, started on demand, like Lambda's scaling."""

    spec: FunctionSpec
    base_env: dict[str, str]
    concurrency: int = 2
    _idle: list[Worker] = field(default_factory=list)
    _all: list[Worker] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None

    async def warm(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)
        worker = Worker(self.spec, self.base_env)
        await worker.start()
        self._all.append(worker)
        self._idle.append(worker)

    async def invoke(self, event: dict[str, Any]) -> Any:
        assert self._slots is not None, "warm() first"
        async with self._slots:
            worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.alive:
                worker = Worker(self.spec, self.base_env)
                await worker.start()
                self._all.append(worker)
            try:
                return await worker.invoke(event)
            finally:
                if worker.alive:
                    self._idle.append(worker)
                else:
                    self._all.remove(worker)

    @property
    def healthy(self) -> bool:
        return any(w.alive for w in self._all)

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self._all))


class FunctionRuntime:
    def __init__(self, specs: dict[str, FunctionSpec], *, base_env: dict[str, str]) -> None:
        self.pools = {logical_id: FunctionPool(spec, base_env) for logical_id, spec in specs.items()}

    async def start(self) -> None:
        await asyncio.gather(*(pool.warm() for pool in self.pools.values()))

    async def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        pool = self.pools.get(logical_id)
        if pool is None:
            raise UnresolvableError(f"no function {logical_id} in the template")
        return await pool.invoke(event)

    def health(self) -> dict[str, str]:
        return {logical_id: "ok" if pool.healthy else "down" for logical_id, pool in self.pools.items()}

    async def stop(self) -> None:
        await asyncio.gather(*(pool.stop() for pool in self.pools.values()))


def worker_base_env(endpoints: Endpoints) -> dict[str, str]:
    """What the Lambda service itself would set, pointed at the emulators."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "SSL_CERT_FILE")}
    return {
        **keep,
        **endpoints.environment(),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",
    }
