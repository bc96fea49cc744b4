"""Timestamp normaliser: one monotonic clock per publisher connection, whatever the publisher's clock does.

Publishers' timestamps jump (clock resync, source switch), reset (encoder restart), wrap (RTMP's 32-bit
milliseconds after 49.7 days) and jitter backwards by a millisecond or two. The transcoder must see none
of that: a jump of N seconds would become N seconds of frozen picture in the live stream and the
recording. The rules, for every protocol:

- each track's DTS is strictly increasing on the output clock;
- a step of more than `jump_threshold_ms` ahead of the connection's clock (the newest output DTS of any
  track), or of more than `jitter_ms` back behind the track's own last DTS, is a discontinuity: the track
  is re-based so that its unit lands one frame after the clock, and the rest of its stream follows at its
  own pace; a smaller step back is rounding jitter, absorbed by the next rule;
- a track that starts late is placed where its timestamps say, relative to the tracks already running,
  so audio and video stay aligned; a wrap of the publisher's clock is just one more backward step;
- PTS keeps its offset from DTS (the composition time of B-frames).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from streamforge_media.media import AccessUnit, MediaKind

log = logging.getLogger(__name__)

DEFAULT_JUMP_THRESHOLD_MS = 3000
DEFAULT_JITTER_MS = 100
_DEFAULT_STEP_MS = 1


@dataclass
class _TrackClock:
    offset: int  # output = input + offset
    last_in: int
    last_out: int
    step: int = _DEFAULT_STEP_MS  # the track's last positive input step: where a re-based unit lands


@dataclass
class TimestampNormaliser:
    """Maps each unit's publisher timestamps onto the connection's monotonic clock (milliseconds).

    `normalise(unit)` returns the unit with new `dts_ms`/`pts_ms`; `discontinuities` counts the jumps and
    resets absorbed so far. The first unit of the connection lands at 0.
    """

    jump_threshold_ms: int = DEFAULT_JUMP_THRESHOLD_MS
    jitter_ms: int = DEFAULT_JITTER_MS
    discontinuities: int = 0
    _tracks: dict[MediaKind, _TrackClock] = field(default_factory=dict)
    _clock: int | None = None  # newest output DTS over all tracks
    _last_raw: int | None = None  # the newest input DTS seen on any track, and its offset
    _last_offset: int = 0

    def normalise(self, unit: AccessUnit) -> AccessUnit:
        raw = unit.dts_ms
        # A track's clock follows its kind: a new decoder configuration continues the same timeline.
        state = self._tracks.get(unit.kind)
        if state is None:
            # A new track (or a new configuration of one) starts on the clock of the tracks running.
            offset = -raw if self._last_raw is None else self._last_offset
            state = _TrackClock(offset, raw, raw + offset - 1)
            self._tracks[unit.kind] = state
            dts = raw + offset
            if self._clock is not None and abs(dts - self._clock) > self.jump_threshold_ms:
                dts = self._rebase(state, raw, self._clock + _DEFAULT_STEP_MS, "a new track's first unit")
        else:
            step = raw - state.last_in
            if 0 < step <= self.jump_threshold_ms:
                state.step = step
            dts = raw + state.offset
            assert self._clock is not None
            if dts > self._clock + self.jump_threshold_ms or dts < state.last_out - self.jitter_ms:
                dts = self._rebase(state, raw, max(self._clock, state.last_out) + state.step, "a jump")
        if dts <= state.last_out:  # small backward jitter: keep DTS strictly increasing
            dts = state.last_out + 1
        state.last_in, state.last_out = raw, dts
        self._clock = dts if self._clock is None else max(self._clock, dts)
        self._last_raw, self._last_offset = raw, state.offset
        pts = dts + (unit.pts_ms - unit.dts_ms)
        if dts == unit.dts_ms and pts == unit.pts_ms:
            return unit
        return replace(unit, dts_ms=dts, pts_ms=pts)

    def _rebase(self, state: _TrackClock, raw: int, target: int, what: str) -> int:
        self.discontinuities += 1
        log.info("timestamps: %s moved the publisher's clock by %+d ms; re-based as a discontinuity",
                 what, raw + state.offset - target)
        state.offset = target - raw
        return target


REANCHOR_S = 1.0


class MediaClock:
    """The wall clock at which a connection's media was captured, from its normalised DTS (ms).

    Anchored at the arrival of the first unit, it then advances with media time, so arrival jitter does not
    move it. When units arrive more than `REANCHOR_S` later than the mapping says (a stall the normaliser
    absorbed, an encoder's slow clock), it re-anchors forward; it never moves back. Transcoder runs read it
    once, at their first unit (`wall`), so times within one run stay consistent (EXT-X-PROGRAM-DATE-TIME,
    DASH Period@start). Times are epoch seconds.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._anchor: tuple[int, float] | None = None

    def observe(self, dts_ms: int) -> None:
        """A unit with this normalised DTS has just arrived."""
        arrived = self._now()
        if self._anchor is None or arrived - self.wall(dts_ms) > REANCHOR_S:
            self._anchor = (dts_ms, arrived)

    def wall(self, dts_ms: int) -> float:
        """Epoch seconds at which the unit with this DTS was captured (now, before any unit was seen)."""
        if self._anchor is None:
            return self._now()
        anchor_dts, anchor_wall = self._anchor
        return anchor_wall + (dts_ms - anchor_dts) / 1000
