"""Track rules: which tracks a transcoder generation takes, and when a new generation must start.

Sans-I/O: `TrackSet.push(unit)` takes each normalised access unit of a publisher connection and answers
with a `Step`: the units to feed now and, when the tracks have changed, the `Generation` to start first
(the caller ends the running transcoder, starts the new one behind a discontinuity, then feeds).

The rules, the same for every protocol:
- Whether a kind of track exists is decided by what arrives; hints (metadata, SDP) only say what to
  wait for. A generation starts once every expected kind is ready, where a kind announced by hints is
  waited for at most `wait_ms` of media time, and, with no hints at all, the publisher is watched for
  `probe_ms` first (so audio that comes a few frames after video is not a late track).
- Video is ready at a keyframe followed by `rate_frames` units, whose timestamps give the frame rate;
  a generation always starts at a video keyframe, and audio from before that keyframe is dropped.
- A kind that appears later (audio joining a video-only stream, video joining an audio-only one) or a
  new decoder configuration (new SPS: another size; another codec, another sample rate) starts a new
  generation at the new video's first keyframe, or at once when there is no video. Until then the
  running generation keeps receiving what it can decode, so the picture never stops. A configuration
  resent unchanged is not a change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from streamforge_media.codecs.frame_rate import estimate_frame_rate
from streamforge_media.media import AccessUnit, MediaKind, PublisherHints, Track

log = logging.getLogger(__name__)

DEFAULT_FRAME_RATE = 30.0


@dataclass(frozen=True)
class Generation:
    """What one transcoder generation takes: its tracks (at least one) and the video's frame rate.

    `frame_rate` is in frames per second, 0 without video.
    """

    video: Track | None
    audio: Track | None
    frame_rate: float

    def track(self, kind: MediaKind) -> Track | None:
        return self.video if kind is MediaKind.VIDEO else self.audio

    def describe(self) -> str:
        parts = [t.describe() for t in (self.video, self.audio) if t is not None]
        if self.video is not None:
            parts[0] += f" {self.frame_rate:g} fps"
        return " + ".join(parts)


@dataclass(frozen=True)
class TrackRules:
    """Bounded waits, in milliseconds of media time, and the frames measured for the frame rate."""

    probe_ms: int = 400
    wait_ms: int = 2000
    rate_frames: int = 3
    max_held_ms: int = 10_000


@dataclass(frozen=True)
class Step:
    """`start`: a generation to start before feeding (None: keep the running one); `units`: feed these, in order."""

    start: Generation | None
    units: list[AccessUnit]


@dataclass
class TrackSet:
    rules: TrackRules = field(default_factory=TrackRules)
    hints: PublisherHints = field(default_factory=PublisherHints)
    current: Generation | None = None
    _latest: dict[MediaKind, Track] = field(default_factory=dict)
    _held: list[AccessUnit] = field(default_factory=list)  # units for the next generation
    _held_since: int | None = None  # DTS from which the next generation has been waited for
    _changing: bool = False

    def push(self, unit: AccessUnit) -> Step:
        """Take one access unit (normalised timestamps); see the module rules."""
        kind = unit.kind
        self._latest[kind] = unit.track
        if self.current is None:
            return Step(*self._collect(unit))
        running = self.current.track(kind)
        if not self._changing:
            if unit.track == running:
                return Step(None, [unit])
            self._changing = True
            self._held, self._held_since = [], unit.dts_ms
            log.info("tracks: %s %s", kind, "appeared" if running is None else
                     f"changed from {running.describe()} to {unit.track.describe()}")
        start, units = self._collect(unit)
        if start is not None:
            return Step(start, units)
        # Until the new generation can start, the running one keeps what it can decode.
        return Step(None, [unit] if unit.track == running else [])

    def _collect(self, unit: AccessUnit) -> tuple[Generation | None, list[AccessUnit]]:
        if self._held_since is None:
            self._held_since = unit.dts_ms
        held = self._held
        if unit.kind is MediaKind.VIDEO:
            if unit.keyframe:
                # Start over at the newest keyframe: a generation begins there, with the audio from then on.
                held[:] = [u for u in held if u.kind is MediaKind.AUDIO and u.dts_ms >= unit.dts_ms]
                held.append(unit)
            elif held and any(u.kind is MediaKind.VIDEO and u.track == unit.track for u in held):
                held.append(unit)
            # else: a frame without its keyframe cannot be decoded; it is dropped.
        else:
            held[:] = [u for u in held if u.kind is MediaKind.VIDEO or u.track == unit.track]
            held.append(unit)
            if not any(u.kind is MediaKind.VIDEO for u in held):
                while held and unit.dts_ms - held[0].dts_ms > self.rules.max_held_ms:
                    held.pop(0)
        generation = self._ready(unit.dts_ms)
        if generation is None:
            return None, []
        units = [u for u in held if u.track == generation.track(u.kind)]
        self._held, self._held_since, self._changing = [], None, False
        if generation == self.current:
            return None, []
        self.current = generation
        log.info("tracks: new generation: %s", generation.describe())
        return generation, units

    def _ready(self, now_ms: int) -> Generation | None:
        """The generation the held units can start, if the rules say it is time; else None."""
        video, audio = self._latest.get(MediaKind.VIDEO), self._latest.get(MediaKind.AUDIO)
        frames = [u.dts_ms for u in self._held if u.kind is MediaKind.VIDEO and u.track == video]
        running = self.current
        rate = running.frame_rate if running is not None and running.video == video else 0.0
        video_ready = bool(frames) and (rate > 0 or len(frames) > self.rules.rate_frames)
        audio_ready = audio is not None and any(u.track == audio for u in self._held)
        ready = {k for k, ok in ((MediaKind.VIDEO, video_ready), (MediaKind.AUDIO, audio_ready)) if ok}
        if not ready:
            return None
        elapsed = now_ms - (now_ms if self._held_since is None else self._held_since)
        expected = set(self._latest)
        if running is None:
            declared = self.hints.kinds
            expected |= declared or set()
            settled = declared is not None or elapsed >= self.rules.probe_ms
            if not ((expected <= ready and settled) or elapsed >= self.rules.wait_ms):
                return None
            if missing := expected - ready:
                log.info("tracks: starting without %s: announced or seen, not ready after %d ms",
                         ", ".join(sorted(missing)), elapsed)
        elif not expected <= ready:
            return None
        if not video_ready:
            return Generation(None, audio, 0.0)
        if not rate:
            rate = estimate_frame_rate(frames) or self.hints.frame_rate or (video and video.frame_rate) \
                or DEFAULT_FRAME_RATE
        return Generation(video, audio if audio_ready else None, rate)
