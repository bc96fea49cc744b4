"""Reading MPDs in tests with a real parser (`mpegdash`), expanding each SegmentTemplate/SegmentTimeline into the
segment URLs a DASH player would fetch (ISO/IEC 23009-1 §5.3.9.4.4, §5.3.9.6)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from mpegdash.parser import MPEGDASHParser

_NUMBER = re.compile(r"\$Number(?:%0(\d+)d)?\$")


@dataclass(frozen=True)
class DashSegment:
    period: str
    representation: str
    number: int
    t: int
    d: int
    timescale: int
    url: str
    init_url: str


def parse(text: str) -> Any:
    """The MPD as `mpegdash` nodes (raises on XML it cannot read)."""
    return MPEGDASHParser.parse(text)


def _expand(template: str, representation: str, number: int, time: int) -> str:
    name = _NUMBER.sub(lambda m: str(number).zfill(int(m.group(1) or 0)), template)
    return name.replace("$RepresentationID$", representation).replace("$Time$", str(time))


def segments(text: str, mpd_url: str) -> list[DashSegment]:
    """Every segment the MPD names, Period by Period, Representation by Representation, in timeline order."""
    mpd = parse(text)
    found = []
    for period in mpd.periods:
        for adaptation in period.adaptation_sets:
            for rep in adaptation.representations:
                (template,) = rep.segment_templates or adaptation.segment_templates
                number = template.start_number if template.start_number is not None else 1
                timescale = template.timescale or 1
                init = urljoin(mpd_url, _expand(template.initialization, rep.id, number, 0))
                t = 0
                for s in template.segment_timelines[0].Ss:
                    t = s.t if s.t is not None else t
                    for _ in range(1 + (s.r or 0)):
                        found.append(DashSegment(period.id, rep.id, number, t, s.d, timescale,
                                                 urljoin(mpd_url, _expand(template.media, rep.id, number, t)), init))
                        number += 1
                        t += s.d
    return found


def timeline_gaps(found: list[DashSegment]) -> list[str]:
    """Where, within one Period and Representation, a segment does not start where the one before ended
    (t[n+1] = t[n] + d[n] must hold: a SegmentTimeline with explicit `t` can hide a hole or an overlap)."""
    problems = []
    previous: dict[tuple[str, str], DashSegment] = {}
    for s in found:
        before = previous.get((s.period, s.representation))
        if before is not None and s.t != before.t + before.d:
            problems.append(f"{s.period}/{s.representation}#{s.number}: t={s.t}, expected {before.t + before.d}")
        previous[(s.period, s.representation)] = s
    return problems
