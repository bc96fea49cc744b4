"""The synthesized CloudFormation template, read as the single source of truth for the local platform.

Intrinsic functions are resolved against what the local provisioner created, so the local platform
never keeps a second, hand-written list of routes, tables or environment variables.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_NAME = "StreamForge"
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"


class UnresolvableError(LookupError):
    """An intrinsic refers to something the local platform does not emulate."""


@dataclass
class ResolvedResource:
    """What `Ref` and `Fn::GetAtt` give for one emulated resource."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


class Template:
    def __init__(self, body: dict[str, Any], *, assembly_dir: Path) -> None:
        self.body = body
        self.assembly_dir = assembly_dir
        self.resources: dict[str, dict[str, Any]] = body.get("Resources", {})
        self.resolved: dict[str, ResolvedResource] = {}
        self.pseudo = {
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
            "AWS::NoValue": None,
        }

    @classmethod
    def load(cls, assembly_dir: Path, stack_name: str = STACK_NAME) -> Template:
        path = assembly_dir / f"{stack_name}.template.json"
        return cls(json.loads(path.read_text()), assembly_dir=assembly_dir)

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == resource_type:
                yield logical_id, resource.get("Properties", {})

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id].get("Properties", {}))

    def asset_path(self, logical_id: str) -> Path:
        """The staged directory of a resource's code asset (CDK's `aws:asset:path` metadata)."""
        staged = self.resources[logical_id].get("Metadata", {}).get("aws:asset:path")
        if not staged:
            raise UnresolvableError(f"{logical_id} has no staged asset")
        path = Path(staged)
        return path if path.is_absolute() else self.assembly_dir / path

    def bind(self, logical_id: str, ref: str, **attributes: str) -> None:
        self.resolved[logical_id] = ResolvedResource(ref=ref, attributes=attributes)

    def logical_id_of(self, value: Any) -> str:
        """The logical id behind a `Ref` or `Fn::GetAtt`, or behind an `integrations/<id>` join."""
        if isinstance(value, dict):
            if "Ref" in value:
                return str(value["Ref"])
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                return str(target[0] if isinstance(target, list) else target.split(".")[0])
            if "Fn::Join" in value:
                # e.g. `arn:${Partition}:apigateway:...:functions/${Fn.Arn}/invocations`: skip pseudo parameters.
                for part in value["Fn::Join"][1]:
                    if isinstance(part, dict):
                        with contextlib.suppress(UnresolvableError):
                            logical_id = self.logical_id_of(part)
                            if logical_id in self.resources:
                                return logical_id
        raise UnresolvableError(f"no logical id in {value!r}")

    def try_logical_id_of(self, value: Any) -> str | None:
        """The template resource behind `value`, or None for external ARNs and literals."""
        try:
            logical_id = self.logical_id_of(value)
        except UnresolvableError:
            return None
        return logical_id if logical_id in self.resources else None

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsics recursively; raise UnresolvableError for what is not emulated."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        (name, arg), = value.items()
        if name == "Ref":
            return self._ref(arg)
        if name == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._get_att(logical_id, attribute)
        if name == "Fn::Join":
            separator, parts = arg
            return separator.join(str(self.resolve(p)) for p in parts)
        if name == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(index)]
        if name == "Fn::Split":
            separator, source = arg
            return str(self.resolve(source)).split(separator)
        if name == "Fn::Sub":
            return self._sub(arg)
        if name.startswith("Fn::"):
            raise UnresolvableError(f"{name} is not emulated")
        return {name: self.resolve(arg)}

    def try_resolve(self, value: Any) -> Any:
        try:
            return self.resolve(value)
        except UnresolvableError:
            return None

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.resolved:
            return self.resolved[name].ref
        raise UnresolvableError(f"Ref {name} is not emulated")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resolved.get(logical_id)
        if resource is None or attribute not in resource.attributes:
            raise UnresolvableError(f"GetAtt {logical_id}.{attribute} is not emulated")
        return resource.attributes[attribute]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name in variables:
                out.append(str(self.resolve(variables[name])))
            elif "." in name:
                logical_id, attribute = name.split(".", 1)
                out.append(self._get_att(logical_id, attribute))
            else:
                out.append(str(self._ref(name)))
        out.append(rest)
        return "".join(out)
