"""Models shared by every API: the error shape and common identifiers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

STREAM_ID_PATTERN = r"^st_[a-z2-7]{16}$"
StreamId = Annotated[str, Field(pattern=STREAM_ID_PATTERN, description="Stream id, `st_` + 16 base32 chars")]


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so typos are reported rather than ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code")
    message: str = Field(description="Human-readable explanation")


class ErrorResponse(BaseModel):
    error: ErrorBody
