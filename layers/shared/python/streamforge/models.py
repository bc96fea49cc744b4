"""Models shared by every API: the error shape and common identifiers."""

from __future__ import annotations

from typing import Annotated, Any, Self, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

STREAM_ID_PATTERN = r"^st_[a-z2-7]{16}$"
StreamId = Annotated[str, Field(pattern=STREAM_ID_PATTERN, description="Stream id, `st_` + 16 base32 chars")]


def _integral(value: object) -> object:
    # JSON has one number type: 5.0 is the integer 5 to JSON Schema, so it is to this API.
    return int(value) if isinstance(value, float) and value.is_integer() else value


INTEGRAL = BeforeValidator(_integral)
"""For an integer of a strict request body, after its Field (so the schema keeps the bounds):
`Annotated[int, Field(ge=0), INTEGRAL]` takes 5 and 5.0, not "5" or true."""


# The marker class `SkipJsonSchema[None]` annotates None with (the name itself is a generic alias to type checkers).
_SKIPPED = type(get_args(SkipJsonSchema[None])[1])  # type: ignore[misc]


def _hides_null(annotation: Any) -> bool:
    """Whether a field is declared `T | SkipJsonSchema[None]`: None is its Python default, not a value to send."""
    return any(get_origin(arg) is Annotated and get_args(arg)[0] is type(None)
               and any(isinstance(meta, _SKIPPED) for meta in arg.__metadata__) for arg in get_args(annotation))


class StrictModel(BaseModel):
    """A request body, validated as sent, so that what the OpenAPI schema allows is exactly what the API accepts:
    unknown fields are refused (so typos are reported rather than ignored), no value is coerced or trimmed
    (`"5"` is not an integer, `false` is not 0), and a field declared `T | SkipJsonSchema[None] = None` may be
    left out but not sent as null (its schema offers no null)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="after")
    def _no_hidden_nulls(self) -> Self:
        fields = type(self).model_fields
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None and _hides_null(fields[name].annotation):
                raise ValueError(f"{name} may be left out but not null")
        return self


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
        return self


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code")
    message: str = Field(description="Human-readable explanation")


class ErrorResponse(BaseModel):
    error: ErrorBody


class GatewayMessage(BaseModel):
    """An answer the HTTP API gives itself before any function runs, in AWS's shape rather than ErrorResponse's."""

    message: str = Field(description='API Gateway\'s own text: "Unauthorized" (JWT authorizer), '
                                     '"Too Many Requests" (stage throttling)')
