"""User rules: sign-up with email uniqueness, login by username or email, profiles and follows."""

from __future__ import annotations

from typing import Any

from streamforge.errors import Conflict, NotFound, Unauthorized
from streamforge.events import utc_now_iso
from streamforge.observability import logger
from streamforge.streams import StreamsReader, effective_viewer_count
from streamforge.urls import playback_url, thumbnail_url

from users.cognito import IdentityProvider
from users.repository import UsersRepository


class UsersService:
    def __init__(self, *, idp: IdentityProvider, repo: UsersRepository, streams: StreamsReader,
                 cdn_base_url: str, auto_confirm: bool) -> None:
        self._idp = idp
        self._repo = repo
        self._streams = streams
        self._cdn = cdn_base_url
        self._auto_confirm = auto_confirm

    def sign_up(self, *, email: str, username: str, password: str) -> dict[str, Any]:
        # Cognito keeps usernames unique; the email claim item keeps emails unique (and lets login use them).
        self._repo.claim_email(email, username)
        try:
            user_id = self._idp.sign_up(username=username, email=email, password=password)
        except Exception:
            self._repo.release_email(email)
            raise
        if self._auto_confirm:
            self._idp.confirm(username)
        self._repo.create_profile({
            "user_id": user_id, "username": username, "email": email, "display_name": username, "bio": "",
            "follower_count": 0, "following_count": 0, "created_at": utc_now_iso(),
        })
        logger.info("user signed up", user_id=user_id, auto_confirmed=self._auto_confirm)
        return {"user_id": user_id, "username": username}

    def login(self, *, username: str | None, email: str | None, password: str) -> dict[str, Any]:
        if username is None:
            username = self._repo.username_for_email(email or "")
            if username is None:
                # Same answer as a wrong password: do not reveal which emails are registered.
                raise Unauthorized("wrong username, email or password", code="invalid_credentials")
        return self._idp.login(username=username, password=password)

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        try:
            return self._idp.refresh(refresh_token)
        except Unauthorized as exc:
            raise Unauthorized("the refresh token is invalid or expired", code="invalid_refresh_token") from exc

    def me(self, user_id: str) -> dict[str, Any]:
        profile = self._repo.get_profile(user_id)
        if profile is None:
            raise NotFound("no profile for this user", code="profile_not_found")
        return _private(profile)

    def update_me(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return _private(self._repo.update_profile(user_id, {**changes, "updated_at": utc_now_iso()}))

    def public_profile(self, username: str) -> dict[str, Any]:
        profile = self._by_username(username)
        live = self._streams.live_stream_of(profile["user_id"])
        return {**_public(profile), "live_stream": self._live(live) if live else None}

    def follow(self, caller_id: str, username: str) -> dict[str, Any]:
        target = self._by_username(username)
        if target["user_id"] == caller_id:
            raise Conflict("you cannot follow yourself", code="cannot_follow_self")
        self._repo.follow(caller_id, target["user_id"], utc_now_iso())
        return self._follow_state(username, following=True)

    def unfollow(self, caller_id: str, username: str) -> dict[str, Any]:
        target = self._by_username(username)
        if target["user_id"] == caller_id:
            raise Conflict("you cannot follow yourself", code="cannot_follow_self")
        self._repo.unfollow(caller_id, target["user_id"])
        return self._follow_state(username, following=False)

    def _follow_state(self, username: str, *, following: bool) -> dict[str, Any]:
        profile = self._by_username(username)
        fresh = self._repo.get_profile(profile["user_id"]) or profile  # strongly consistent count
        return {"username": username, "following": following, "follower_count": int(fresh["follower_count"])}

    def _by_username(self, username: str) -> dict[str, Any]:
        profile = self._repo.get_profile_by_username(username)
        if profile is None:
            raise NotFound("no such user", code="user_not_found")
        return profile

    def _live(self, stream: dict[str, Any]) -> dict[str, Any]:
        stream_id = stream["stream_id"]
        return {"id": stream_id, "title": stream.get("title", ""), "status": stream["status"],
                "viewer_count": effective_viewer_count(stream), "started_at": stream.get("started_at"),
                "playback_url": playback_url(self._cdn, stream_id),
                "thumbnail_url": thumbnail_url(self._cdn, stream_id)}


def _public(profile: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": profile["user_id"], "username": profile["username"],
            "display_name": profile.get("display_name", ""), "bio": profile.get("bio", ""),
            "follower_count": int(profile.get("follower_count", 0)),
            "following_count": int(profile.get("following_count", 0)), "created_at": profile["created_at"]}


def _private(profile: dict[str, Any]) -> dict[str, Any]:
    return {**_public(profile), "email": profile.get("email", "")}
