"""Logger, Tracer and Metrics singletons, configured from the POWERTOOLS_* variables."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
# A namespace is required to flush EMF; fall back to the project's so tests and tools need no env.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StreamForge"))
