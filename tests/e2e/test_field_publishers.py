"""Issue 8 through the whole local platform: one publisher of each real-world kind, and what viewers get.

Real ffmpeg publishes where ffmpeg can send the kind; a scripted publisher (tests/support/rtmp_publisher.py)
sends exactly what other encoders send. Clips are short, made once per module, and published in real time
only until the outcome can be seen.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from streamforge_media.codecs import hevc, nal
from streamforge_media.ingest.rtmp.chunk import AUDIO, DATA_AMF0, VIDEO

from tests.e2e.conftest import RECONNECT_GRACE_S
from tests.support.http import call
from tests.support.media import fetch_playlist, ffprobe, segments
from tests.support.platform import PlatformThread, start_platform
from tests.support.publishers import ffmpeg_publisher
from tests.support.rtmp_publisher import PUBLISH_START, FlvTag, RtmpPublisher, open_publisher, read_flv
from tests.support.users import SignedInUser, create_stream, sign_up_and_log_in
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

CLIP_S = 12  # every clip's length; a test stops publishing as soon as it has seen what it checks
FPS = 30
FIRST_HLS_S = 30  # from the first frame to the master and a segment of every rendition, on a busy CI machine
AAC_LC = "mp4a.40.2"
# H.264 Annex A, table A-1: level (times ten) -> (max macroblocks per frame, max macroblocks per second).
AVC_LEVEL_LIMITS = {30: (1620, 40500), 31: (3600, 108000), 32: (5120, 216000), 40: (8192, 245760),
                    41: (8192, 245760), 42: (8704, 522240), 50: (22080, 589824), 51: (36864, 983040)}
HEVC_AUD, HEVC_PARAMETER_SETS = 35, (32, 33, 34)  # access unit delimiter; VPS, SPS, PPS
HEVC_KEYFRAMES = range(16, 24)  # IRAP NAL unit types (BLA, IDR, CRA and reserved IRAP)


# --- test media, made once per module ----------------------------------------------------------------

@dataclass
class Clips:
    """Clips made with the local ffmpeg on first use, in one temporary directory for the module."""

    root: Path
    _tags: dict[Path, list[FlvTag]] = field(default_factory=dict)

    def make(self, name: str, *args: str) -> Path:
        path = self.root / name
        if not path.exists():
            made = subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)],
                                  capture_output=True, text=True, timeout=180)
            assert made.returncode == 0, f"making {name} failed: {made.stderr[-1500:]}"
        return path

    def av(self, name: str, *, size: str = "640x360", rate: int = FPS, seconds: int = CLIP_S,
           video: str = "testsrc2", audio: tuple[str, ...] = ("-c:a", "aac", "-b:a", "96k"),
           extra: tuple[str, ...] = ()) -> Path:
        """H.264 (2 s GOP) and audio in FLV; `video` is a lavfi source, sized and timed here."""
        return self.make(f"{name}.flv",
                         "-f", "lavfi", "-i", f"{video}=size={size}:rate={rate}:duration={seconds}",
                         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                         "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * rate), "-pix_fmt", "yuv420p",
                         "-b:v", "800k", *audio, *extra, "-f", "flv")

    def landscape(self) -> Path:
        return self.av("av_640x360")

    def tags(self, path: Path) -> list[FlvTag]:
        if path not in self._tags:
            self._tags[path] = read_flv(path)
        return self._tags[path]

    def hevc_tags(self) -> list[FlvTag]:
        """HEVC as OBS sends it over Enhanced RTMP (FourCC hvc1), from libx265 split at its AUD NAL units."""
        path = self.make("hevc_640x360.hevc",
                         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={FPS}:duration={CLIP_S}",
                         "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x265-params",
                         f"aud=1:bframes=0:keyint={2 * FPS}:min-keyint={2 * FPS}:no-open-gop=1:log-level=error",
                         "-f", "hevc")
        access_units: list[list[bytes]] = []
        parameter_sets: dict[int, bytes] = {}
        for unit in nal.split_annexb(path.read_bytes()):
            kind = hevc.nal_type(unit)
            if kind == HEVC_AUD:
                access_units.append([])
            elif kind in HEVC_PARAMETER_SETS:  # they travel in the decoder configuration record
                parameter_sets.setdefault(kind, unit)
            elif access_units:
                access_units[-1].append(unit)
        hvcc = hevc.decoder_config_from_parameter_sets(*(parameter_sets[k] for k in HEVC_PARAMETER_SETS))
        tags = [FlvTag(VIDEO, 0, enhanced_video(True, 0, b"hvc1", hvcc))]  # SequenceStart
        for index, units in enumerate(access_units):
            key = any(hevc.nal_type(u) in HEVC_KEYFRAMES for u in units)
            body = b"\x00\x00\x00" + nal.length_prefixed(units)  # CodedFrames: composition time 0 (no B-frames)
            tags.append(FlvTag(VIDEO, round(index * 1000 / FPS), enhanced_video(key, 1, b"hvc1", body)))
        return tags


def enhanced_video(keyframe: bool, packet_type: int, fourcc: bytes, body: bytes) -> bytes:
    """An Enhanced RTMP video body (veovera enhanced-rtmp v2): IsExHeader, FrameType, PacketType, FourCC."""
    return bytes([0x80 | (1 if keyframe else 2) << 4 | packet_type]) + fourcc + body


def by_timestamp(*tag_lists: list[FlvTag]) -> list[FlvTag]:
    return sorted((t for tags in tag_lists for t in tags), key=lambda t: (t.timestamp, t.type_id != VIDEO))


@pytest.fixture(scope="module")
def platform() -> Iterator[PlatformThread]:
    """A platform of this module's own, with MPEG-TS segments (`STREAMFORGE_SEGMENT_FORMAT=ts`).

    These kinds are ingest cases; their probes read each rung's segments alone, with its audio muxed in, which
    MPEG-TS gives. This module is the setting's e2e coverage; every other e2e test runs the default, CMAF.
    """
    running = start_platform(with_media=True, media_env={
        "STREAMFORGE_RECONNECT_GRACE_S": str(RECONNECT_GRACE_S), "STREAMFORGE_SEGMENT_FORMAT": "ts"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("field-clips"))


@pytest.fixture(scope="module")
def user(platform: PlatformThread) -> SignedInUser:
    return sign_up_and_log_in(platform.urls["api"], prefix="field")


@pytest.fixture(autouse=True)
def media_log(caplog: pytest.LogCaptureFixture) -> None:
    """The media task's log lines are shown with a failing test: the evidence of what it did with the kind."""
    caplog.set_level(logging.INFO, logger="streamforge.media")


# --- streams, publishers, HLS --------------------------------------------------------------------------

@dataclass(frozen=True)
class Stream:
    id: str
    key: str
    ingest: str  # rtmp://host:port/live
    playback_url: str

    @property
    def publish_url(self) -> str:
        return f"{self.ingest}/{self.key}"


def new_stream(platform: PlatformThread, user: SignedInUser, title: str) -> Stream:
    made = create_stream(platform.urls["api"], user, title)
    return Stream(made["id"], made["ingest"]["stream_key"], made["ingest"]["rtmp_url"], made["playback_url"])


def sessions(platform: PlatformThread, user: SignedInUser, stream: Stream) -> list[dict[str, Any]]:
    reply = call("GET", f"{platform.urls['api']}/v1/streams/{stream.id}/sessions", token=user.token)
    assert reply.status == 200, reply.raw
    items: list[dict[str, Any]] = reply.json["items"]
    return items


@contextmanager
def ffmpeg_copy(source: Path, url: str, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real ffmpeg publishing `source` in real time, stream-copied (`options` replace `-c copy`)."""
    publisher = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-i", str(source), *(options or ("-c", "copy")),
                                  "-f", "flv", url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield publisher
    finally:
        publisher.kill()
        publisher.wait()


@contextmanager
def scripted(stream: Stream, **options: Any) -> Iterator[RtmpPublisher]:
    """A scripted publisher whose publish of the stream's key was accepted."""
    publisher, code = open_publisher(stream.ingest, stream.key, **options)
    try:
        assert code == PUBLISH_START, code
        yield publisher
    finally:
        publisher.close()


@dataclass(frozen=True)
class Variant:
    name: str  # the rendition, the first part of its URI
    url: str
    resolution: tuple[int, int] | None
    codecs: str
    frame_rate: float | None


def variants(master_url: str) -> list[Variant]:
    master = fetch_playlist(master_url)
    if master is None:
        return []
    return [Variant(p.uri.split("/")[0], urljoin(master_url, p.uri), p.stream_info.resolution,
                    p.stream_info.codecs or "", p.stream_info.frame_rate) for p in master.playlists]


def live_ladder(stream: Stream) -> list[Variant] | None:
    """The master's variants once each has a segment to fetch."""
    found = variants(stream.playback_url)
    return found if found and all(segments(v.url) for v in found) else None


def wait_for_ladder(stream: Stream, what: str) -> list[Variant]:
    return wait_for(lambda: live_ladder(stream), FIRST_HLS_S, what, interval=0.5)


def newest_segment(variant: Variant) -> str:
    found = segments(variant.url)
    assert found, f"{variant.name} has no segment"
    return found[-1][1]


def streams_by_kind(segment_url: str) -> dict[str, dict[str, Any]]:
    return {s["codec_type"]: s for s in ffprobe(segment_url)["streams"]}


def newest_streams(ladder: list[Variant]) -> dict[str, dict[str, dict[str, Any]]]:
    """Rendition name -> the streams of its newest segment, by kind."""
    return {v.name: streams_by_kind(newest_segment(v)) for v in ladder}


def avc_level(codecs: str) -> int:
    """The level (times ten) in an `avc1.PPCCLL` CODECS entry."""
    video = next(c for c in codecs.split(",") if c.startswith("avc1."))
    return int(video[-2:], 16)


def square_box(segment_url: str) -> tuple[float, str]:
    """The displayed width/height of the bright box in a segment's first frame, and what was seen."""
    video = streams_by_kind(segment_url)["video"]
    width, height = int(video["width"]), int(video["height"])
    sar = video.get("sample_aspect_ratio", "1:1")
    num, den = (1, 1) if sar == "0:1" else (int(x) for x in sar.split(":"))  # 0:1 is "unknown"
    frame = subprocess.run(["ffmpeg", "-v", "error", "-i", segment_url, "-frames:v", "1", "-f", "rawvideo",
                            "-pix_fmt", "gray", "-"], capture_output=True, timeout=60, check=True).stdout
    rows = [y for y in range(height) if max(frame[y * width:(y + 1) * width]) > 128]
    columns = [x for x in range(width) if max(frame[x:width * height:width]) > 128]
    if not rows or not columns:
        return 0.0, f"{width}x{height}: no box found"
    box_w, box_h = columns[-1] - columns[0] + 1, rows[-1] - rows[0] + 1
    return box_w * num / den / box_h, f"{width}x{height} SAR {num}:{den}, box {box_w}x{box_h}"


def segment_number(segment_url: str) -> tuple[str, int]:
    """(session id, sequence number) of a segment named `{session_id}-{seq:06d}.ts`."""
    session_id, _, number = segment_url.rsplit("/", 1)[1].rpartition("-")
    return session_id, int(number.split(".")[0])


# --- the kinds ----------------------------------------------------------------------------------------

def test_audio_only_publish_becomes_one_audio_rendition(platform: PlatformThread, user: SignedInUser,
                                                        clips: Clips) -> None:
    stream = new_stream(platform, user, "field: audio only")
    with ffmpeg_copy(clips.landscape(), stream.publish_url, "-vn", "-c:a", "copy"):
        ladder = wait_for_ladder(stream, "an audio-only rendition")
        assert len(ladder) == 1, ladder
        assert ladder[0].codecs == AAC_LC and ladder[0].resolution is None, ladder[0]
        probed = streams_by_kind(newest_segment(ladder[0]))
    assert set(probed) == {"audio"}, probed
    assert probed["audio"]["codec_name"] == "aac" and probed["audio"]["sample_rate"] == "48000"


def test_audio_joining_late_reaches_every_rendition_behind_a_discontinuity(platform: PlatformThread,
                                                                           user: SignedInUser, clips: Clips) -> None:
    audio_from_ms = 4000
    tags = clips.tags(clips.landscape())
    audio_config = next(t for t in tags if t.type_id == AUDIO and t.payload[1] == 0)  # AAC sequence header
    late_audio = [t for t in tags if t.type_id == AUDIO and t.payload[1] == 1 and t.timestamp >= audio_from_ms]
    video = [t for t in tags if t.type_id == VIDEO]
    joined = by_timestamp(video, [FlvTag(AUDIO, late_audio[0].timestamp, audio_config.payload), *late_audio])
    stream = new_stream(platform, user, "field: late audio")
    with scripted(stream) as publisher:
        # What such an encoder declares at start: a video track only.
        publisher.send_metadata({"width": 640.0, "height": 360.0, "framerate": float(FPS), "videocodecid": 7.0,
                                 "videodatarate": 800.0})
        publisher.play_in_background(joined)
        ladder = wait_for_ladder(stream, "the video-only ladder")
        first = {v.name: streams_by_kind(segments(v.url)[0][1]) for v in ladder}
        assert all(set(s) == {"video"} for s in first.values()), first  # the case really starts without audio

        def joined_everywhere() -> dict[str, dict[str, dict[str, Any]]] | None:
            newest = newest_streams(variants(stream.playback_url))
            return newest if all({"audio", "video"} <= set(s) for s in newest.values()) else None

        newest = wait_for(joined_everywhere, 20, "audio and video in the newest segment of every rendition", 1)
        for name, probed in newest.items():
            assert probed["audio"]["codec_name"] == "aac", (name, probed["audio"])
        for variant in variants(stream.playback_url):
            assert AAC_LC in variant.codecs.split(","), variant
            playlist = fetch_playlist(variant.url)
            assert playlist is not None and any(s.discontinuity for s in playlist.segments), variant.name


def test_hevc_over_enhanced_rtmp_becomes_an_h264_ladder(platform: PlatformThread, user: SignedInUser,
                                                        clips: Clips) -> None:
    audio = [t for t in clips.tags(clips.landscape()) if t.type_id == AUDIO]
    stream = new_stream(platform, user, "field: hevc")
    publisher = RtmpPublisher(stream.ingest)
    try:
        connected = publisher.connect(fourCcList=["av01", "vp09", "hvc1"])
        assert connected[0] == "_result" and "hvc1" in connected[2]["fourCcList"], connected
        assert publisher.publish(stream.key) == PUBLISH_START
        publisher.send_metadata({"width": 640.0, "height": 360.0, "framerate": float(FPS),
                                 "videocodecid": float(int.from_bytes(b"hvc1", "big")), "audiocodecid": 10.0,
                                 "encoder": "obs-output module (libobs version 29.1.0)"})
        publisher.play_in_background(by_timestamp(clips.hevc_tags(), audio))
        ladder = wait_for_ladder(stream, "a ladder from HEVC")
        assert sorted(v.resolution[1] for v in ladder if v.resolution) == [160, 360], ladder
        for variant in ladder:
            assert variant.resolution is not None
            probed = streams_by_kind(newest_segment(variant))
            assert probed["video"]["codec_name"] == "h264", (variant.name, probed["video"])
            assert (probed["video"]["width"], probed["video"]["height"]) == variant.resolution, variant.name
            assert probed["audio"]["codec_name"] == "aac", variant.name
        assert publisher.alive, publisher.close_reason
    finally:
        publisher.close()


def test_a_video_codec_the_platform_cannot_take_is_refused_with_a_status(platform: PlatformThread,
                                                                         user: SignedInUser) -> None:
    stream = new_stream(platform, user, "field: av1")
    publisher = RtmpPublisher(stream.ingest)
    try:
        connected = publisher.connect(fourCcList=["av01", "hvc1"])
        assert connected[2]["fourCcList"] == ["hvc1"], connected  # the negotiation already says so
        assert publisher.publish(stream.key) == PUBLISH_START
        av1_config = bytes([0x81, 0x00, 0x0C, 0x00])  # an AV1CodecConfigurationRecord's first bytes
        publisher.send_tag(FlvTag(VIDEO, 0, enhanced_video(True, 0, b"av01", av1_config)))
        status = publisher.status(timeout=5)
        assert status.get("code") == "NetStream.Publish.Rejected", status
        assert "av01" in str(status.get("description")), status
        assert publisher.wait_closed(5), "the refused publisher is still connected"
    finally:
        publisher.close()


def test_a_timestamp_jump_is_not_counted_as_broadcast_time(platform: PlatformThread, user: SignedInUser,
                                                           clips: Clips) -> None:
    jump_ms, jump_at_ms = 300_000, 5000
    tags = clips.tags(clips.landscape())
    stream = new_stream(platform, user, "field: timestamp jump")
    with scripted(stream) as publisher:
        started = time.monotonic()
        publisher.play(tags, ts_map=lambda t: t.timestamp + (jump_ms if t.timestamp >= jump_at_ms else 0))
        published_s = time.monotonic() - started
        assert publisher.alive, publisher.close_reason

    def ended() -> dict[str, Any] | None:
        done = [s for s in sessions(platform, user, stream) if s.get("ended_at") and s.get("vod_url")]
        return done[0] if done else None

    session = wait_for(ended, 40, "the session to end with a VOD")
    assert abs(session["duration_s"] - published_s) <= 3, (session["duration_s"], published_s)
    vod = variants(session["vod_url"])
    assert vod, session["vod_url"]
    for variant in vod:
        playlist = fetch_playlist(variant.url)
        assert playlist is not None and playlist.is_endlist
        total = sum(float(s.duration) for s in playlist.segments)
        assert abs(total - published_s) <= 3, (variant.name, total, published_s)


def test_a_resolution_change_gets_a_ladder_of_the_new_shape(platform: PlatformThread, user: SignedInUser,
                                                          clips: Clips) -> None:
    def square(size: str, seconds: int) -> list[FlvTag]:
        width, height = (int(x) for x in size.split("x"))
        box = f"drawbox=x={(width - 100) // 2}:y={(height - 100) // 2}:w=100:h=100:color=white:t=fill"
        return clips.tags(clips.av(f"square_{size}", size=size, seconds=seconds, video="color",
                                   extra=("-vf", box)))

    landscape, portrait = square("640x360", 6), square("360x640", 8)
    offset = landscape[-1].timestamp + 1000 // FPS
    tags = landscape + [FlvTag(t.type_id, t.timestamp + offset, t.payload) for t in portrait]
    stream = new_stream(platform, user, "field: resolution change")
    with scripted(stream) as publisher:
        publisher.play_in_background(tags)
        before = wait_for_ladder(stream, "the landscape ladder")
        assert all(v.resolution and v.resolution[0] > v.resolution[1] for v in before), before

        def portrait_everywhere() -> list[Variant] | None:
            ladder = live_ladder(stream)
            if not ladder or not all(v.resolution and v.resolution[0] < v.resolution[1] for v in ladder):
                return None
            newest = newest_streams(ladder)
            return ladder if all(s["video"]["width"] < s["video"]["height"] for s in newest.values()) else None

        ladder = wait_for(portrait_everywhere, 25, "portrait segments in every rendition and the master", 1)
        assert sorted(v.resolution for v in ladder if v.resolution) == [(160, 284), (360, 640)], ladder
        for variant in ladder:
            segment = newest_segment(variant)
            video = streams_by_kind(segment)["video"]
            assert (video["width"], video["height"]) == variant.resolution, variant.name
            assert abs(video["width"] / video["height"] / (360 / 640) - 1) <= 0.05, video
            aspect, seen = square_box(segment)
            assert abs(aspect - 1) <= 0.1, f"{variant.name}: the square is drawn {aspect:.2f}:1 ({seen})"


def test_the_right_key_takes_over_a_half_open_publisher(platform: PlatformThread, user: SignedInUser,
                                                        clips: Clips) -> None:
    silence_s = float(os.environ.get("STREAMFORGE_TAKEOVER_SILENCE_S", "5"))
    stream = new_stream(platform, user, "field: half-open publisher")
    first = ffmpeg_publisher(stream.publish_url, 60, size="640x360")
    try:
        top = wait_for_ladder(stream, "HLS from the first publisher")[0]
        assert first.poll() is None
        (current,) = [s for s in sessions(platform, user, stream) if not s.get("ended_at")]
        before = segment_number(newest_segment(top))
        assert before[0] == current["session_id"]
        os.kill(first.pid, signal.SIGSTOP)  # its socket stays open; nothing more is sent
        frozen = time.monotonic()

        def take_over() -> RtmpPublisher | None:
            try:
                publisher, code = open_publisher(stream.ingest, stream.key)
            except (OSError, AssertionError):
                return None
            if code == PUBLISH_START:
                return publisher
            publisher.close()
            return None

        second = wait_for(take_over, silence_s + 10, "the same key to be accepted", interval=0.5)
        accepted_after = time.monotonic() - frozen

        def resumed() -> list[str] | None:
            """The new connection's segments: from the discontinuity that starts its generation, two or more."""
            playlist = fetch_playlist(top.url)
            names = [urljoin(top.url, s.uri) for s in playlist.segments] if playlist else []
            starts = [i for i, s in enumerate(playlist.segments if playlist else [])
                      if s.discontinuity and segment_number(names[i])[1] > before[1]]
            return names[starts[-1]:] if starts and len(names) - starts[-1] >= 2 else None

        with second:
            second.play_in_background(clips.tags(clips.landscape()))
            after = wait_for(resumed, 20, "segments from the new publisher, behind a discontinuity")
            assert second.alive, second.close_reason
        assert accepted_after <= silence_s + 3, f"accepted {accepted_after:.1f} s after the publisher went silent"
        assert {segment_number(name)[0] for name in after} == {current["session_id"]}
        assert [s["session_id"] for s in sessions(platform, user, stream)] == [current["session_id"]]
    finally:
        first.kill()  # SIGKILL is delivered once the process runs again
        os.kill(first.pid, signal.SIGCONT)
        first.wait()


def test_a_128_mib_chunk_size_is_accepted(platform: PlatformThread, user: SignedInUser, clips: Clips) -> None:
    stream = new_stream(platform, user, "field: chunk size 128 MiB")
    with scripted(stream, chunk_size=128 * 1024 * 1024) as publisher:
        publisher.play_in_background(clips.tags(clips.landscape()))
        ladder = wait_for_ladder(stream, "HLS from a publisher with 128 MiB chunks")
        for name, probed in newest_streams(ladder).items():
            assert {"audio", "video"} <= set(probed), (name, probed)
        assert publisher.alive, publisher.close_reason


@pytest.mark.parametrize(("codec", "encoder", "rate"), [("mp3", "libmp3lame", 44100), ("speex", "libspeex", 16000)])
def test_legacy_audio_is_transcoded_to_aac(platform: PlatformThread, user: SignedInUser, clips: Clips,
                                           codec: str, encoder: str, rate: int) -> None:
    source = clips.av(f"av_320x180_{codec}", size="320x180",
                      audio=("-c:a", encoder, "-ar", str(rate), "-ac", "1"))
    sent = streams_by_kind(str(source))["audio"]
    assert (sent["codec_name"], int(sent["sample_rate"]), sent["channels"]) == (codec, rate, 1), sent
    stream = new_stream(platform, user, f"field: {codec} audio")
    with ffmpeg_copy(source, stream.publish_url):
        ladder = wait_for_ladder(stream, f"HLS from {codec} audio")
        for name, probed in newest_streams(ladder).items():
            assert "video" in probed, (name, probed)
            assert (probed["audio"]["codec_name"], probed["audio"]["sample_rate"]) == ("aac", "48000"), name


def test_a_portrait_source_keeps_its_resolution_and_shape(platform: PlatformThread, user: SignedInUser,
                                                          clips: Clips) -> None:
    stream = new_stream(platform, user, "field: portrait")
    with ffmpeg_copy(clips.av("av_360x640", size="360x640"), stream.publish_url):
        ladder = wait_for_ladder(stream, "a portrait ladder")
        assert [(v.name, v.resolution) for v in ladder] == [("360p", (360, 640)), ("160p", (160, 284))], ladder
        for name, probed in newest_streams(ladder).items():
            width, height = probed["video"]["width"], probed["video"]["height"]
            assert width % 2 == 0 and height % 2 == 0, (name, width, height)
            assert abs(width / height / (360 / 640) - 1) <= 0.05, (name, width, height)


def test_60_fps_without_metadata_is_described_as_60_fps(platform: PlatformThread, user: SignedInUser,
                                                        clips: Clips) -> None:
    source = clips.av("av_640x360_60fps", rate=60, extra=("-flvflags", "no_metadata"))
    assert DATA_AMF0 not in {t.type_id for t in clips.tags(source)}  # really no onMetaData
    stream = new_stream(platform, user, "field: 60 fps, no metadata")
    with ffmpeg_copy(source, stream.publish_url, "-c", "copy", "-flvflags", "no_metadata"):
        ladder = wait_for_ladder(stream, "HLS from a 60 fps publisher")
        newest = newest_streams(ladder)
    for variant in ladder:
        assert variant.frame_rate is not None and abs(variant.frame_rate - 60) <= 1, variant
        video = newest[variant.name]["video"]
        assert abs(float(Fraction(video["r_frame_rate"])) - 60) <= 1, (variant.name, video["r_frame_rate"])
        declared = avc_level(variant.codecs)
        assert declared == video["level"], (variant.name, variant.codecs, video["level"])
        macroblocks = -(-video["width"] // 16) * -(-video["height"] // 16)
        max_frame, max_rate = AVC_LEVEL_LIMITS[declared]
        assert macroblocks <= max_frame and macroblocks * 60 <= max_rate, (variant.name, declared, macroblocks)


def test_the_whole_url_as_server_with_an_empty_key_is_accepted(platform: PlatformThread, user: SignedInUser,
                                                               clips: Clips) -> None:
    stream = new_stream(platform, user, "field: key in the server URL")
    publisher = RtmpPublisher(stream.ingest)
    try:
        # What OBS sends for Server = rtmp://host/live/<key> and an empty Stream Key.
        connected = publisher.connect(app=f"live/{stream.key}", tc_url=stream.publish_url)
        assert connected[0] == "_result", connected
        assert publisher.publish("") == PUBLISH_START
        publisher.play_in_background(clips.tags(clips.landscape()))
        ladder = wait_for_ladder(stream, "HLS from a publisher with the key in its URL")
        for name, probed in newest_streams(ladder).items():
            assert {"audio", "video"} <= set(probed), (name, probed)
    finally:
        publisher.close()


def test_an_amf3_client_keeps_publishing(platform: PlatformThread, user: SignedInUser, clips: Clips) -> None:
    stream = new_stream(platform, user, "field: amf3 client")
    publisher = RtmpPublisher(stream.ingest)
    try:
        connected = publisher.connect(flashVer="WIN 32,0,0,465", objectEncoding=3.0)
        assert connected[0] == "_result", connected
        assert publisher.publish(stream.key, amf3_commands=True) == PUBLISH_START
        publisher.send_amf3_metadata({"width": 640, "height": 360, "framerate": FPS, "videocodecid": 7,
                                      "audiocodecid": 10, "encoder": "as3-publisher"})
        publisher.play_in_background([t for t in clips.tags(clips.landscape()) if t.type_id != DATA_AMF0])
        ladder = wait_for_ladder(stream, "HLS from an AMF3 client")
        for name, probed in newest_streams(ladder).items():
            assert {"audio", "video"} <= set(probed), (name, probed)
        assert publisher.alive, publisher.close_reason
    finally:
        publisher.close()
