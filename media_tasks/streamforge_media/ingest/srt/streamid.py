"""The SRT stream id of a publishing caller: which stream key it carries and whether it publishes.

SRT's access-control convention (the SRT specification draft, "SRT Access Control" / `#!::` keyed form):
`#!::r=live/<key>,m=publish`: comma-separated `k=v` pairs after `#!::`, where `r` names the resource and
`m` the mode (`request`, the default, `publish` or `bidirectional`). Encoders that only have a "stream id"
box (some hardware, Larix presets) send the bare key instead, which is taken as a publish.
"""

from __future__ import annotations

from dataclasses import dataclass

KEYED_PREFIX = "#!::"
RESOURCE_PREFIX = "live/"
MAX_STREAM_ID = 512  # SRTO_STREAMID's limit in libsrt


class StreamIdError(ValueError):
    """A stream id that names no key (`bad_mode` False) or asks for another mode than publish (`bad_mode` True)."""

    def __init__(self, message: str, *, bad_mode: bool = False) -> None:
        super().__init__(message)
        self.bad_mode = bad_mode


@dataclass(frozen=True)
class PublishRequest:
    """The stream key a caller publishes with (never logged)."""

    stream_key: str

    def __repr__(self) -> str:
        return "PublishRequest(stream_key=<redacted>)"


def parse_stream_id(stream_id: str) -> PublishRequest:
    """The publish request in `stream_id`; raises StreamIdError (no key, malformed, or not `m=publish`)."""
    if not stream_id or len(stream_id) > MAX_STREAM_ID:
        raise StreamIdError("no stream id, or one longer than 512 characters")
    if not stream_id.startswith(KEYED_PREFIX):
        if any(c in stream_id for c in ",=/# \t"):
            raise StreamIdError("a bare stream id must be the stream key alone")
        return PublishRequest(stream_id)
    pairs: dict[str, str] = {}
    for item in stream_id[len(KEYED_PREFIX):].split(","):
        name, sep, value = item.partition("=")
        if not sep or not name or name in pairs:
            raise StreamIdError("malformed keyed stream id (expected #!::k=v,k=v)")
        pairs[name] = value
    if pairs.get("m", "request") != "publish":
        raise StreamIdError("only m=publish is accepted here", bad_mode=True)
    resource = pairs.get("r", "")
    key = resource[len(RESOURCE_PREFIX):] if resource.startswith(RESOURCE_PREFIX) else resource
    if not key or "/" in key:
        raise StreamIdError("the resource must be r=live/<stream key>")
    return PublishRequest(key)
