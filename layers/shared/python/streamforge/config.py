"""Validated configuration from the environment.

A plain pydantic model over `os.environ` (pydantic-settings is not in the Powertools layer).
Field names are the lower-case forms of the variables in docs/contracts.md.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T", bound="EnvConfig")


class EnvConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls: type[T], environ: dict[str, str] | None = None) -> T:
        env = os.environ if environ is None else environ
        # Unset variables are left out so that field defaults apply and missing required ones fail loudly.
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        return cls.model_validate(values)
