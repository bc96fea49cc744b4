"""HLS checks for the platform tiers: a real m3u8 parser, ffprobe, and the media task's ffmpeg processes."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

import m3u8
from streamforge_media.segment_format import DEFAULT, segment_format

from tests.support.http import call

T = TypeVar("T")


def fetch_playlist(url: str) -> m3u8.M3U8 | None:
    reply = call("GET", url, timeout=5)
    if reply.status != 200:
        return None
    return m3u8.loads(reply.raw.decode(), uri=url)


def variant_urls(master_url: str) -> dict[int, str]:
    """Height -> absolute media playlist URL."""
    master = fetch_playlist(master_url)
    if master is None:
        return {}
    return {p.stream_info.resolution[1]: urljoin(master_url, p.uri) for p in master.playlists}


def segments(media_url: str) -> list[tuple[float, str]]:
    playlist = fetch_playlist(media_url)
    if playlist is None:
        return []
    return [(float(s.duration), urljoin(media_url, s.uri)) for s in playlist.segments]


def playable(master_url: str) -> bool:
    """The master, and a first segment of every variant and of the audio rendition (CMAF), can be fetched."""
    variants = variant_urls(master_url)
    if not variants:
        return False
    audio = audio_rendition_url(master_url)
    for media_url in [*variants.values(), *([audio] if audio else [])]:
        segs = segments(media_url)
        if not segs or call("GET", segs[0][1], timeout=5).status != 200:
            return False
    return True


def ffprobe(url: str) -> dict[str, Any]:
    result = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", url],
                            capture_output=True, text=True, timeout=60, check=True)
    probed: dict[str, Any] = json.loads(result.stdout)
    return probed


SEGMENT_FORMAT = segment_format(os.environ.get("STREAMFORGE_SEGMENT_FORMAT") or DEFAULT.name)
"""The segment format of the platform the e2e tests start: the media task reads the same variable."""


def decodable_segment(media_url: str, index: int, directory: Path) -> Path:
    """The `index`-th segment of a media playlist as a file ffmpeg can decode alone: the segment, after its
    init segment (EXT-X-MAP, RFC 8216bis §4.4.4.5) when it has one."""
    playlist = fetch_playlist(media_url)
    assert playlist is not None and playlist.segments, f"no segment at {media_url}"
    segment = playlist.segments[index]
    body = b""
    if segment.init_section is not None:
        init = call("GET", urljoin(media_url, segment.init_section.uri), timeout=10)
        assert init.status == 200, init.status
        body += init.raw
    reply = call("GET", urljoin(media_url, segment.uri), timeout=10)
    assert reply.status == 200, reply.status
    path = directory / f"{abs(hash((media_url, index)))}{SEGMENT_FORMAT.extension}"
    path.write_bytes(body + reply.raw)
    return path


def audio_rendition_url(master_url: str) -> str | None:
    """The media playlist of the master's audio rendition (EXT-X-MEDIA TYPE=AUDIO), if it has one."""
    master = fetch_playlist(master_url)
    if master is None:
        return None
    audio = [m for m in master.media if m.type == "AUDIO" and m.uri]
    return urljoin(master_url, audio[0].uri) if audio else None


def ffmpeg_commands_under(parent_pid: int) -> list[list[str]]:
    """The command lines of the ffmpeg processes whose parent is `parent_pid` (the media task's transcoders)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = [a.decode() for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if argv and Path(argv[0]).name == "ffmpeg" and int(stat.rsplit(")", 1)[1].split()[1]) == parent_pid:
            found.append(argv)
    return found


def media_task_pid() -> int:
    """The media task of a platform this process started: its child running `python -m streamforge_media`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"streamforge_media" in argv:
            return int(entry.name)
    raise LookupError("no media task process under this one")


def aac_encoders(argv: list[str]) -> int:
    """How many outputs of an ffmpeg command encode AAC (`-c:a aac`, `-acodec aac`)."""
    return sum(1 for flag, value in itertools.pairwise(argv) if flag in ("-c:a", "-acodec") and value == "aac")
