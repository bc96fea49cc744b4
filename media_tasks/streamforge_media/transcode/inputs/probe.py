"""The probe every transcoder input shares: a live source must start decoding within a fraction of a second."""

from __future__ import annotations

from typing import Any

# ffmpeg-python input kwargs: read at most 64 KiB / 0.5 s before choosing streams (the decoder
# configurations come first, so that is enough). Deliberately no `fflags nobuffer`: with it, ffmpeg
# drops the packets it read while probing (libavformat buffers them only without that flag), so each
# generation would lose its first keyframe and the next ~1 s of media (measured with ffmpeg 5.1: 25 of
# 50 frames decoded, with reference errors), while saving at most this bounded probe's delay, once.
LIVE_PROBE_OPTIONS: dict[str, Any] = {"probesize": 65536, "analyzeduration": 500000}


def input_options(container: str) -> dict[str, Any]:
    """ffmpeg-python input kwargs for reading `container` (an ffmpeg demuxer name) live from a pipe."""
    return {"f": container, **LIVE_PROBE_OPTIONS}
