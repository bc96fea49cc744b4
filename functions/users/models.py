"""Request and response models of the auth and users API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from streamforge.models import PartialUpdate, StrictModel

USERNAME_PATTERN = r"^[a-z0-9_]{3,32}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"

Username = Annotated[str, Field(min_length=3, max_length=32, pattern=USERNAME_PATTERN,
                                description="3-32 chars: a-z, 0-9 and underscore (case-insensitive)")]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)]
Password = Annotated[str, Field(min_length=8, max_length=256)]


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class SignupRequest(StrictModel):
    email: Email
    username: Username
    password: Password

    _normalize = field_validator("email", "username", mode="before")(_lower)


class SignupResponse(BaseModel):
    user_id: str
    username: str


class LoginRequest(StrictModel):
    username: Username | None = None
    email: Email | None = None
    password: Annotated[str, Field(min_length=1, max_length=256)]

    _normalize = field_validator("email", "username", mode="before")(_lower)

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> LoginRequest:
        if (self.username is None) == (self.email is None):
            raise ValueError("give exactly one of username or email")
        return self


class RefreshRequest(StrictModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=8192)]


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
