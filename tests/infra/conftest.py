"""One synth of the real app (cdk.json context, cdk-nag plugin) shared by every infra test module."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra import constants as c
from infra.application import build_app
from infra.stack import StreamForgeStack


@dataclass(frozen=True)
class Synth:
    app: App
    stack: StreamForgeStack
    template: Template
    edge_template: Template  # the us-east-1 stack of the API's web ACL (infra/edge.py)
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template.to_json()["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def asset_dir(self, logical_id: str) -> Path:
        """The staged asset directory of a Lambda function or layer (what the local platform runs)."""
        return self.outdir / self.resources[logical_id]["Metadata"]["aws:asset:path"]

    def policies_of_role(self, role_logical_id: str) -> list[dict[str, Any]]:
        """Every statement of the IAM policies attached to a role."""
        statements: list[dict[str, Any]] = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
        return statements

    def function_statements(self, function_id: str) -> list[dict[str, Any]]:
        role = self.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        return self.policies_of_role(role)


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    app, stack = build_app(outdir=str(outdir), context=context)
    edge = app.node.find_child(c.EDGE_STACK_ID)
    assert isinstance(edge, Stack)
    # Template.from_stack runs the full synth, including the cdk-nag validation plugin.
    return Synth(app=app, stack=stack, template=Template.from_stack(stack), edge_template=Template.from_stack(edge),
                 outdir=outdir)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(tmp_path_factory.mktemp("cdk.out"))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def mentions(value: Any, text: str) -> bool:
    return text in json.dumps(value)


def routes_of(synth: Synth, api_id: str) -> dict[str, dict[str, Any]]:
    """The properties of an API's routes, by route key."""
    return {
        route["Properties"]["RouteKey"]: route["Properties"]
        for route in synth.of_type("AWS::ApiGatewayV2::Route").values()
        if route["Properties"]["ApiId"] == {"Ref": api_id}
    }


def integration_function(synth: Synth, route: dict[str, Any]) -> str:
    """The logical id of the Lambda function behind a route's integration."""
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    uri = synth.resources[integration_id]["Properties"]["IntegrationUri"]
    return str(uri["Fn::GetAtt"][0] if "Fn::GetAtt" in uri else uri["Fn::Join"][1][5]["Fn::GetAtt"][0])
