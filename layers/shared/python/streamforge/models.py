"""Models shared by every API: the error shape and common identifiers."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

STREAM_ID_PATTERN = r"^st_[a-z2-7]{16}$"
StreamId = Annotated[str, Field(pattern=STREAM_ID_PATTERN, description="Stream id, `st_` + 16 base32 chars")]


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so typos are reported rather than ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _partial_update_schema(schema: dict[str, Any]) -> None:
    # What `PartialUpdate` validates, said in the schema: some field, and no nulls (defaults are Python's only).
    schema["minProperties"] = 1
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class PartialUpdate(StrictModel):
    """A PATCH body: at least one field, none of them null.

    Declare fields as `name: T | SkipJsonSchema[None] = None`, so the schema offers no null either.
    """

    model_config = ConfigDict(json_schema_extra=_partial_update_schema)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("at least one field must be given")
        if any(getattr(self, name) is None for name in self.model_fields_set):
            raise ValueError("fields may not be null")
        return self


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code")
    message: str = Field(description="Human-readable explanation")


class ErrorResponse(BaseModel):
    error: ErrorBody
