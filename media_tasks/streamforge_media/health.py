"""Ingest health figures measured from the publisher's tags (bitrate, fps, keyframe interval)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamforge_media import flv


@dataclass
class IngestStats:
    """Accumulates over a reporting window; `snapshot()` reads and restarts the window."""

    clock: Callable[[], float] = time.monotonic
    width: int = 0
    height: int = 0
    _bytes: int = 0
    _frames: int = 0
    _keyframe_ts: list[int] = field(default_factory=list)
    _window_start: float = 0.0

    def __post_init__(self) -> None:
        self._window_start = self.clock()

    def on_media(self, type_id: int, timestamp: int, payload: bytes) -> None:
        self._bytes += len(payload)
        if type_id == flv.VIDEO_TAG and not flv.is_avc_sequence_header(payload):
            self._frames += 1
            if flv.is_video_keyframe(payload):
                self._keyframe_ts.append(timestamp)

    def snapshot(self) -> dict[str, float | int]:
        now = self.clock()
        elapsed = max(now - self._window_start, 1e-6)
        gaps = [b - a for a, b in zip(self._keyframe_ts, self._keyframe_ts[1:], strict=False) if b > a]
        figures: dict[str, float | int] = {
            "bitrate_kbps": round(self._bytes * 8 / elapsed / 1000, 1),
            "fps": round(self._frames / elapsed, 2),
            "width": self.width,
            "height": self.height,
            "keyframe_interval_s": round(sum(gaps) / len(gaps) / 1000, 2) if gaps else 0.0,
        }
        self._bytes = 0
        self._frames = 0
        self._keyframe_ts = self._keyframe_ts[-1:]
        self._window_start = now
        return figures
