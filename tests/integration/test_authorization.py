"""Authorization matrix through the local gateway (JWT authorizer + handlers + moto server).

Every mutating or owner-only route of ARCHITECTURE §3 against three callers: anonymous gets 401, another
signed-in user gets 403 or 404, the owner gets 2xx. The refused calls must leave the resource as it was.

Routes on the caller's own resources (`/v1/users/me`, follow/unfollow, create-stream) have no "other owner":
there, anonymous gets 401, a signed-in caller gets 2xx, and another user's call never changes the first user's
state.

`GET /v1/streams/{id}/sessions` is public in our API (past broadcasts and their VODs), so it is not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.http import Reply, call
from tests.support.platform import PlatformThread
from tests.support.users import SignedInUser, create_stream, sign_up_and_log_in

pytestmark = pytest.mark.integration


@dataclass
class World:
    api: str
    owner: SignedInUser
    other: SignedInUser
    channel: SignedInUser  # a third user, whom the others follow


@pytest.fixture(scope="module")
def world(api_platform: PlatformThread) -> World:
    api = api_platform.urls["api"]
    return World(api, sign_up_and_log_in(api, "own"), sign_up_and_log_in(api, "oth"), sign_up_and_log_in(api, "chn"))


@dataclass
class Target:
    """A fresh stream of the owner's with a spare key, so each case may change or delete it."""

    stream_id: str
    key_id: str


def new_target(world: World) -> Target:
    stream = create_stream(world.api, world.owner, "authz target")
    spare = call("POST", f"{world.api}/v1/streams/{stream['id']}/keys", {"name": "spare"}, token=world.owner.token)
    assert spare.status == 201, spare.raw
    return Target(stream["id"], spare.json["key_id"])


def stream_state(world: World, target: Target) -> dict[str, Any]:
    """Everything a refused call could have changed: the public stream and the owner's view of its keys."""
    stream = call("GET", f"{world.api}/v1/streams/{target.stream_id}")
    keys = call("GET", f"{world.api}/v1/streams/{target.stream_id}/keys", token=world.owner.token)
    assert stream.status == 200 and keys.status == 200, (stream.raw, keys.raw)
    return {"stream": stream.json, "keys": keys.json}


# -- owner-only stream routes ----------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerCase:
    method: str
    path: str  # formatted with id (the stream's) and key_id
    body: Any
    owner_status: int
    # What the owner's successful call must have done, checked against the API afterwards.
    effect: Callable[[World, Target, Reply], None] = field(default=lambda *_: None)


def _title_changed(world: World, target: Target, reply: Reply) -> None:
    assert reply.json["title"] == "renamed by owner"
    assert call("GET", f"{world.api}/v1/streams/{target.stream_id}").json["title"] == "renamed by owner"


def _stream_gone(world: World, target: Target, reply: Reply) -> None:
    assert call("GET", f"{world.api}/v1/streams/{target.stream_id}").status == 404


def _key_added(world: World, target: Target, reply: Reply) -> None:
    keys = call("GET", f"{world.api}/v1/streams/{target.stream_id}/keys", token=world.owner.token).json["items"]
    assert reply.json["key_id"] in {k["key_id"] for k in keys}


def _keys_listed(world: World, target: Target, reply: Reply) -> None:
    assert target.key_id in {k["key_id"] for k in reply.json["items"]}


def _key_revoked(world: World, target: Target, reply: Reply) -> None:
    keys = call("GET", f"{world.api}/v1/streams/{target.stream_id}/keys", token=world.owner.token).json["items"]
    assert target.key_id not in {k["key_id"] for k in keys}


def _analytics_shown(world: World, target: Target, reply: Reply) -> None:
    assert {"concurrent_viewers", "peak_viewers", "total_views", "watch_minutes", "ingest", "timeline"} <= set(
        reply.json)


OWNER_CASES = {
    "patch_stream": OwnerCase("PATCH", "/v1/streams/{id}", {"title": "renamed by owner"}, 200, _title_changed),
    "delete_stream": OwnerCase("DELETE", "/v1/streams/{id}", None, 204, _stream_gone),
    "create_key": OwnerCase("POST", "/v1/streams/{id}/keys", {"name": "backup"}, 201, _key_added),
    "list_keys": OwnerCase("GET", "/v1/streams/{id}/keys", None, 200, _keys_listed),
    "revoke_key": OwnerCase("DELETE", "/v1/streams/{id}/keys/{key_id}", None, 204, _key_revoked),
    "analytics": OwnerCase("GET", "/v1/streams/{id}/analytics", None, 200, _analytics_shown),
}


@pytest.mark.parametrize("name", OWNER_CASES)
def test_owner_only_route(world: World, name: str) -> None:
    case = OWNER_CASES[name]
    target = new_target(world)
    url = world.api + case.path.format(id=target.stream_id, key_id=target.key_id)
    before = stream_state(world, target)

    anonymous = call(case.method, url, case.body)
    # Refused by the JWT authorizer itself, in AWS's shape, before any function runs.
    assert (anonymous.status, anonymous.json) == (401, {"message": "Unauthorized"}), anonymous.raw

    other = call(case.method, url, case.body, token=world.other.token)
    assert other.status in (403, 404), other.raw
    assert set(other.json) == {"error"}

    assert stream_state(world, target) == before, "a refused call changed the stream or its keys"

    owner = call(case.method, url, case.body, token=world.owner.token)
    assert owner.status == case.owner_status, owner.raw
    case.effect(world, target, owner)


def test_another_users_token_cannot_reach_a_stream_through_the_id_of_its_own(world: World) -> None:
    """The control for the matrix: the other user is not refused everywhere, only on streams it does not own."""
    mine = create_stream(world.api, world.other, "the other user's own")
    reply = call("PATCH", f"{world.api}/v1/streams/{mine['id']}", {"title": "mine to change"},
                 token=world.other.token)
    assert reply.status == 200 and reply.json["title"] == "mine to change"
    assert call("PATCH", f"{world.api}/v1/streams/{mine['id']}", {"title": "not yours"},
                token=world.owner.token).status in (403, 404)


# -- routes on the caller's own resources -----------------------------------------------------------


def me(world: World, user: SignedInUser) -> dict[str, Any]:
    reply = call("GET", f"{world.api}/v1/users/me", token=user.token)
    assert reply.status == 200, reply.raw
    return dict(reply.json)


def channel(world: World) -> dict[str, Any]:
    reply = call("GET", f"{world.api}/v1/users/{world.channel.username}")
    assert reply.status == 200, reply.raw
    return dict(reply.json)


@dataclass(frozen=True)
class SelfCase:
    method: str
    path: str  # formatted with channel
    body: Any
    status: int
    # The owner's state that neither the anonymous call nor the other user's call may change.
    state: Callable[[World], Any]
    # What the signed-in caller's own call must have done.
    effect: Callable[[World, Reply], None] = field(default=lambda *_: None)


def owned_streams(world: World) -> list[str]:
    owner_id = me(world, world.owner)["user_id"]
    reply = call("GET", f"{world.api}/v1/streams?owner={owner_id}&limit=100")
    assert reply.status == 200, reply.raw
    return sorted(s["id"] for s in reply.json["items"])


def _stream_listed(world: World, reply: Reply) -> None:
    assert reply.json["id"] in owned_streams(world)


def _profile_updated(world: World, reply: Reply) -> None:
    assert reply.json["display_name"] == "Owner Display"
    assert me(world, world.owner)["bio"] == "owner's bio"


def _following(world: World, reply: Reply) -> None:
    assert reply.json["following"] is True
    assert me(world, world.owner)["following_count"] >= 1


def _not_following(world: World, reply: Reply) -> None:
    assert reply.json["following"] is False


SELF_CASES = {
    "get_me": SelfCase("GET", "/v1/users/me", None, 200, lambda w: me(w, w.owner)),
    "patch_me": SelfCase("PATCH", "/v1/users/me", {"display_name": "Owner Display", "bio": "owner's bio"}, 200,
                         lambda w: me(w, w.owner), _profile_updated),
    "follow": SelfCase("PUT", "/v1/users/{channel}/follow", None, 200,
                       lambda w: me(w, w.owner)["following_count"], _following),
    "unfollow": SelfCase("DELETE", "/v1/users/{channel}/follow", None, 200,
                         lambda w: me(w, w.owner)["following_count"], _not_following),
    "create_stream": SelfCase("POST", "/v1/streams", {"title": "made by its owner"}, 201, owned_streams,
                              lambda w, reply: _stream_listed(w, reply)),
}


@pytest.mark.parametrize("name", SELF_CASES)
def test_own_resource_route(world: World, name: str) -> None:
    case = SELF_CASES[name]
    url = world.api + case.path.format(channel=world.channel.username)
    followers_before = channel(world)["follower_count"]
    before = case.state(world)

    anonymous = call(case.method, url, case.body)
    # Refused by the JWT authorizer itself, in AWS's shape, before any function runs.
    assert (anonymous.status, anonymous.json) == (401, {"message": "Unauthorized"}), anonymous.raw
    assert case.state(world) == before
    assert channel(world)["follower_count"] == followers_before, "an anonymous call changed a follower count"

    # Another user acting on its own resources leaves the owner's as they were.
    other = call(case.method, url, case.body, token=world.other.token)
    assert 200 <= other.status < 300, other.raw
    assert case.state(world) == before, "another user's call changed the owner's state"

    owner = call(case.method, url, case.body, token=world.owner.token)
    assert owner.status == case.status, owner.raw
    case.effect(world, owner)
