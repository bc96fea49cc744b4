"""Transcoder input writers: real encoded media (local ffmpeg) cut into neutral units, written through each
writer, and decoded by ffprobe reading the writer's bytes on stdin with the writer's own input options,
as the transcoder does. Every frame must decode, with the expected codec, size, rate and channels, at
the timestamps the units were written with."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamforge_media.media import AccessUnit, Codec, MediaKind
from streamforge_media.transcode.inputs import (
    InputWriter,
    MatroskaInput,
    PassthroughInput,
    input_writer_for,
    passthrough_input,
)
from streamforge_media.transcode.inputs.flv import FlvInput

from tests.component.media.media_samples import (
    Media,
    ffmpeg,
    interleave,
    lavfi_audio,
    lavfi_video,
    needs_ffmpeg,
    only,
    parse_annexb,
    parse_flv,
    parse_mp3,
    parse_ogg_opus,
    probe,
    without_config,
)

pytestmark = pytest.mark.component

SECONDS = 2
FPS = 25
SIZE = (320, 240)


def source(directory: Path, name: str, *args: str) -> bytes:
    """Encode with ffmpeg into `directory/name` (kept for a look when a test fails) and return the bytes."""
    path = directory / name
    ffmpeg(*args, "-y", str(path))
    return path.read_bytes()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Media]:
    """Each source once per module: a couple of seconds of tiny media."""
    d = tmp_path_factory.mktemp("media")
    video = lavfi_video(*SIZE, FPS, SECONDS)
    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS)]
    flv_h264_aac = parse_flv(source(d, "h264_aac.flv", *video, *lavfi_audio(44100, 2, SECONDS), *h264, "-bf", "2",
                                    "-c:a", "aac", "-f", "flv"))
    return {
        "h264_aac": flv_h264_aac,  # B-frames: composition offsets
        "h264_mp3": parse_flv(source(d, "h264_mp3.flv", *video, *lavfi_audio(48000, 1, SECONDS), *h264,
                                     "-c:a", "libmp3lame", "-f", "flv")),
        "h264_speex": parse_flv(source(d, "h264_speex.flv", *video, *lavfi_audio(16000, 1, SECONDS), *h264,
                                       "-c:a", "libspeex", "-f", "flv")),
        "alaw": parse_flv(source(d, "alaw.flv", *lavfi_audio(8000, 1, SECONDS), "-c:a", "pcm_alaw", "-f", "flv")),
        "mulaw": parse_flv(source(d, "mulaw.flv", *lavfi_audio(8000, 2, SECONDS), "-c:a", "pcm_mulaw", "-f", "flv")),
        "mp3_8k": parse_mp3(source(d, "8k.mp3", *lavfi_audio(8000, 1, SECONDS), "-c:a", "libmp3lame", "-b:a", "16k",
                                   "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3")),
        "hevc": parse_annexb(source(d, "video.hevc", *video, "-c:v", "libx265", "-x265-params",
                                    f"log-level=error:aud=1:bframes=0:keyint={FPS}", "-f", "hevc"),
                             Codec.HEVC, 1000 // FPS),
        "h264_annexb": parse_annexb(source(d, "video.h264", *video, *h264, "-bf", "0", "-x264-params", "aud=1",
                                           "-f", "h264"), Codec.H264, 1000 // FPS),
        "opus": parse_ogg_opus(source(d, "audio.opus", *lavfi_audio(48000, 2, SECONDS), "-c:a", "libopus",
                                      "-f", "ogg")),
    }


def write(writer: InputWriter, media: Media) -> bytes:
    """The writer's bytes for `media`, timestamps relative to its first DTS as a generation's are."""
    base = min(u.dts_ms for u in media.units)
    return writer.header() + b"".join(writer.unit(u, u.dts_ms - base, u.pts_ms - base) for u in media.units)


def assert_decodes(media: Media, writer: InputWriter) -> None:
    """ffprobe finds exactly the media's tracks and decodes every unit, at the written timestamps."""
    result = probe(write(writer, media), writer.input_options)
    assert result.errors == ""
    tracks = {t.kind.value: t for t in (media.video, media.audio) if t is not None}
    assert set(result.streams) == set(tracks)
    base = min(u.dts_ms for u in media.units)
    for kind, track in tracks.items():
        stream = result.streams[kind]
        assert stream["codec_name"] == track.codec.value
        if kind == MediaKind.VIDEO:
            assert (stream["width"], stream["height"]) == (track.width, track.height)
        else:
            assert (int(stream["sample_rate"]), stream["channels"]) == (track.sample_rate, track.channels)
        assert int(stream["nb_read_frames"]) == media.count(track)
        assert sorted(result.pts[kind]) == sorted(u.pts_ms - base for u in media.units if u.track is track)


# --- FLV ---------------------------------------------------------------------------------------------

@needs_ffmpeg
def test_h264_aac_goes_through_flv(media: dict[str, Media]) -> None:
    m = media["h264_aac"]
    assert m.video is not None and m.audio is not None
    assert (m.video.width, m.video.height, m.audio.sample_rate, m.audio.channels) == (*SIZE, 44100, 2)
    assert any(u.pts_ms != u.dts_ms for u in m.units), "the source should have B-frames"
    writer = input_writer_for(m.video, m.audio)
    assert isinstance(writer, FlvInput)
    assert_decodes(m, writer)


@needs_ffmpeg
@pytest.mark.parametrize("name", ["h264_mp3", "h264_speex"])
def test_h264_with_mp3_or_speex_goes_through_flv(media: dict[str, Media], name: str) -> None:
    m = media[name]
    writer = input_writer_for(m.video, m.audio)
    assert isinstance(writer, FlvInput)
    assert_decodes(m, writer)


@needs_ffmpeg
@pytest.mark.parametrize("name", ["alaw", "mulaw", "mp3_8k"])
def test_audio_only_goes_through_flv(media: dict[str, Media], name: str) -> None:
    m = media[name]
    writer = input_writer_for(None, m.audio)
    assert isinstance(writer, FlvInput)
    assert_decodes(m, writer)


@needs_ffmpeg
def test_aac_only_and_h264_only(media: dict[str, Media]) -> None:
    for part in (only(media["h264_aac"], "audio"), only(media["h264_aac"], "video")):
        writer = input_writer_for(part.video, part.audio)
        assert isinstance(writer, FlvInput)
        assert_decodes(part, writer)


# --- Matroska ----------------------------------------------------------------------------------------

@needs_ffmpeg
def test_hevc_aac_goes_through_matroska(media: dict[str, Media]) -> None:
    m = interleave(media["hevc"], only(media["h264_aac"], "audio"))
    assert m.video is not None and (m.video.codec, m.video.width, m.video.height) == (Codec.HEVC, *SIZE)
    writer = input_writer_for(m.video, m.audio)
    assert isinstance(writer, MatroskaInput)
    assert_decodes(m, writer)


@needs_ffmpeg
def test_h264_opus_goes_through_matroska(media: dict[str, Media]) -> None:
    """Annex B H.264 and Opus, as WebRTC delivers them."""
    m = interleave(media["h264_annexb"], media["opus"])
    writer = input_writer_for(m.video, m.audio)
    assert isinstance(writer, MatroskaInput)
    assert_decodes(m, writer)


@needs_ffmpeg
def test_opus_without_head_gets_a_minimal_one(media: dict[str, Media]) -> None:
    m = without_config(media["opus"])
    writer = input_writer_for(None, m.audio)
    assert isinstance(writer, MatroskaInput)
    assert_decodes(m, writer)


@needs_ffmpeg
@pytest.mark.parametrize(("video_from", "audio_from"), [
    ("h264_aac", "h264_aac"),  # B-frames: blocks before their cluster's timestamp
    ("h264_annexb", "h264_mp3"),  # MP3
    ("hevc", None),  # video only
    (None, "h264_aac"),  # audio only: a cluster a second
])
def test_matroska_carries_the_rest(media: dict[str, Media], video_from: str | None, audio_from: str | None) -> None:
    video = only(media[video_from], "video") if video_from else None
    audio = only(media[audio_from], "audio") if audio_from else None
    m = interleave(video, audio) if video and audio else video or audio
    assert m is not None
    assert_decodes(m, MatroskaInput(m.video, m.audio))


@needs_ffmpeg
def test_matroska_long_gap(media: dict[str, Media]) -> None:
    """A gap longer than an int16 of milliseconds in an audio-only stream keeps its timestamps."""
    m = only(media["h264_aac"], "audio")
    half = len(m.units) // 2
    gapped = Media(None, m.audio, m.units[:half] + [AccessUnit(u.track, u.dts_ms + 40_000, u.pts_ms + 40_000, True,
                                                                u.data) for u in m.units[half:]])
    assert_decodes(gapped, MatroskaInput(None, m.audio))


# --- Passthrough -------------------------------------------------------------------------------------------

@needs_ffmpeg
def test_mpegts_passthrough(tmp_path: Path) -> None:
    """MPEG-TS that arrives whole goes to ffmpeg chunk by chunk, unchanged."""
    ts = source(tmp_path, "in.ts", *lavfi_video(*SIZE, FPS, 1), *lavfi_audio(48000, 2, 1),
                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-f", "mpegts")
    passthrough = passthrough_input()
    assert isinstance(passthrough, PassthroughInput)
    assert passthrough.input_options == {"f": "mpegts", "probesize": 65536, "analyzeduration": 500000}
    data = passthrough.header() + b"".join(passthrough.chunk(ts[i:i + 1316]) for i in range(0, len(ts), 1316))
    assert data == ts
    result = probe(data, passthrough.input_options)
    assert result.streams["video"]["nb_read_frames"] == str(FPS)
    assert (result.streams["audio"]["codec_name"], result.streams["audio"]["sample_rate"]) == ("aac", "48000")

