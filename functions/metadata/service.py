"""Stream rules: ownership, keys, listing, updates and deletion. No HTTP and no boto3 here."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from streamforge import keys
from streamforge.errors import Conflict, Forbidden, NotFound
from streamforge.events import EventPublisher, StreamUpdated, utc_now_iso
from streamforge.observability import logger
from streamforge.pagination import decode_cursor, encode_cursor
from streamforge.streams import EVENT_SEQ, SessionStatus, StreamStatus, effective_viewer_count, status_of
from streamforge.urls import dash_url, dvr_url, ll_playback_url, playback_url, thumbnail_url, vod_url

from metadata.repository import LIST_KEYS, StreamNotFound, StreamRepository

MAX_KEYS_PER_STREAM = 10
# Fields of the stream item that subscribers see; a change to any of them emits `Stream Updated`.
PUBLIC_FIELDS = ("title", "description", "tags", "record", "reconnect_grace_s", "dvr_window_s")


def new_stream_id() -> str:
    # 10 random bytes are exactly 16 base32 characters.
    return "st_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


@dataclass(frozen=True)
class Urls:
    cdn_base_url: str
    rtmp_ingest_url: str
    whip_ingest_url: str = ""  # `.../whip`; the stream id is appended (RFC 9725 endpoint per stream)
    srt_ingest_url: str = ""  # `srt://HOST:9000`; the key travels in the caller's streamid, never in a URL

    def ingest(self, stream_id: str) -> dict[str, str]:
        """The stream's ingest URLs (ARCHITECTURE §6b); none of them carries a key."""
        return {"rtmp_url": self.rtmp_ingest_url, "whip_url": f"{self.whip_ingest_url.rstrip('/')}/{stream_id}",
                "srt_url": self.srt_ingest_url}


class StreamService:
    def __init__(self, repo: StreamRepository, publisher: EventPublisher, urls: Urls) -> None:
        self._repo = repo
        self._publisher = publisher
        self._urls = urls

    # -- streams ---------------------------------------------------------------------------------

    def create(self, *, owner_id: str, owner_username: str, title: str, description: str, tags: list[str],
               record: bool, srt_passphrase: str | None = None, dvr_window_s: int | None = None) -> dict[str, Any]:
        now = utc_now_iso()
        stream_id = new_stream_id()
        stream_key = keys.generate_stream_key()
        key_item = self._key_item(stream_id, stream_key, "default", now)
        self._repo.create({
            "stream_id": stream_id, "owner_id": owner_id, "owner_username": owner_username, "title": title,
            "description": description, "tags": tags, "record": record, "status": StreamStatus.OFFLINE,
            "created_at": now, "updated_at": now, EVENT_SEQ: 0, "renditions": [],
            **({"srt_passphrase": srt_passphrase} if srt_passphrase else {}),
            **({"dvr_window_s": dvr_window_s} if dvr_window_s is not None else {}),
        }, key_item)
        logger.info("stream created", stream_id=stream_id, key_id=key_item["key_id"])
        return {
            "id": stream_id, "title": title, "status": StreamStatus.OFFLINE,
            "ingest": {**self._urls.ingest(stream_id), "stream_key": stream_key, "key_id": key_item["key_id"],
                       "srt_encrypted": bool(srt_passphrase)},
            "playback_url": playback_url(self._urls.cdn_base_url, stream_id),
        }

    def exists(self, stream_id: str) -> bool:
        """Whether the stream exists and is not deleted."""
        return self._repo.get(stream_id) is not None

    def get(self, stream_id: str) -> dict[str, Any]:
        stream = self._repo.get(stream_id)
        if stream is None:
            raise NotFound("no such stream", code="stream_not_found")
        return self.detail(stream)

    def list_streams(self, *, status: str | None, owner_id: str | None, limit: int,
             cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        index = "by_owner" if owner_id else "by_status" if status else "scan"
        # The cursor is bound to the exact query, so it cannot be replayed against another filter.
        scope = f"{index}|{status or ''}|{owner_id or ''}"
        start = decode_cursor(cursor, scope, LIST_KEYS[index]) if cursor else None
        items, last = self._repo.list_streams(index=index, status=status, owner_id=owner_id, limit=limit,
                                              start_key=start)
        next_cursor = encode_cursor(last, scope) if last else None
        return [self.summary(i) for i in items], next_cursor

    def update(self, stream_id: str, caller_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        stream = self._owned(stream_id, caller_id)
        changed = {k: v for k, v in changes.items() if stream.get(k) != v}
        if not changed:
            return self.detail(stream)
        try:
            updated = self._repo.update(stream_id, {**changed, "updated_at": utc_now_iso()})
        except StreamNotFound as exc:
            raise NotFound("no such stream", code="stream_not_found") from exc
        self._emit_updated(updated, {k: v for k, v in changed.items() if k in PUBLIC_FIELDS})
        return self.detail(updated)

    def delete(self, stream_id: str, caller_id: str) -> None:
        """Revoke every key first: the media task polls its key and drops the publisher, then finalizes."""
        stream = self._owned(stream_id, caller_id)
        for key in self._repo.list_keys(stream_id):
            self._repo.delete_key(key["key_hash"])
        try:
            self._repo.mark_deleted(stream_id, utc_now_iso())
        except StreamNotFound as exc:
            raise NotFound("no such stream", code="stream_not_found") from exc
        self._emit_updated(stream, {"deleted": True})

    # -- keys ------------------------------------------------------------------------------------

    def create_key(self, stream_id: str, caller_id: str, name: str) -> dict[str, Any]:
        self._owned(stream_id, caller_id)
        if len(self._repo.list_keys(stream_id)) >= MAX_KEYS_PER_STREAM:
            raise Conflict(f"a stream has at most {MAX_KEYS_PER_STREAM} keys; revoke one first",
                           code="too_many_keys")
        stream_key = keys.generate_stream_key()
        item = self._key_item(stream_id, stream_key, name, utc_now_iso())
        self._repo.put_key(item)
        logger.info("stream key created", stream_id=stream_id, key_id=item["key_id"])
        return {"key_id": item["key_id"], "stream_key": stream_key, "name": name, "created_at": item["created_at"]}

    def list_keys(self, stream_id: str, caller_id: str) -> list[dict[str, Any]]:
        self._owned(stream_id, caller_id)
        found = sorted(self._repo.list_keys(stream_id), key=lambda k: k["created_at"])
        # Never the key, never its hash.
        return [{"key_id": k["key_id"], "name": k.get("name", ""), "created_at": k["created_at"],
                 "last_used_at": k.get("last_used_at")} for k in found]

    def revoke_key(self, stream_id: str, caller_id: str, key_id: str) -> None:
        self._owned(stream_id, caller_id)
        match = next((k for k in self._repo.list_keys(stream_id) if k["key_id"] == key_id), None)
        if match is None:
            raise NotFound("no such key of this stream", code="key_not_found")
        self._repo.delete_key(match["key_hash"])
        logger.info("stream key revoked", stream_id=stream_id, key_id=key_id)

    # -- sessions --------------------------------------------------------------------------------

    def list_sessions(self, stream_id: str) -> list[dict[str, Any]]:
        if self._repo.get(stream_id) is None:
            raise NotFound("no such stream", code="stream_not_found")
        sessions = []
        for s in self._repo.list_sessions(stream_id):
            ended = s.get("status") == SessionStatus.ENDED
            url = s.get("vod_url") or (vod_url(self._urls.cdn_base_url, stream_id, s["session_id"]) if ended else None)
            sessions.append({"session_id": s["session_id"], "status": s.get("status"),
                             "started_at": s.get("started_at"), "ended_at": s.get("ended_at"),
                             "duration_s": s.get("duration_s"), "vod_url": url,
                             "vod_dash_url": s.get("vod_dash_url")})
        return sessions

    # -- helpers ---------------------------------------------------------------------------------

    def summary(self, stream: dict[str, Any]) -> dict[str, Any]:
        stream_id = stream["stream_id"]
        status = status_of(stream)
        return {
            "id": stream_id, "owner": stream["owner_id"], "owner_username": stream.get("owner_username", ""),
            "title": stream.get("title", ""), "tags": stream.get("tags", []),
            "status": status,
            "viewer_count": effective_viewer_count(stream),
            "started_at": stream.get("started_at") if status.on_air else None,
            "created_at": stream["created_at"],
            "playback_url": playback_url(self._urls.cdn_base_url, stream_id),
            "dvr_url": dvr_url(self._urls.cdn_base_url, stream_id),
            "dash_url": dash_url(self._urls.cdn_base_url, stream_id),
            "thumbnail_url": thumbnail_url(self._urls.cdn_base_url, stream_id),
        }

    def detail(self, stream: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.summary(stream),
            "description": stream.get("description", ""), "record": bool(stream.get("record", True)),
            "updated_at": stream.get("updated_at", stream["created_at"]),
            "current_session_id": stream.get("current_session_id"),
            "reconnect_grace_s": stream.get("reconnect_grace_s"),
            "dvr_window_s": stream.get("dvr_window_s"),
            "ll_playback_url": ll_playback_url(self._urls.cdn_base_url, stream["stream_id"]),
            "renditions": stream.get("renditions", []),
            "ingest_health": stream.get("ingest_health"),
            # The passphrase itself is never returned: only whether SRT callers need one.
            "ingest": {**self._urls.ingest(stream["stream_id"]), "srt_encrypted": bool(stream.get("srt_passphrase"))},
        }

    def _owned(self, stream_id: str, caller_id: str) -> dict[str, Any]:
        stream = self._repo.get(stream_id)
        if stream is None:
            raise NotFound("no such stream", code="stream_not_found")
        if stream["owner_id"] != caller_id:
            raise Forbidden("only the stream's owner may do this", code="not_owner")
        return stream

    def _emit_updated(self, stream: dict[str, Any], changes: dict[str, Any]) -> None:
        if not changes:
            return
        try:
            self._publisher.publish(StreamUpdated(stream_id=stream["stream_id"],
                                                  session_id=stream.get("current_session_id"), changes=changes))
        except Exception:
            # The write has happened; failing the request would only make the client retry it.
            logger.exception("could not publish Stream Updated", stream_id=stream["stream_id"])

    @staticmethod
    def _key_item(stream_id: str, stream_key: str, name: str, now: str) -> dict[str, Any]:
        return {"key_hash": keys.hash_stream_key(stream_key), "key_id": keys.generate_key_id(),
                "stream_id": stream_id, "name": name, "created_at": now}
