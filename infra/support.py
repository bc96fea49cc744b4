"""Small helpers shared by the constructs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

from aws_cdk import Acknowledgment, CfnElement, Validations
from constructs import IConstruct

REPO_ROOT = Path(__file__).resolve().parent.parent


def repo_path(relative: str) -> str:
    """Absolute path of a repository directory, so synth works from any working directory."""
    return str(REPO_ROOT / relative)


def pin_logical_id(construct: IConstruct, logical_id: str) -> None:
    """Give the construct's CloudFormation resource a fixed logical id that the local platform and tests look up."""
    cast(CfnElement, construct.node.default_child).override_logical_id(logical_id)


def suppress(construct: IConstruct, rule: str, reason: str, *, findings: Iterable[str] = ()) -> None:
    """Acknowledge a cdk-nag rule on a construct and everything under it, with a written reason.

    cdk-nag 3 reports some rules (e.g. AwsSolutions-IAM5) once per finding, as `Rule[finding]`, and each finding
    has to be acknowledged by name; `findings` lists them. Without findings the whole rule is acknowledged.
    """
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))
