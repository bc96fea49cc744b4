"""Request and response models of the auth and users API."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from streamforge.models import PartialUpdate, StrictModel

USERNAME_PATTERN = r"^[A-Za-z0-9_]{3,32}$"
# Printable ASCII without space and `@`, spelled out: regex engines disagree on which Unicode characters `\s` means.
EMAIL_PATTERN = r"^[!-?A-~]{1,64}@[!-?A-~]+\.[!-?A-~]+$"

# The user pool's password policy (infra/identity.py; a test holds the two equal), said in the schema so that a
# password the schema allows is one Cognito takes: printable ASCII, not starting or ending with a space (Cognito
# refuses those), with Cognito's four character classes. 64 characters is NIST 800-63B's floor for the longest
# password a verifier must take, and within what the local emulators' Cognito accepts.
# A secret the caller sends: the API never repeats it, in an answer or a log line (OpenAPI's writeOnly).
SECRET: dict[str, Any] = {"writeOnly": True}
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 64
PASSWORD_PATTERN = (
    r"^(?=[ -~]*[a-z])(?=[ -~]*[A-Z])(?=[ -~]*[0-9])"
    r"""(?=[ -~]*[\^$*.\[\]{}()?"!@#%&/\\,><':;|_~`=+\- ])"""  # Cognito's symbols, space included
    r"[!-~][ -~]*[!-~]$"
)


def _password_policy(password: str) -> str:
    # Checked here rather than by pydantic's own regex engine, which has no look-ahead.
    if not re.fullmatch(PASSWORD_PATTERN, password):
        raise ValueError("needs a lower-case and an upper-case letter, a digit and a symbol, in printable ASCII, "
                         "not starting or ending with a space")
    return password


Username = Annotated[str, Field(min_length=3, max_length=32, pattern=USERNAME_PATTERN,
                                description="3-32 chars: letters, digits and underscore; case-insensitive "
                                            "(stored in lower case)")]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)]
Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH, description=(
    f"{PASSWORD_MIN_LENGTH}-{PASSWORD_MAX_LENGTH} printable ASCII characters with a lower-case and an upper-case "
    "letter, a digit and a symbol, not starting or ending with a space"),
    json_schema_extra={"pattern": PASSWORD_PATTERN, "writeOnly": True}), AfterValidator(_password_policy)]


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _one_identifier(schema: dict[str, Any]) -> None:
    # What `_exactly_one_identifier` validates, said in the schema; no nulls either (as for PartialUpdate).
    schema["oneOf"] = [{"required": ["username"]}, {"required": ["email"]}]
    for name in ("username", "email"):
        schema["properties"][name].pop("default", None)


class SignupRequest(StrictModel):
    email: Email
    username: Username
    password: Password

    _normalize = field_validator("email", "username", mode="before")(_lower)


class SignupResponse(BaseModel):
    user_id: str
    username: str


class LoginRequest(StrictModel):
    """Exactly one of `username` and `email`, and the password."""

    model_config = ConfigDict(json_schema_extra=_one_identifier)

    username: Username | SkipJsonSchema[None] = None
    email: Email | SkipJsonSchema[None] = None
    password: Annotated[str, Field(min_length=1, max_length=256, json_schema_extra=SECRET)]

    _normalize = field_validator("email", "username", mode="before")(_lower)

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> LoginRequest:
        if (self.username is None) == (self.email is None):
            raise ValueError("give exactly one of username or email")
        return self


class RefreshRequest(StrictModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=8192, json_schema_extra=SECRET)]


class TokenResponse(BaseModel):
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


DisplayName = Annotated[str, Field(max_length=50)]
Bio = Annotated[str, Field(max_length=500)]


class UpdateProfileRequest(PartialUpdate):
    display_name: DisplayName | SkipJsonSchema[None] = None
    bio: Bio | SkipJsonSchema[None] = None


class LiveStream(BaseModel):
    id: str
    title: str
    status: str
    viewer_count: int
    started_at: str | None
    playback_url: str
    thumbnail_url: str


class PublicProfile(BaseModel):
    user_id: str
    username: str
    display_name: str
    bio: str
    follower_count: int
    following_count: int
    created_at: str
    live_stream: LiveStream | None


class MyProfile(BaseModel):
    user_id: str
    username: str
    email: str
    display_name: str
    bio: str
    follower_count: int
    following_count: int
    created_at: str


class FollowState(BaseModel):
    username: str
    following: bool
    follower_count: int
