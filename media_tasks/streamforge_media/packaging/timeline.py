"""The packaging seam's data: encoded segments in, one timeline of a session's segments out.

The transcoder hands each finished segment over as an `EncodedSegment` (format-agnostic: a file, its
media times, and for CMAF its init segment). The publisher numbers it, uploads it and records it in the
session's `Timeline`; every packager (HLS, DASH) renders its manifests from that one timeline, so all
manifests name the same segment objects, and only ones already stored (`RenditionTimeline.published`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamforge import media_layout

from streamforge_media.ladder import Rendition
from streamforge_media.segment_format import SegmentFormat


@dataclass(frozen=True)
class EncodedSegment:
    """One finished segment of one rendition, as a transcoder run wrote it.

    `start` and `duration` are in `timescale` units per second, `start` counted from the run's media time 0
    (for CMAF the segment's `tfdt`); `origin_s` is the wall clock (epoch seconds) at the run's media time 0,
    so the segment's first frame was captured at `wall_clock_s`. `init` is the run's init segment for this
    rendition (CMAF), None for segments that decode alone.
    """

    rendition: str
    path: Path
    start: int
    duration: int
    timescale: int
    origin_s: float
    init: Path | None = None

    @property
    def duration_s(self) -> float:
        return self.duration / self.timescale

    @property
    def wall_clock_s(self) -> float:
        return self.origin_s + self.start / self.timescale


@dataclass
class Segment:
    """A segment of the session: `name` is its object's name in the rendition's directory."""

    seq: int
    name: str
    generation: int
    init: str | None
    start: int
    duration: int
    timescale: int
    wall_clock_s: float
    discontinuity: bool
    """The first of its rendition after a new generation: players must be told (EXT-X-DISCONTINUITY)."""
    uploaded: bool = False

    @property
    def duration_s(self) -> float:
        return self.duration / self.timescale


@dataclass
class RenditionTimeline:
    rendition: Rendition
    segments: list[Segment] = field(default_factory=list)
    retired: bool = False
    """No longer in the ladder: its live playlists are ended."""

    def published(self) -> list[Segment]:
        """The longest prefix of stored segments: all that any manifest may name."""
        for index, segment in enumerate(self.segments):
            if not segment.uploaded:
                return self.segments[:index]
        return self.segments


@dataclass
class GenerationInfo:
    """One transcoder generation of the session: a DASH Period, an HLS discontinuity."""

    index: int
    renditions: tuple[Rendition, ...]
    fps: float
    has_audio: bool
    origin_s: float | None = None
    """Wall clock at the generation's media time 0, known from its first segment."""


@dataclass
class Timeline:
    """Everything a packager renders from: the session's renditions, generations and segments."""

    stream_id: str
    session_id: str
    fmt: SegmentFormat
    renditions: dict[str, RenditionTimeline] = field(default_factory=dict)
    generations: list[GenerationInfo] = field(default_factory=list)
    ladder: tuple[Rendition, ...] = ()
    fps: float = 0.0
    has_audio: bool = False
    ended: bool = False

    def current(self) -> list[RenditionTimeline]:
        """The renditions of the ladder now, in ladder order."""
        return [self.renditions[r.name] for r in self.ladder]

    def segment_key(self, rendition: str, name: str) -> str:
        return media_layout.object_key(self.stream_id, rendition, name)

    @property
    def availability_start_s(self) -> float | None:
        """The wall clock of the session's first generation's media time 0: where the DASH presentation starts."""
        origins = [g.origin_s for g in self.generations if g.origin_s is not None]
        return min(origins) if origins else None
