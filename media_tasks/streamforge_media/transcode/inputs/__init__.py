"""Transcoder inputs: the container bytes one ffmpeg generation reads on its standard input.

An `InputWriter` turns the neutral tracks and access units into a container ffmpeg demuxes: a header
holding the tracks' decoder configurations, then one chunk per unit. `input_writer_for` takes the first
writer that can carry the tracks (FLV first, since it is what ffmpeg has read live the
longest; Matroska for HEVC, Opus and the rest). A source that already arrives as a whole container (MPEG-TS
over SRT) skips the units altogether: `passthrough_input` describes it, and its bytes go to ffmpeg as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from streamforge_media.media import AccessUnit, Track
from streamforge_media.transcode.inputs.flv import FlvInput
from streamforge_media.transcode.inputs.matroska import MatroskaInput
from streamforge_media.transcode.inputs.probe import LIVE_PROBE_OPTIONS, input_options

__all__ = [
    "LIVE_PROBE_OPTIONS",
    "FlvInput",
    "InputWriter",
    "MatroskaInput",
    "PassthroughInput",
    "input_writer_for",
    "passthrough_input",
]

# Containers a source may deliver whole and ffmpeg can demux from a pipe as it arrives.
PASSTHROUGH_CONTAINERS = frozenset({"mpegts", "matroska"})


class InputWriter(Protocol):
    """Container bytes for one transcoder generation, written to ffmpeg's stdin in call order."""

    input_options: dict[str, Any]
    """ffmpeg-python input kwargs: the demuxer (`f`) and a short live probe."""

    def header(self) -> bytes:
        """The container header, with every track's decoder configuration; written once, first."""
        ...

    def unit(self, unit: AccessUnit, dts_ms: int, pts_ms: int) -> bytes:
        """One access unit at the given generation-relative timestamps (ms, ≥ 0, pts ≥ dts)."""
        ...


_WRITERS = (FlvInput, MatroskaInput)  # in order of preference


def input_writer_for(video: Track | None, audio: Track | None) -> InputWriter:
    """The first writer that can carry these tracks (at least one of them); raises ValueError if none can."""
    for writer in _WRITERS:
        if writer.can_carry(video, audio):
            return writer(video, audio)
    raise ValueError(f"no transcoder input carries {video and video.describe()} + {audio and audio.describe()}")


@dataclass(frozen=True)
class PassthroughInput:
    """A container that arrives whole: ffmpeg reads the source's own bytes, so there is nothing to write
    but those bytes, unchanged (`chunk`), and no header of ours."""

    container: str
    input_options: dict[str, Any] = field(default_factory=dict)

    def header(self) -> bytes:
        return b""

    def chunk(self, data: bytes) -> bytes:
        """The bytes to write for `data` as received: `data` itself."""
        return data


def passthrough_input(container: str = "mpegts") -> PassthroughInput:
    """The input for a source delivering `container` (an ffmpeg demuxer name) whole; raises ValueError for a
    container that cannot be read live from a pipe."""
    if container not in PASSTHROUGH_CONTAINERS:
        raise ValueError(f"{container} cannot be passed through live")
    return PassthroughInput(container, input_options(container))
