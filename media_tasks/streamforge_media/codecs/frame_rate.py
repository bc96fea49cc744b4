"""A video track's frame rate from the timestamps of its units, for protocols that do not declare one.

Millisecond timestamps are the frame times rounded or truncated: 30 fps arrives as steps of 33/34/33 ms,
60 fps as 16/17/17. A least-squares line through the timestamps averages that jitter out, and the
result is snapped to the common rate it is near, since encoders run at those.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

# Rates encoders and cameras use, in frames per second (the NTSC ones as their usual rounded names).
COMMON_RATES = (5.0, 10.0, 12.0, 15.0, 20.0, 23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0,
                90.0, 100.0, 119.88, 120.0)
_SNAP_TOLERANCE = 0.02  # relative
_ROUNDING_ERROR_MS = 0.5  # a rounded (or truncated, less a constant) timestamp is off by at most this


def _twin(rate: float) -> float | None:
    """The integer rate an NTSC rate (24000/1001 etc.) is 0.1 % below."""
    whole = round(rate)
    return float(whole) if whole != rate and float(whole) in COMMON_RATES else None


def estimate_frame_rate(dts_ms: Sequence[int]) -> float:
    """Frames per second from the DTS (ms) of consecutive video units; 0.0 with fewer than 2 distinct DTS.

    Duplicate timestamps are ignored, and a gap of about k frame intervals (a dropped frame) counts as k
    frames. The result is the nearest of `COMMON_RATES` when within 2 % of it, else the measured rate
    rounded to 2 decimals. An NTSC rate and its integer twin (29.97 and 30) are 0.1 % apart; until the
    timestamps span enough frames to tell them apart (some 50 at 30 fps), the integer rate is answered.
    """
    times = sorted(set(dts_ms))
    if len(times) < 2:
        return 0.0
    gaps = [b - a for a, b in pairwise(times)]
    typical = sorted(gaps)[len(gaps) // 2]
    frames = [0]
    for gap in gaps:
        frames.append(frames[-1] + max(1, round(gap / typical)))
    # Least-squares slope: milliseconds per frame.
    n = len(times)
    mean_f = sum(frames) / n
    mean_t = sum(times) / n
    sxx = sum((f - mean_f) ** 2 for f in frames)
    slope = sum((f - mean_f) * (t - mean_t) for f, t in zip(frames, times, strict=True)) / sxx
    measured = 1000.0 / slope
    nearest = min(COMMON_RATES, key=lambda rate: abs(measured - rate) / rate)
    if abs(measured - nearest) / nearest > _SNAP_TOLERANCE:
        return round(measured, 2)
    twin = _twin(nearest)
    if twin is not None:
        # The worst slope error rounding can cause; within it, the timestamps cannot tell the twins apart.
        uncertainty = _ROUNDING_ERROR_MS * sum(abs(f - mean_f) for f in frames) / sxx
        if abs(1000.0 / twin - slope) <= uncertainty:
            return twin
    return nearest
