"""Logger, Tracer and Metrics singletons, configured from the POWERTOOLS_* variables.

The Tracer gets a provider that imports the X-Ray SDK only when tracing is enabled, and then only on first
use. Powertools' default provider imports `aws_xray_sdk.core` in `Tracer()`, which builds a botocore session
for its sampler: about 250 ms of every cold start, paid even where tracing is disabled (outside Lambda, or with
`POWERTOOLS_TRACE_DISABLED`). With tracing disabled the SDK is never imported and subsegments are no-ops.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from streamforge import aws


class _NullSegment(BaseSegment):
    """What a subsegment is when tracing is disabled: every call does nothing."""

    def close(self, end_time: int | None = None) -> None: ...

    def add_subsegment(self, subsegment: Any) -> None: ...

    def remove_subsegment(self, subsegment: Any) -> None: ...

    def put_annotation(self, key: str, value: Any) -> None: ...

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


_NULL_SEGMENT = _NullSegment()


class LazyXRayProvider(BaseProvider):
    """The X-Ray recorder, imported and configured on first use, and only while tracing is enabled.

    Patching requested by the Tracer (`auto_patch`) is recorded and applied when the SDK is loaded, which
    happens at the latest when the first AWS client is created (`streamforge.aws.client` calls `load`), so
    every client is created from patched botocore.
    """

    def __init__(self) -> None:
        self.enabled = True
        self._recorder: Any = None
        self._patch_all = False
        self._patch_modules: list[str] = []

    def load(self) -> Any:
        """The X-Ray recorder, or None when tracing is disabled."""
        if not self.enabled:
            return None
        if self._recorder is None:
            from aws_xray_sdk import core

            # What Powertools does for its own X-Ray provider: send subsegments one by one, not batched.
            core.xray_recorder.configure(streaming_threshold=0)
            if self._patch_all:
                core.patch_all()
            elif self._patch_modules:
                core.patch(self._patch_modules)
            self._recorder = core.xray_recorder
        return self._recorder

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        recorder = self.load()
        if recorder is None:
            yield _NULL_SEGMENT
            return
        with recorder.in_subsegment(name=name, **kwargs) as subsegment:
            yield subsegment

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        recorder = self.load()
        if recorder is None:
            yield _NULL_SEGMENT
            return
        async with recorder.in_subsegment_async(name=name, **kwargs) as subsegment:
            yield subsegment

    def put_annotation(self, key: str, value: Any) -> None:
        recorder = self.load()
        if recorder is not None:
            recorder.put_annotation(key=key, value=value)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        recorder = self.load()
        if recorder is not None:
            recorder.put_metadata(key=key, value=value, namespace=namespace)

    def patch(self, modules: Sequence[str]) -> None:
        self._patch_modules.extend(m for m in modules if m not in self._patch_modules)
        if self._recorder is not None:
            from aws_xray_sdk import core

            core.patch(list(modules))

    def patch_all(self) -> None:
        self._patch_all = True
        if self._recorder is not None:
            from aws_xray_sdk import core

            core.patch_all()


xray_provider = LazyXRayProvider()

logger = Logger()
# Powertools decides whether tracing is on (POWERTOOLS_TRACE_DISABLED, outside Lambda, SAM); the provider follows.
tracer = Tracer(provider=xray_provider)
xray_provider.enabled = not tracer.disabled
aws.before_first_client(xray_provider.load)
# A namespace is required to flush EMF; fall back to the project's so tests and tools need no env.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StreamForge"))
