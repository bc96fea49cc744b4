"""Ingest health figures measured from a publisher's access units (bitrate, fps, keyframe interval, codec)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamforge.events import IngestHealth

from streamforge_media.media import AccessUnit, MediaKind


@dataclass
class IngestStats:
    """Accumulates over a reporting window; `snapshot()` reads and restarts the window.

    Bitrate counts the payload of every unit (kb/s), fps the video units per second of wall time, and the
    keyframe interval is the mean DTS gap between video keyframes (s). Size and codec are the newest video
    track's (0 and "" for an audio-only publisher).
    """

    clock: Callable[[], float] = time.monotonic
    width: int = 0
    height: int = 0
    video_codec: str = ""
    audio_codec: str = ""
    _bytes: int = 0
    _frames: int = 0
    _keyframe_ts: list[int] = field(default_factory=list)
    _window_start: float = 0.0

    def __post_init__(self) -> None:
        self._window_start = self.clock()

    def on_unit(self, unit: AccessUnit) -> None:
        self._bytes += len(unit.data)
        track = unit.track
        if unit.kind is MediaKind.VIDEO:
            self._frames += 1
            self.width, self.height, self.video_codec = track.width, track.height, track.codec
            if unit.keyframe:
                self._keyframe_ts.append(unit.dts_ms)
        else:
            self.audio_codec = track.codec

    def snapshot(self, stream_id: str, session_id: str) -> IngestHealth:
        """The window's figures as the stream's `Ingest Health` event."""
        now = self.clock()
        elapsed = max(now - self._window_start, 1e-6)
        gaps = [b - a for a, b in zip(self._keyframe_ts, self._keyframe_ts[1:], strict=False) if b > a]
        figures = IngestHealth(
            stream_id=stream_id, session_id=session_id,
            bitrate_kbps=round(self._bytes * 8 / elapsed / 1000, 1),
            fps=round(self._frames / elapsed, 2),
            width=self.width,
            height=self.height,
            keyframe_interval_s=round(sum(gaps) / len(gaps) / 1000, 2) if gaps else 0.0,
            video_codec=self.video_codec,
            audio_codec=self.audio_codec,
        )
        self._bytes = 0
        self._frames = 0
        self._keyframe_ts = self._keyframe_ts[-1:]
        self._window_start = now
        return figures
