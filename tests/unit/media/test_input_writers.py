"""Transcoder input writers without an encoder: which writer carries which tracks, and the bytes of FLV tags and
Matroska clusters. tests/component/media/test_transcode_inputs.py decodes what they write with ffprobe."""

from __future__ import annotations

import pytest
from streamforge_media.codecs import aac, audio_track
from streamforge_media.media import AccessUnit, Codec, Track
from streamforge_media.transcode.inputs import (
    MatroskaInput,
    input_writer_for,
    passthrough_input,
)
from streamforge_media.transcode.inputs.flv import FlvInput

pytestmark = pytest.mark.unit


def _cluster_count(data: bytes) -> int:
    return data.count(b"\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff")


H264 = Track(Codec.H264, bytes([1, 0x42, 0, 0x1E, 0xFF, 0xE1]), width=320, height=240)
AAC = Track(Codec.AAC, aac.audio_specific_config(2, 48000, 2), sample_rate=48000, channels=2)


def test_matroska_clusters() -> None:
    writer = MatroskaInput(H264, AAC)

    def chunk(track: Track, pts: int, keyframe: bool = False) -> bytes:
        return writer.unit(AccessUnit(track, pts, pts, keyframe, b"x"), pts, pts)
    assert _cluster_count(chunk(H264, 0, True)) == 1
    assert _cluster_count(chunk(AAC, 10) + chunk(H264, 40) + chunk(AAC, 5000)) == 0  # audio never starts one
    assert _cluster_count(chunk(H264, 2000, True)) == 1  # each keyframe does
    assert _cluster_count(chunk(H264, 2000 + 32767)) == 0  # the last int16 offset
    assert _cluster_count(chunk(H264, 2000 + 32768)) == 1  # past it, a cluster at this unit
    block = chunk(H264, 2000 + 32768 - 40)  # before its cluster's timestamp: a negative offset
    assert block[-4:-2] == (-40).to_bytes(2, "big", signed=True) and block[-2] == 0

    audio_only = MatroskaInput(None, AAC)
    data = b"".join(audio_only.unit(AccessUnit(AAC, t, t, True, b"x"), t, t) for t in range(0, 3000, 21))
    assert _cluster_count(data) == 3  # about one a second


# --- Choosing a writer ---------------------------------------------------------------------------------

HEVC = Track(Codec.HEVC, b"\x01" + bytes(22), width=320, height=240)
OPUS = audio_track(Codec.OPUS)
MP3 = audio_track(Codec.MP3, sample_rate=44100, channels=2)
SPEEX = audio_track(Codec.SPEEX)


@pytest.mark.parametrize(("video", "audio", "writer"), [
    (H264, AAC, FlvInput), (H264, None, FlvInput), (None, AAC, FlvInput), (H264, MP3, FlvInput),
    (H264, SPEEX, FlvInput), (None, audio_track(Codec.PCM_MULAW), FlvInput),
    (HEVC, AAC, MatroskaInput), (H264, OPUS, MatroskaInput), (None, OPUS, MatroskaInput), (HEVC, None, MatroskaInput),
    (HEVC, MP3, MatroskaInput),
])
def test_input_writer_choice(video: Track | None, audio: Track | None, writer: type) -> None:
    chosen = input_writer_for(video, audio)
    assert type(chosen) is writer
    assert chosen.input_options == {"f": "flv" if writer is FlvInput else "matroska", "probesize": 65536,
                                    "analyzeduration": 500000}


@pytest.mark.parametrize(("video", "audio"), [
    (None, None),
    (HEVC, SPEEX),  # Speex only fits FLV, HEVC only Matroska
    (None, audio_track(Codec.PCM_ALAW, sample_rate=16000)),  # G.711 at 8 kHz only
    (None, audio_track(Codec.SPEEX, sample_rate=8000)),  # wideband Speex only
    (Track(Codec.H264), AAC),  # no decoder configuration
    (None, Track(Codec.AAC, sample_rate=44100, channels=2)),
    (None, audio_track(Codec.OPUS, channels=6)),  # more than stereo needs a head with a channel mapping
    (None, Track(Codec.OPUS, b"OpusTags" + bytes(11), sample_rate=48000, channels=2)),  # not a head
])
def test_no_writer_for_tracks_nothing_carries(video: Track | None, audio: Track | None) -> None:
    with pytest.raises(ValueError):
        input_writer_for(video, audio)


@pytest.mark.parametrize("writer", [FlvInput, MatroskaInput])
def test_units_of_other_tracks_are_refused(writer: type) -> None:
    w = writer(H264, None)
    with pytest.raises(ValueError):
        w.unit(AccessUnit(AAC, 0, 0, True, b"x"), 0, 0)
    with pytest.raises(ValueError):
        w.unit(AccessUnit(HEVC, 0, 0, True, b"x"), 0, 0)


# --- FLV tag details --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("track", "first_byte"), [
    (AAC, 0xAF), (SPEEX, 0xB6),
    (audio_track(Codec.MP3, sample_rate=44100, channels=2), 0x2F),
    (audio_track(Codec.MP3, sample_rate=48000, channels=1), 0x2E),  # 48 kHz: the nearest index is 44 kHz
    (audio_track(Codec.MP3, sample_rate=22050, channels=1), 0x2A),
    (audio_track(Codec.MP3, sample_rate=8000, channels=1), 0x22),  # format 2, not 14: see flv.py
    (audio_track(Codec.PCM_ALAW), 0x72), (audio_track(Codec.PCM_MULAW, channels=2), 0x83),
])
def test_flv_sound_header(track: Track, first_byte: int) -> None:
    tag = FlvInput(None, track).unit(AccessUnit(track, 0, 0, True, b"x"), 0, 0)
    assert tag[11] == first_byte
    assert tag[12:-4] == (b"\x01x" if track.codec is Codec.AAC else b"x")


def test_flv_video_tag_timestamps() -> None:
    writer = FlvInput(H264, None)
    tag = writer.unit(AccessUnit(H264, 0, 0, False, b"x"), 0x01234567, 0x01234567 - 2)
    assert tag[4:8] == bytes([0x23, 0x45, 0x67, 0x01])  # 24 low bits, then the extended byte
    assert tag[11:16] == bytes([0x27, 1, 0xFF, 0xFF, 0xFE])  # inter frame, NALU, composition time -2 (SI24)
    assert int.from_bytes(tag[-4:], "big") == len(tag) - 4
    with pytest.raises(ValueError):
        writer.unit(AccessUnit(H264, 0, 0, True, b"x"), 0, 1 << 23)


def test_flv_header_relabels_nal_length_size() -> None:
    """Units carry 4-byte lengths, so a record that said 2 is rewritten to say 4."""
    track = Track(Codec.H264, bytes([1, 0x42, 0, 0x1E, 0xFD, 0xE1, 0, 1, 0x67]), width=16, height=16)
    header = FlvInput(track, None).header()
    assert header[:13] == b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00"
    assert header[13 + 11 + 5:][:6] == bytes([1, 0x42, 0, 0x1E, 0xFF, 0xE1])


def test_passthrough_refuses_unknown_containers() -> None:
    with pytest.raises(ValueError):
        passthrough_input("mp4")  # needs to seek to its index
