"""Low-Latency HLS (RFC 8216bis §4.4.3.7-8, §4.4.4.9, §4.4.5.2, §6.2.5.2): parts held in memory, playlists with
blocking reload.

The transcoder writes each rendition a second time as fragmented MP4 to a pipe, one movie fragment (`moof` +
`mdat`) every ~`part_target_s`: `FragmentCutter` cuts that byte stream into the CMAF header and the fragments,
and each fragment becomes one `Part`. `LowLatencyRendition` groups parts into segments (a segment starts at an
independent part once the open one lasts about `segment_s`), keeps the last few in memory and wakes the
requests waiting for them. `render_playlist` writes the LL media playlist; `BlockingRequest` is the
`_HLS_msn`/`_HLS_part` query of §6.2.5.2 with its 400 rule. Full segments still reach S3 through the
ordinary path (the publisher): nothing here is stored.

Part and segment names are `p{n}.m4s` (n counts every part of the rendition, so a PRELOAD-HINT's URI is right
whichever segment the part ends up in), `s{msn}.m4s` (a completed segment: its parts concatenated) and
`init{generation}.mp4`.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from streamforge_media import isobmff

PART_HOLD_BACK_PARTS = 3
"""PART-HOLD-BACK in part targets: RFC 8216bis §4.4.3.8 asks at least 3 (2 is the minimum allowed)."""
BLOCK_TARGET_DURATIONS = 3
"""A blocking request gives up (503) after this many target durations (§6.2.5.2: "three times the Target
Duration")."""
PARTED_SEGMENTS = 3
"""Segments of the playlist's tail listed with their parts: §4.4.4.9 asks parts to be removed once they are
more than three target durations from the end."""
PLAYLIST_SEGMENTS = 6
"""Segments kept in memory and listed in the LL playlist."""
LL_PLAYLIST_VERSION = 9
"""EXT-X-VERSION: LL tags with EXT-X-MAP in fMP4 (RFC 8216bis §8: version 9 covers EXT-X-SKIP and parts)."""
_NON_SYNC = 0x00010000  # sample_is_non_sync_sample in sample flags (ISO/IEC 14496-12 §8.8.3.1)
_TFHD_DEFAULT_FLAGS = 0x20
_TRUN_FIRST_FLAGS = 0x004


class BadRequest(ValueError):
    """A malformed or impossible blocking request: answer 400 (§6.2.5.2)."""


# -- cutting the fragmented MP4 stream ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fragment:
    """One movie fragment (`moof` + `mdat`) of a one-track fMP4 stream: its bytes, its first sample's decode
    time (`tfdt`) and its duration, both in the track's timescale, and whether it starts with a sync sample."""

    data: bytes
    start: int
    duration: int
    timescale: int
    independent: bool


def _first_sample_sync(moof: bytes) -> bool:
    """Whether the fragment's first sample is a sync sample (trun first_sample_flags, else tfhd defaults)."""
    flags: int | None = None
    for traf, traf_end in isobmff._find(moof, 0, len(moof), (b"moof", b"traf")):
        for body, _ in isobmff._find(moof, traf, traf_end, (b"trun",)):
            run_flags = int.from_bytes(moof[body + 1:body + 4], "big")
            if run_flags & _TRUN_FIRST_FLAGS:
                flags = struct.unpack_from(">I", moof, body + 8 + (4 if run_flags & 0x001 else 0))[0]
            break
        if flags is None:
            for body, _ in isobmff._find(moof, traf, traf_end, (b"tfhd",)):
                tfhd_flags = int.from_bytes(moof[body + 1:body + 4], "big")
                if tfhd_flags & _TFHD_DEFAULT_FLAGS:
                    offset = body + 8 + sum(size for bit, size in ((0x01, 8), (0x02, 4), (0x08, 4), (0x10, 4))
                                            if tfhd_flags & bit)
                    flags = struct.unpack_from(">I", moof, offset)[0]
        break
    return flags is None or not flags & _NON_SYNC


class FragmentCutter:
    """Cuts a fragmented MP4 byte stream (ISO/IEC 14496-12 §8.8) as it arrives.

    `feed(data)` returns the fragments completed by `data`; `init` is the CMAF header (`ftyp` + `moov`) once
    read. Raises `isobmff.BoxError` on a stream that is not fragmented MP4 (a fragment before the header).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending = bytearray()  # boxes of the fragment being read, up to its mdat
        self.init: bytes | None = None
        self._tracks: dict[int, isobmff.TrackHeader] = {}

    def feed(self, data: bytes) -> list[Fragment]:
        self._buffer += data
        out: list[Fragment] = []
        while len(self._buffer) >= 8:
            size, kind = struct.unpack_from(">I4s", self._buffer)
            header = 8
            if size == 1:
                if len(self._buffer) < 16:
                    break
                size, header = struct.unpack_from(">Q", self._buffer, 8)[0], 16
            if size < header:
                raise isobmff.BoxError(f"box {kind!r} of size {size}")
            if len(self._buffer) < size:
                break
            box = bytes(self._buffer[:size])
            del self._buffer[:size]
            if self.init is None:
                self._pending += box
                if kind == b"moov":
                    self.init = bytes(self._pending)
                    self._tracks = isobmff.read_header(self.init)
                    self._pending.clear()
                elif kind == b"moof":
                    raise isobmff.BoxError("a fragment before the CMAF header")
                continue
            self._pending += box
            if kind == b"mdat":
                out.append(self._fragment(bytes(self._pending)))
                self._pending.clear()
        return out

    def _fragment(self, data: bytes) -> Fragment:
        times = isobmff.read_fragment_times(data, self._tracks)
        return Fragment(data, times.base_media_decode_time, times.duration,
                        self._tracks[times.track_id].timescale, _first_sample_sync(data))


# -- the rendition's parts and segments --------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A partial segment (§4.4.4.9): `number` counts the rendition's parts; `duration_s` in seconds;
    `produced_at` the event loop's clock (s) when it was added."""

    number: int
    data: bytes
    duration_s: float
    independent: bool
    produced_at: float = 0.0


@dataclass
class LowLatencySegment:
    """A media segment being assembled from parts; `complete` once the next segment has begun."""

    msn: int
    generation: int
    discontinuity: bool
    program_date_time_s: float
    """Wall clock (epoch seconds) of its first frame."""
    parts: list[Part] = field(default_factory=list)
    complete: bool = False

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.parts)

    @property
    def data(self) -> bytes:
        return b"".join(p.data for p in self.parts)


@dataclass(frozen=True)
class PlaylistPosition:
    """Where a rendition is: its last segment's MSN and the index of that segment's last part (§4.4.5.4)."""

    msn: int
    part: int


class LowLatencyRendition:
    """One rendition's parts and segments in memory, and the waiters for the next ones.

    `part_target_s` is PART-TARGET (s); parts must be no longer (the transcoder cuts them a little shorter).
    `segment_s` is the ladder's segment duration (s).
    """

    def __init__(self, name: str, *, part_target_s: float, segment_s: float,
                 keep_segments: int = PLAYLIST_SEGMENTS) -> None:
        self.name = name
        self.part_target_s = part_target_s
        self.segment_s = segment_s
        self.keep_segments = keep_segments
        self.inits: dict[int, bytes] = {}
        self.segments: list[LowLatencySegment] = []
        self.ended = False
        self._next_part = 0
        self._generation = -1
        self._changed = asyncio.Event()
        self._longest_s = segment_s

    @property
    def target_duration(self) -> int:
        """EXT-X-TARGETDURATION (§4.4.3.1): the longest segment, rounded up, never less than `segment_s`."""
        return max(1, math.ceil(self._longest_s - 1e-3))

    @property
    def position(self) -> PlaylistPosition | None:
        if not self.segments or not self.segments[-1].parts:
            return None
        last = self.segments[-1]
        return PlaylistPosition(last.msn, len(last.parts) - 1)

    def add_part(self, generation: int, init: bytes, data: bytes, *, duration_s: float, independent: bool,
                 wall_clock_s: float) -> Part:
        """A new part of transcoder generation `generation` (whose CMAF header is `init`); starts a new segment
        at a new generation (behind a discontinuity) or at an independent part once the open segment lasts
        `segment_s` less half a part. Wakes every waiter. ValueError for a part longer than `part_target_s`
        (§4.4.4.9 forbids it; the playlist is left as it was)."""
        if duration_s > self.part_target_s + 1e-6:
            raise ValueError(f"a part of {duration_s:.3f} s is longer than PART-TARGET {self.part_target_s:g} s")
        self.inits.setdefault(generation, init)
        open_ = self.segments[-1] if self.segments else None
        new_generation = generation != self._generation
        boundary = independent and open_ is not None and \
            open_.duration_s >= self.segment_s - self.part_target_s / 2
        if open_ is None or new_generation or boundary:
            if open_ is not None:
                self._complete(open_)
            msn = open_.msn + 1 if open_ is not None else 0
            open_ = LowLatencySegment(msn, generation, new_generation and self._generation >= 0, wall_clock_s)
            self._generation = generation
            self.segments.append(open_)
            if len(self.segments) > self.keep_segments:
                dropped = self.segments.pop(0)
                if not any(s.generation == dropped.generation for s in self.segments):
                    self.inits.pop(dropped.generation, None)
        part = Part(self._next_part, data, duration_s, independent, asyncio.get_running_loop().time())
        self._next_part += 1
        open_.parts.append(part)
        self._wake()
        return part

    def _complete(self, segment: LowLatencySegment) -> None:
        segment.complete = True
        self._longest_s = max(self._longest_s, segment.duration_s)

    def end(self) -> None:
        """No more parts (the session or the rendition ended): the open segment completes, waiters wake."""
        if self.segments and not self.segments[-1].complete:
            self._complete(self.segments[-1])
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def has(self, msn: int, part: int | None) -> bool:
        """Whether the playlist holds segment `msn` (complete, when `part` is None) or its part `part`, or
        anything later (§6.2.5.2)."""
        for segment in reversed(self.segments):
            if segment.msn > msn and segment.parts:
                return True
            if segment.msn == msn:
                return segment.complete if part is None else (segment.complete or len(segment.parts) > part)
        return False

    def part(self, number: int) -> Part | None:
        for segment in reversed(self.segments):
            if segment.parts and segment.parts[0].number <= number:
                index = number - segment.parts[0].number
                return segment.parts[index] if index < len(segment.parts) else None
        return None

    def segment(self, msn: int) -> LowLatencySegment | None:
        return next((s for s in self.segments if s.msn == msn and s.complete), None)

    @property
    def next_part(self) -> int:
        """The number of the part not produced yet (the PRELOAD-HINT's)."""
        return self._next_part

    async def wait_for(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until `ready()` holds (checked after every change), at most `timeout_s` seconds; False if not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0 or self.ended:
                return ready()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return ready()
        return True

    @property
    def block_timeout_s(self) -> float:
        return BLOCK_TARGET_DURATIONS * self.target_duration


@dataclass(frozen=True)
class BlockingRequest:
    """A playlist request's delivery directives (§6.2.5.2): `_HLS_msn`, `_HLS_part`; None when absent."""

    msn: int | None = None
    part: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> BlockingRequest:
        """Parse the query; `BadRequest` for a non-integer, a negative value, or `_HLS_part` without
        `_HLS_msn`."""
        def number(key: str) -> int | None:
            raw = query.get(key)
            if raw is None:
                return None
            if not raw.isdigit():
                raise BadRequest(f"{key} must be a non-negative integer")
            return int(raw)
        msn, part = number("_HLS_msn"), number("_HLS_part")
        if part is not None and msn is None:
            raise BadRequest("_HLS_part without _HLS_msn")
        return cls(msn, part)

    def check(self, rendition: LowLatencyRendition) -> None:
        """`BadRequest` if `_HLS_msn` is more than one segment beyond the last segment the playlist lists
        (the one being assembled): §6.2.5.2's "greater than the last MSN plus two" counts complete segments."""
        position = rendition.position
        last = position.msn if position is not None else -1
        if self.msn is not None and self.msn > last + 1:
            raise BadRequest(f"_HLS_msn={self.msn} is more than one segment ahead of {last}")

    def ready(self, rendition: LowLatencyRendition) -> bool:
        return self.msn is None or rendition.has(self.msn, self.part)


# -- playlists ---------------------------------------------------------------------------------------------


def _date(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def part_hold_back_s(part_target_s: float) -> float:
    """PART-HOLD-BACK (§4.4.3.8) for a PART-TARGET, seconds: `PART_HOLD_BACK_PARTS` part targets."""
    return PART_HOLD_BACK_PARTS * part_target_s


def part_name(number: int) -> str:
    return f"p{number}.m4s"


def segment_name(msn: int) -> str:
    return f"s{msn}.m4s"


def init_name(generation: int) -> str:
    return f"init{generation}.mp4"


def render_playlist(rendition: LowLatencyRendition, reports: Mapping[str, PlaylistPosition | None]) -> str | None:
    """The LL media playlist of `rendition` (None before its first part).

    Lists the kept segments; the last `PARTED_SEGMENTS` with their `EXT-X-PART`s (the first part of each
    segment `INDEPENDENT=YES`, as the transcoder starts segments on keyframes); `EXT-X-PRELOAD-HINT` for the
    next part while live; `EXT-X-RENDITION-REPORT` for each entry of `reports` (other renditions by name,
    §4.4.5.4); `EXT-X-ENDLIST` once ended.
    """
    segments = rendition.segments
    if not segments or not segments[-1].parts:
        return None
    target = rendition.part_target_s
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{LL_PLAYLIST_VERSION}", f"#EXT-X-TARGETDURATION:{rendition.target_duration}",
             f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={part_hold_back_s(target):.3f}",
             f"#EXT-X-PART-INF:PART-TARGET={target:.3f}",
             f"#EXT-X-MEDIA-SEQUENCE:{segments[0].msn}"]
    parted_from = len(segments) - PARTED_SEGMENTS
    generation: int | None = None
    for index, segment in enumerate(segments):
        if segment.discontinuity and index > 0:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.generation != generation:
            generation = segment.generation
            lines.append(f'#EXT-X-MAP:URI="{init_name(generation)}"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_date(segment.program_date_time_s)}")
        if index >= parted_from:
            for part in segment.parts:
                independent = ",INDEPENDENT=YES" if part.independent else ""
                lines.append(f'#EXT-X-PART:DURATION={part.duration_s:.5f},URI="{part_name(part.number)}"'
                             f"{independent}")
        if segment.complete:
            lines += [f"#EXTINF:{segment.duration_s:.5f},", segment_name(segment.msn)]
    if rendition.ended:
        lines.append("#EXT-X-ENDLIST")
    else:
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_name(rendition.next_part)}"')
    for name, position in reports.items():
        if position is not None:
            lines.append(f'#EXT-X-RENDITION-REPORT:URI="../{name}/index.m3u8",LAST-MSN={position.msn},'
                         f"LAST-PART={position.part}")
    return "\n".join(lines) + "\n"
