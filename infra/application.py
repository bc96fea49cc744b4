"""Builds the CDK app: context from cdk.json, the StreamForge stack and the cdk-nag checks."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra import constants as c
from infra.edge import EdgeStack
from infra.settings import Settings
from infra.stack import StreamForgeStack
from infra.support import REPO_ROOT


def cdk_json_context() -> dict[str, Any]:
    """Context from cdk.json. The CLI passes it itself; `python app.py` would otherwise not see it."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


# What the CDK CLI turns on by default, so `python app.py` writes the same template as `cdk synth`:
# `aws:asset:path` metadata is how the local platform finds each function's and layer's staged code.
CLI_DEFAULT_CONTEXT = {"aws:cdk:enable-asset-metadata": True, "aws:cdk:enable-path-metadata": True}


def build_app(*, outdir: str = c.OUTDIR, context: dict[str, Any] | None = None) -> tuple[App, StreamForgeStack]:
    # cdk.json is the default layer; CLI context (`-c key=value`, via CDK_CONTEXT_JSON) overrides it.
    app = App(
        outdir=outdir,
        context={**CLI_DEFAULT_CONTEXT, **cdk_json_context(), **(context or {})},
        analytics_reporting=False,
    )
    settings = Settings.from_context(app.node)
    edge = EdgeStack(app, c.EDGE_STACK_ID, limits=settings.edge_rate_limits)
    stack = StreamForgeStack(app, c.STACK_ID, settings=settings)
    # The main stack reads the edge stack's web ACL ARN at deploy time, so the edge stack deploys first.
    stack.add_stack_dependency(edge)
    # cdk-nag 3 is a policy-validation plugin: any finding not acknowledged with a reason fails the synth.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
