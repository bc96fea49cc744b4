"""Packagers: manifests rendered from a session's `Timeline`, never from ffmpeg's output.

A packager is sans-I/O: it says which manifests it keeps (`live_manifests`) and how to render each from the
timeline; the publisher decides when to render and store them. Because every render reads only
`RenditionTimeline.published()` (the stored prefix), no manifest can name a segment that is not stored yet,
and because HLS and DASH render the same timeline, they name the same segment objects.

- `HlsPackager` (RFC 8216bis): per rendition a short live playlist (`index.m3u8`) and the rewind window
  (`dvr.m3u8`), a master for each, with EXT-X-MAP, EXT-X-PROGRAM-DATE-TIME and discontinuities; a VOD
  playlist set at the end.
- `DashPackager` (ISO/IEC 23009-1): one dynamic MPD, a Period per transcoder generation; a static MPD at the
  end. Times agree with HLS: a segment's wall clock is availabilityStartTime + Period@start + S@t/timescale,
  which is its EXT-X-PROGRAM-DATE-TIME.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from streamforge import media_layout, urls

from streamforge_media import dash, hls
from streamforge_media.ladder import Rendition
from streamforge_media.packaging.timeline import RenditionTimeline, Segment, Timeline
from streamforge_media.segment_format import SegmentFormat

Render = Callable[[Timeline], str | None]


@dataclass(frozen=True)
class Manifest:
    """A manifest kept at `key`: `render` gives its body now (None: nothing to publish yet).

    `renditions`: the renditions whose segments it names (None: every one), so it is redrawn when they change.
    `after`: keys that must have been stored before this one is (a master after its media playlists).
    `entry`: a URL a viewer opens first (a master, an MPD): the session goes live once every entry is stored.
    """

    key: str
    content_type: str
    render: Render
    renditions: frozenset[str] | None = None
    after: tuple[str, ...] = ()
    entry: bool = False


class Packager(Protocol):
    def live_manifests(self, timeline: Timeline) -> list[Manifest]:
        """The manifests to keep while the session is live, for its current ladder."""

    def final_manifests(self, timeline: Timeline, *, record: bool) -> list[Manifest]:
        """At the end: the live manifests, ended, then (when recording) the VOD's, in the order to store them."""


@dataclass(frozen=True)
class Windows:
    """How much each manifest holds. `live_segments`: the short live playlist's length in segments;
    `dvr_s`: the rewind window in seconds (0: no rewinding, the DVR playlists hold the short live window);
    `segment_s`: the target segment duration in seconds."""

    live_segments: int = 6
    dvr_s: float = 7200.0
    segment_s: float = 2.0


def dvr_start(segments: Sequence[Segment], window_s: float) -> int:
    """Index of the first segment of the rewind window: the longest tail lasting at most `window_s` (≥ 1 segment)."""
    total = 0.0
    for index in range(len(segments) - 1, -1, -1):
        total += segments[index].duration_s
        if total > window_s + 1e-6:
            return min(index + 1, len(segments) - 1)
    return 0


class HlsPackager:
    def __init__(self, fmt: SegmentFormat, windows: Windows) -> None:
        self.fmt = fmt
        self.windows = windows

    # -- live -----------------------------------------------------------------------------------

    def live_manifests(self, timeline: Timeline) -> list[Manifest]:
        sid = timeline.stream_id
        manifests: list[Manifest] = []
        # The DVR playlists always exist (so the stream's `dvr_url` always plays); without a rewind window they
        # hold the short live window.
        for name in timeline.renditions:
            only = frozenset({name})
            manifests.append(Manifest(media_layout.media_playlist_key(sid, name), hls.PLAYLIST_CONTENT_TYPE,
                                      self._live(name, media_layout.media_playlist_key(sid, name)), only))
            manifests.append(Manifest(media_layout.dvr_playlist_key(sid, name), hls.PLAYLIST_CONTENT_TYPE,
                                      self._live(name, media_layout.dvr_playlist_key(sid, name), dvr=True), only))
        names = [r.name for r in timeline.ladder]
        manifests.append(Manifest(
            media_layout.live_master_key(sid), hls.PLAYLIST_CONTENT_TYPE,
            self._master(media_layout.live_master_key(sid), media_layout.media_playlist_key), frozenset(),
            after=tuple(media_layout.media_playlist_key(sid, n) for n in names), entry=True))
        manifests.append(Manifest(
            media_layout.live_dvr_master_key(sid), hls.PLAYLIST_CONTENT_TYPE,
            self._master(media_layout.live_dvr_master_key(sid), media_layout.dvr_playlist_key), frozenset(),
            after=tuple(media_layout.dvr_playlist_key(sid, n) for n in names), entry=True))
        return manifests

    def _live(self, rendition: str, key: str, *, dvr: bool = False) -> Render:
        def render(timeline: Timeline) -> str | None:
            track = timeline.renditions[rendition]
            return self.media_playlist(timeline, track, key, dvr=dvr, ended=timeline.ended or track.retired)
        return render

    def _master(self, key: str, playlist_key: Callable[[str, str], str]) -> Render:
        def render(timeline: Timeline) -> str | None:
            if not timeline.ladder:
                return None
            uris = {r.name: media_layout.relative(key, playlist_key(timeline.stream_id, r.name))
                    for r in timeline.ladder}
            return hls.render_master(timeline.ladder, fps=timeline.fps, has_audio=timeline.has_audio, fmt=self.fmt,
                                     uris=uris)
        return render

    def media_playlist(self, timeline: Timeline, track: RenditionTimeline, key: str, *, dvr: bool,
                       ended: bool) -> str | None:
        """A sliding window (short, or the rewind window) of the stored prefix; None before its first segment."""
        published = track.published()
        if not published:
            return None
        live_start = max(0, len(published) - self.windows.live_segments)
        start = dvr_start(published, self.windows.dvr_s) if dvr and self.windows.dvr_s > 0 else live_start
        entries = [self._entry(timeline, track, key, s, s.discontinuity) for s in published[start:]]
        return hls.render_media_playlist(
            entries, target=hls.target_duration([s.duration_s for s in published]), media_sequence=start,
            discontinuity_sequence=sum(1 for s in published[:start] if s.discontinuity), ended=ended,
            version=self.fmt.playlist_version)

    def _entry(self, timeline: Timeline, track: RenditionTimeline, key: str, segment: Segment,
               discontinuity: bool) -> hls.PlaylistEntry:
        name = track.rendition.name
        uri = media_layout.relative(key, timeline.segment_key(name, segment.name))
        map_uri = None if segment.init is None else media_layout.relative(key, timeline.segment_key(name, segment.init))
        return hls.PlaylistEntry(uri, segment.duration_s, discontinuity, segment.wall_clock_s, map_uri)

    # -- end ------------------------------------------------------------------------------------

    def final_manifests(self, timeline: Timeline, *, record: bool) -> list[Manifest]:
        finals = [m for m in self.live_manifests(timeline) if not m.entry]
        if not record:
            return finals
        sid, session = timeline.stream_id, timeline.session_id
        vod_keys = {name: media_layout.vod_media_playlist_key(sid, session, name) for name in timeline.renditions}
        finals += [Manifest(key, hls.PLAYLIST_CONTENT_TYPE, self._vod(name, key), frozenset({name}))
                   for name, key in vod_keys.items()]
        master = media_layout.vod_master_key(sid, session)
        # Every rendition that stored a segment, the ladder's first (a rendition may have none: a run that died).
        recorded = [t.rendition for t in sorted(timeline.renditions.values(), key=lambda t: t.retired)
                    if any(s.uploaded for s in t.segments)]

        def vod_master(t: Timeline) -> str | None:
            return hls.render_master(recorded, fps=t.fps, has_audio=t.has_audio, fmt=self.fmt,
                                     uris={r.name: media_layout.relative(master, vod_keys[r.name]) for r in recorded})
        finals.append(Manifest(master, hls.PLAYLIST_CONTENT_TYPE, vod_master, frozenset(),
                               after=tuple(vod_keys[r.name] for r in recorded)))
        return finals

    def _vod(self, rendition: str, key: str) -> Render:
        def render(timeline: Timeline) -> str | None:
            track = timeline.renditions[rendition]
            entries = []
            gap = False
            for segment in track.segments:
                if not segment.uploaded:
                    gap = True  # a segment that could never be stored: the VOD skips it, behind a discontinuity
                    continue
                entries.append(self._entry(timeline, track, key, segment, segment.discontinuity or gap))
                gap = False
            if not entries:
                return None
            return hls.render_media_playlist(entries, target=hls.target_duration([e.duration for e in entries]),
                                             media_sequence=0, ended=True, vod=True, version=self.fmt.playlist_version)
        return render


class DashPackager:
    """One MPD over the CMAF segments; `utc_timing_url` is our own clock (dash.js otherwise asks a public one)."""

    def __init__(self, fmt: SegmentFormat, windows: Windows, *, cdn_base_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        if not fmt.dash:
            raise ValueError(f"DASH needs ISO BMFF segments, not {fmt.name}")
        self.fmt = fmt
        self.windows = windows
        self.utc_timing_url = urls.time_url(cdn_base_url)
        self.clock = clock

    @property
    def time_shift_s(self) -> float:
        """timeShiftBufferDepth: the rewind window, or the short live window when there is none."""
        return self.windows.dvr_s or self.windows.live_segments * self.windows.segment_s

    def live_manifests(self, timeline: Timeline) -> list[Manifest]:
        key = media_layout.live_manifest_key(timeline.stream_id)
        return [Manifest(key, dash.MPD_CONTENT_TYPE, lambda t: self.mpd(t, key, dynamic=True), entry=True)]

    def final_manifests(self, timeline: Timeline, *, record: bool) -> list[Manifest]:
        finals = self.live_manifests(timeline)
        if record:
            key = media_layout.vod_manifest_key(timeline.stream_id, timeline.session_id)
            finals.append(Manifest(key, dash.MPD_CONTENT_TYPE, lambda t: self.mpd(t, key, dynamic=False)))
        return finals

    def mpd(self, timeline: Timeline, key: str, *, dynamic: bool) -> str | None:
        """The MPD at `key`: dynamic (live; ended once the timeline is) or static (the VOD). None before a segment."""
        start = timeline.availability_start_s
        if start is None:
            return None
        periods = self.periods(timeline, key, start, window=dynamic)
        if not periods:
            return None
        ended = timeline.ended or not dynamic
        end = max(period.start_s + (rep.segments[-1].t + rep.segments[-1].d) / rep.timescale
                  for period in periods for rep in period.representations)
        longest = max(s.d / rep.timescale for period in periods for rep in period.representations for s in rep.segments)
        presentation = dash.Presentation(
            dynamic=dynamic, availability_start_s=start, publish_time_s=self.clock(), fps=timeline.fps, fmt=self.fmt,
            max_segment_s=longest, min_buffer_s=2 * self.windows.segment_s,
            minimum_update_period_s=None if ended else self.windows.segment_s,
            time_shift_buffer_s=self.time_shift_s if dynamic else None,
            suggested_presentation_delay_s=3 * self.windows.segment_s if dynamic else None,
            duration_s=end if ended else None, utc_timing_url=self.utc_timing_url if dynamic else None)
        return dash.render_mpd(periods, presentation)

    def periods(self, timeline: Timeline, key: str, start: float, *, window: bool) -> list[dash.Period]:
        """A Period per generation with segments: live, the stored prefix within the time-shift window; VOD,
        each rendition's stored run from the generation's first segment (a gap ends it: `$Number$` must not skip)."""
        chosen: dict[str, list[Segment]] = {}
        for name, track in timeline.renditions.items():
            if window:
                published = track.published()
                chosen[name] = published[dvr_start(published, self.time_shift_s):] if published else []
            else:
                chosen[name] = [s for s in track.segments if s.uploaded]
        periods = []
        for generation in timeline.generations:
            if generation.origin_s is None:
                continue
            representations = []
            for kind_audio in (False, True):
                runs = []
                for rendition in generation.renditions:
                    if rendition.audio_only != kind_audio or rendition.name not in chosen:
                        continue
                    run = self._run([s for s in chosen[rendition.name] if s.generation == generation.index])
                    if run:
                        runs.append((rendition, run))
                # Representations of one AdaptationSet list the same segments (segmentAlignment).
                common = min((len(run) for _, run in runs), default=0)
                for rendition, run in runs:
                    if common:
                        representations.append(self._representation(timeline, key, rendition, run[:common]))
            if representations:
                periods.append(dash.Period(f"p{generation.index}", generation.origin_s - start, representations))
        return periods

    @staticmethod
    def _run(segments: list[Segment]) -> list[Segment]:
        """The segments up to the first break in numbering."""
        for index in range(1, len(segments)):
            if segments[index].seq != segments[index - 1].seq + 1:
                return segments[:index]
        return segments

    def _representation(self, timeline: Timeline, key: str, rendition: Rendition,
                        run: list[Segment]) -> dash.Representation:
        first = run[0]
        assert first.init is not None, "DASH segments have an init segment"
        media = media_layout.relative(key, timeline.segment_key(
            rendition.name, media_layout.dash_segment_template(timeline.session_id, self.fmt.extension)))
        return dash.Representation(
            rendition, first.timescale, media_layout.relative(key, timeline.segment_key(rendition.name, first.init)),
            media, [dash.TimelineSegment(s.seq, s.start, s.duration) for s in run])
