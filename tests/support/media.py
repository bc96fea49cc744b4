"""Publishers and HLS checks for the e2e tier: real ffmpeg and GStreamer, a real m3u8 parser, ffprobe."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urljoin

import m3u8

from tests.support.http import call

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll until `condition` returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def ffmpeg_publisher(url: str, seconds: float, *, size: str = "1280x720", rate: int = 30) -> subprocess.Popen[bytes]:
    return subprocess.Popen([
        "ffmpeg", "-v", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(2 * rate), "-b:v", "1500k", "-c:a", "aac", "-b:a", "96k", "-f", "flv", url,
    ], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def gstreamer_publisher(url: str, seconds: float, *, width: int = 640, height: int = 360,
                        rate: int = 30) -> subprocess.Popen[bytes]:
    return subprocess.Popen([
        "gst-launch-1.0", "-q",
        "videotestsrc", "is-live=true", f"num-buffers={int(seconds * rate)}", "!",
        f"video/x-raw,width={width},height={height},framerate={rate}/1", "!",
        "x264enc", "tune=zerolatency", "speed-preset=ultrafast", f"key-int-max={2 * rate}", "bitrate=800", "!",
        "h264parse", "!", "flvmux", "name=mux", "streamable=true", "!", "rtmp2sink", f"location={url}",
        "audiotestsrc", "is-live=true", f"num-buffers={int(seconds * 48000 / 1024) + 1}", "!",
        "audio/x-raw,rate=48000", "!", "avenc_aac", "!", "aacparse", "!", "mux.",
    ], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


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
    """The master, and a first segment of every variant, can be fetched."""
    variants = variant_urls(master_url)
    if not variants:
        return False
    for media_url in variants.values():
        segs = segments(media_url)
        if not segs or call("GET", segs[0][1], timeout=5).status != 200:
            return False
    return True


def ffprobe(url: str) -> dict[str, Any]:
    result = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", url],
                            capture_output=True, text=True, timeout=60, check=True)
    probed: dict[str, Any] = json.loads(result.stdout)
    return probed
