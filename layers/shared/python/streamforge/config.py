"""Validated configuration from the environment.

Subclasses declare fields like a dataclass; field names are the lower-case forms of the variables in
docs/contracts.md. Standard library only: the analytics consumer needs no pydantic, and importing
pydantic would add about 100 ms to its cold start.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, dataclass_transform, get_type_hints

T = TypeVar("T", bound="EnvConfig")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """Environment variables are missing or invalid; every problem is listed."""


def _boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ValueError(raw)
    return word in _TRUE


_PARSERS: dict[type, Callable[[str], Any]] = {str: str, int: int, float: float, bool: _boolean}


def _kind(annotation: Any) -> type:
    """`X` for a field annotated `X` or `X | None`, where X is str, int, float or bool."""
    if isinstance(annotation, types.UnionType):
        kinds = [a for a in annotation.__args__ if a is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else annotation
    if annotation not in _PARSERS:
        raise TypeError(f"EnvConfig fields must be str, int, float or bool (optionally | None), not {annotation!r}")
    return annotation


@dataclass_transform(frozen_default=True, kw_only_default=True)
class EnvConfig:
    _kinds: ClassVar[dict[str, type]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        # Checked at import, so an unsupported field type fails the deploy's first import, not a request.
        hints = get_type_hints(cls)
        cls._kinds = {f.name: _kind(hints[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def from_env(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            name = field.name.upper()
            raw = env.get(name, "")
            if not raw.strip():
                if field.default is dataclasses.MISSING:
                    problems.append(f"{name} is required")
                continue
            kind = cls._kinds[field.name]
            try:
                values[field.name] = _PARSERS[kind](raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not a valid {kind.__name__}")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(**values)
