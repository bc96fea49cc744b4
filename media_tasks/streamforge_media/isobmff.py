"""Reading just enough of ISO BMFF (ISO/IEC 14496-12) for CMAF packaging: timescales and fragment times.

`read_header` reads a CMAF header (`ftyp` + `moov`, ISO/IEC 23000-19 §7.3.2.1): each track's id, media
timescale (`mdhd`, §8.4.2) and default sample duration (`trex`, §8.8.3). `read_fragment_times` reads a CMAF
segment's movie fragments (`moof`, §8.8.4): the first `tfdt` baseMediaDecodeTime (§8.8.12) and the summed
sample durations of its `trun`s (§8.8.8), falling back on `tfhd` (§8.8.7) and then `trex` defaults. Media data
(`mdat`) is skipped, never read. Raises `BoxError` on a truncated or malformed structure.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"mvex", b"moof", b"traf"})
_HEADER = struct.Struct(">I4s")
_TFHD_BASE_DATA_OFFSET, _TFHD_DESCRIPTION_INDEX, _TFHD_DEFAULT_DURATION = 0x01, 0x02, 0x08
_TRUN_DATA_OFFSET, _TRUN_FIRST_FLAGS, _TRUN_DURATION = 0x001, 0x004, 0x100
_TRUN_FIELD_FLAGS = (0x100, 0x200, 0x400, 0x800)  # per-sample duration, size, flags, composition offset


class BoxError(ValueError):
    """The bytes are not the ISO BMFF structure expected."""


@dataclass(frozen=True)
class TrackHeader:
    track_id: int
    timescale: int
    """Media time units per second (`mdhd`)."""
    handler: str
    """`vide` or `soun` (`hdlr`)."""
    default_sample_duration: int
    """From `trex`, in `timescale` units (0: none)."""


@dataclass(frozen=True)
class FragmentTimes:
    track_id: int
    base_media_decode_time: int
    """The first fragment's `tfdt`, in the track's timescale."""
    duration: int
    """All samples of all fragments, in the track's timescale."""


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in data[start:end]."""
    end = len(data) if end is None else end
    offset = start
    while offset < end:
        if end - offset < 8:
            raise BoxError("truncated box header")
        size, kind = _HEADER.unpack_from(data, offset)
        header = 8
        if size == 1:
            if end - offset < 16:
                raise BoxError("truncated large box header")
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise BoxError(f"box {kind!r} overruns its container")
        yield kind, offset + header, offset + size
        offset += size


def _find(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> Iterator[tuple[int, int]]:
    """Payload ranges of every box at `path` below data[start:end]."""
    for kind, body, stop in _boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                yield body, stop
            elif kind in _CONTAINERS:
                yield from _find(data, body, stop, path[1:])


def read_header(data: bytes) -> dict[int, TrackHeader]:
    """Track id -> header, from a CMAF header (`ftyp` + `moov`)."""
    moov = next(_find(data, 0, len(data), (b"moov",)), None)
    if moov is None:
        raise BoxError("no moov box")
    defaults: dict[int, int] = {}
    for body, _ in _find(data, *moov, (b"mvex", b"trex")):
        track_id, _, duration = struct.unpack_from(">III", data, body + 4)
        defaults[track_id] = duration
    tracks: dict[int, TrackHeader] = {}
    for trak, trak_end in _find(data, *moov, (b"trak",)):
        tkhd = next(_find(data, trak, trak_end, (b"tkhd",)), None)
        mdhd = next(_find(data, trak, trak_end, (b"mdia", b"mdhd")), None)
        hdlr = next(_find(data, trak, trak_end, (b"mdia", b"hdlr")), None)
        if tkhd is None or mdhd is None or hdlr is None:
            raise BoxError("trak without tkhd, mdhd or hdlr")
        # tkhd: version(1) flags(3) then creation/modification times of 4 or 8 bytes each, then track_ID.
        track_id = struct.unpack_from(">I", data, tkhd[0] + (20 if data[tkhd[0]] == 1 else 12))[0]
        timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if data[mdhd[0]] == 1 else 12))[0]
        handler = data[hdlr[0] + 8:hdlr[0] + 12].decode("latin-1")
        if timescale == 0:
            raise BoxError("mdhd timescale of 0")
        tracks[track_id] = TrackHeader(track_id, timescale, handler, defaults.get(track_id, 0))
    if not tracks:
        raise BoxError("moov without a track")
    return tracks


def _fragment(data: bytes, moof: tuple[int, int], tracks: dict[int, TrackHeader]) -> tuple[int, int | None, int]:
    """(track id, tfdt or None, summed duration) of the first track fragment of one `moof`."""
    traf = next(_find(data, *moof, (b"traf",)), None)
    if traf is None:
        raise BoxError("moof without traf")
    tfhd = next(_find(data, *traf, (b"tfhd",)), None)
    if tfhd is None:
        raise BoxError("traf without tfhd")
    flags = int.from_bytes(data[tfhd[0] + 1:tfhd[0] + 4], "big")
    track_id = struct.unpack_from(">I", data, tfhd[0] + 4)[0]
    if track_id not in tracks:
        raise BoxError(f"fragment of track {track_id}, not in the header")
    offset = tfhd[0] + 8
    if flags & _TFHD_BASE_DATA_OFFSET:
        offset += 8
    if flags & _TFHD_DESCRIPTION_INDEX:
        offset += 4
    default_duration = tracks[track_id].default_sample_duration
    if flags & _TFHD_DEFAULT_DURATION:
        default_duration = struct.unpack_from(">I", data, offset)[0]
    tfdt = next(_find(data, *traf, (b"tfdt",)), None)
    base: int | None = None
    if tfdt is not None:
        base = struct.unpack_from(">Q" if data[tfdt[0]] == 1 else ">I", data, tfdt[0] + 4)[0]
    duration = 0
    for body, _ in _find(data, *traf, (b"trun",)):
        run_flags = int.from_bytes(data[body + 1:body + 4], "big")
        count = struct.unpack_from(">I", data, body + 4)[0]
        cursor = body + 8 + (4 if run_flags & _TRUN_DATA_OFFSET else 0) + (4 if run_flags & _TRUN_FIRST_FLAGS else 0)
        if not run_flags & _TRUN_DURATION:
            duration += count * default_duration
            continue
        stride = 4 * sum(1 for f in _TRUN_FIELD_FLAGS if run_flags & f)
        for index in range(count):
            duration += struct.unpack_from(">I", data, cursor + index * stride)[0]
    return track_id, base, duration


def _moof_bytes(source: BinaryIO) -> bytes:
    """The segment's boxes up to its last `moof`, with every `mdat` payload left out (seeked over)."""
    kept = bytearray()
    while header := source.read(8):
        if len(header) < 8:
            raise BoxError("truncated box header")
        size, kind = _HEADER.unpack(header)
        extra = b""
        if size == 1:
            extra = source.read(8)
            size = struct.unpack(">Q", extra)[0]
        if size == 0:
            break  # a box to the end of the file: media data, the last box
        if kind == b"mdat":
            source.seek(size - 8 - len(extra), 1)
            continue
        body = source.read(size - 8 - len(extra))
        if len(body) != size - 8 - len(extra):
            raise BoxError(f"truncated {kind!r} box")
        kept += header + extra + body
    return bytes(kept)


def read_fragment_times(segment: Path | bytes, tracks: dict[int, TrackHeader]) -> FragmentTimes:
    """Times of a one-track CMAF segment (a file, read without its media data, or bytes)."""
    if isinstance(segment, Path):
        with segment.open("rb") as source:
            data = _moof_bytes(source)
    else:
        data = segment
    found: int | None = None
    base: int | None = None
    total = 0
    for moof in _find(data, 0, len(data), (b"moof",)):
        track_id, start, duration = _fragment(data, moof, tracks)
        if found is None:
            found, base = track_id, start
        elif track_id != found:
            raise BoxError("a segment of more than one track")
        total += duration
    if found is None:
        raise BoxError("no moof box")
    if base is None:
        raise BoxError("first fragment without tfdt")
    return FragmentTimes(found, base, total)
