"""DASH MPDs as text (ISO/IEC 23009-1, 5th edition), for CMAF segments (ISO/IEC 23000-19).

Pure functions: the DASH packager (`packaging.packagers.DashPackager`) decides what goes in them. The MPD
uses the ISO BMFF live profile (§8.4): per Period, one AdaptationSet of video and one of audio; each
Representation has a `SegmentTemplate` (§5.3.9.4) naming its init segment and its segments by `$Number$`,
with a `SegmentTimeline` (§5.3.9.6) listing exactly the segments given: `S@t` is a segment's `tfdt` and
`S@d` its duration, both in `@timescale` units, runs of equal, contiguous segments folded into `S@r`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from streamforge_media import signalling
from streamforge_media.hls import format_date_time
from streamforge_media.ladder import Rendition
from streamforge_media.segment_format import SegmentFormat

MPD_CONTENT_TYPE = "application/dash+xml"
MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
LIVE_PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
UTC_TIMING_HTTP_ISO = "urn:mpeg:dash:utc:http-iso:2014"
AUDIO_CHANNEL_SCHEME = "urn:mpeg:mpegB:cicp:ChannelConfiguration"


@dataclass(frozen=True)
class TimelineSegment:
    """`t` and `d` in the Representation's timescale units; `number` is what `$Number$` becomes."""

    number: int
    t: int
    d: int


@dataclass(frozen=True)
class Representation:
    rendition: Rendition
    timescale: int
    initialization: str
    """URI of the init segment, relative to the MPD."""
    media: str
    """URI template with `$Number%06d$`, relative to the MPD."""
    segments: Sequence[TimelineSegment]
    """Consecutive numbers, in order; at least one."""


@dataclass(frozen=True)
class Period:
    id: str
    start_s: float
    """Seconds from the presentation's start (dynamic: from availabilityStartTime)."""
    representations: Sequence[Representation]


@dataclass(frozen=True)
class Presentation:
    """What an MPD says beyond its Periods. Times in seconds; epoch seconds for wall-clock instants."""

    dynamic: bool
    availability_start_s: float
    publish_time_s: float
    fps: float
    fmt: SegmentFormat
    max_segment_s: float
    min_buffer_s: float
    minimum_update_period_s: float | None = None
    """Dynamic MPDs only; None once the presentation has ended (DASH-IF IOP v5 part 1 §5.2.7.3)."""
    time_shift_buffer_s: float | None = None
    suggested_presentation_delay_s: float | None = None
    duration_s: float | None = None
    """`mediaPresentationDuration`: required for static MPDs, and set on a dynamic one that has ended."""
    utc_timing_url: str | None = None


def xs_duration(seconds: float) -> str:
    """An xs:duration in seconds with millisecond precision: `PT12.345S`."""
    return f"PT{max(0.0, seconds):.3f}S"


def frame_rate(fps: float) -> str:
    """FrameRateType (§5.3.12.2): an integer or a ratio, e.g. `30` or `30000/1001`."""
    ratio = Fraction(fps).limit_denominator(1001)
    return str(ratio.numerator) if ratio.denominator == 1 else f"{ratio.numerator}/{ratio.denominator}"


def _timeline(parent: ET.Element, segments: Sequence[TimelineSegment]) -> None:
    timeline = ET.SubElement(parent, "SegmentTimeline")
    previous: ET.Element | None = None
    end = None
    for segment in segments:
        if previous is not None and segment.t == end and int(previous.get("d", "0")) == segment.d:
            previous.set("r", str(int(previous.get("r", "0")) + 1))
        else:
            previous = ET.SubElement(timeline, "S", t=str(segment.t), d=str(segment.d))
        end = segment.t + segment.d


def _representation(parent: ET.Element, rep: Representation, p: Presentation) -> None:
    r = rep.rendition
    peak, _ = signalling.bandwidth(r, p.fmt, with_audio=False)
    attributes = {"id": r.name, "bandwidth": str(peak)}
    if r.audio_only:
        attributes |= {"codecs": signalling.AAC_LC_CODEC, "audioSamplingRate": str(signalling.AUDIO_SAMPLE_RATE)}
    else:
        attributes |= {"codecs": signalling.video_codec(r, p.fps), "width": str(r.width), "height": str(r.height),
                       "frameRate": frame_rate(p.fps), "sar": "1:1"}
    element = ET.SubElement(parent, "Representation", attributes)
    if r.audio_only:
        ET.SubElement(element, "AudioChannelConfiguration", schemeIdUri=AUDIO_CHANNEL_SCHEME,
                      value=str(signalling.AUDIO_CHANNELS))
    template = ET.SubElement(element, "SegmentTemplate", timescale=str(rep.timescale),
                             initialization=rep.initialization, media=rep.media,
                             startNumber=str(rep.segments[0].number))
    _timeline(template, rep.segments)


def render_mpd(periods: Sequence[Period], p: Presentation) -> str:
    """The MPD; Periods without a Representation are left out (ValueError if none is left)."""
    attributes = {
        "xmlns": MPD_NAMESPACE, "profiles": LIVE_PROFILE, "type": "dynamic" if p.dynamic else "static",
        "minBufferTime": xs_duration(p.min_buffer_s), "maxSegmentDuration": xs_duration(p.max_segment_s),
    }
    if p.dynamic:
        attributes |= {"availabilityStartTime": format_date_time(p.availability_start_s),
                       "publishTime": format_date_time(p.publish_time_s)}
        if p.minimum_update_period_s is not None:
            attributes["minimumUpdatePeriod"] = xs_duration(p.minimum_update_period_s)
        if p.time_shift_buffer_s is not None:
            attributes["timeShiftBufferDepth"] = xs_duration(p.time_shift_buffer_s)
        if p.suggested_presentation_delay_s is not None:
            attributes["suggestedPresentationDelay"] = xs_duration(p.suggested_presentation_delay_s)
    if p.duration_s is not None:
        attributes["mediaPresentationDuration"] = xs_duration(p.duration_s)
    mpd = ET.Element("MPD", attributes)
    kept = [period for period in periods if period.representations]
    if not kept:
        raise ValueError("an MPD needs a Period with a Representation")
    for period in kept:
        element = ET.SubElement(mpd, "Period", id=period.id, start=xs_duration(period.start_s))
        video = [rep for rep in period.representations if not rep.rendition.audio_only]
        audio = [rep for rep in period.representations if rep.rendition.audio_only]
        for index, (kind, reps) in enumerate((("video", video), ("audio", audio))):
            if not reps:
                continue
            adaptation = ET.SubElement(element, "AdaptationSet", id=str(index), contentType=kind,
                                       mimeType=f"{kind}/mp4", segmentAlignment="true", startWithSAP="1")
            if kind == "video":
                adaptation.set("maxWidth", str(max(rep.rendition.width for rep in reps)))
                adaptation.set("maxHeight", str(max(rep.rendition.height for rep in reps)))
                adaptation.set("maxFrameRate", frame_rate(p.fps))
            else:
                adaptation.set("lang", "und")
            for rep in reps:
                _representation(adaptation, rep, p)
    if p.utc_timing_url is not None:
        ET.SubElement(mpd, "UTCTiming", schemeIdUri=UTC_TIMING_HTTP_ISO, value=p.utc_timing_url)
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"
