"""Codec knowledge shared by every protocol: decoder configurations → `Track`s, NAL unit framing.

Adapters call `video_track` / `audio_track` with what their wire format carries; the parsing of each
codec's configuration lives in its own module (`h264`, `hevc`, `aac`), framing in `nal`, and the frame
rate estimate from timestamps in `frame_rate`.
"""

from __future__ import annotations

from streamforge_media.codecs import aac, h264, hevc
from streamforge_media.codecs.errors import CodecError
from streamforge_media.media import Codec, MediaKind, Track

__all__ = ["OPUS_SAMPLE_RATE", "CodecError", "audio_track", "opus_head", "video_track"]

OPUS_SAMPLE_RATE = 48000  # RFC 7845 §5.1: Opus always decodes at 48 kHz, whatever the input rate was
_OPUS_HEAD_MAGIC = b"OpusHead"
_OPUS_HEAD_SIZE = 19  # RFC 7845 §5.1, channel mapping family 0
# Rates and channels where the codecs' usual transports fix them (the RTMP container, RTP static payload types).
_DEFAULTS = {Codec.SPEEX: (16000, 1), Codec.PCM_ALAW: (8000, 1), Codec.PCM_MULAW: (8000, 1), Codec.OPUS: (48000, 2)}


def video_track(codec: Codec, config: bytes, *, frame_rate: float = 0.0) -> Track:
    """A video `Track` whose size (pixels) is read from `config`'s first SPS.

    `config` is the AVCDecoderConfigurationRecord (H.264) or HEVCDecoderConfigurationRecord (HEVC),
    ISO/IEC 14496-15 §5.3.3.1 / §8.3.3.1; `frame_rate` in frames per second (0: not known). Raises
    CodecError when the configuration does not parse or `codec` is not a video codec.
    """
    if codec is Codec.H264:
        width, height = h264.decoder_config_size(config)
    elif codec is Codec.HEVC:
        width, height = hevc.decoder_config_size(config)
    else:
        raise CodecError(f"{codec} is not a video codec")
    return Track(codec, config, width=width, height=height, frame_rate=frame_rate)


def opus_head(data: bytes) -> tuple[int, int, int]:
    """(channels, pre-skip in 48 kHz samples, input sample rate in Hz) of an OpusHead (RFC 7845 §5.1).

    Raises CodecError when `data` is not an OpusHead of version 0.x or has no channel.
    """
    if len(data) < _OPUS_HEAD_SIZE or not data.startswith(_OPUS_HEAD_MAGIC) or data[8] >> 4:
        raise CodecError("not an OpusHead")
    if data[9] == 0:
        raise CodecError("OpusHead with no channel")
    return data[9], int.from_bytes(data[10:12], "little"), int.from_bytes(data[12:16], "little")


def audio_track(codec: Codec, config: bytes = b"", *, sample_rate: int = 0, channels: int = 0) -> Track:
    """An audio `Track`: sample rate in Hz and channel count from `config` where the codec has one.

    - AAC: both come from the AudioSpecificConfig in `config` (required; ISO/IEC 14496-3 §1.6.2.1).
    - Opus: `config` is the OpusHead (RFC 7845 §5.1) when known, giving the channels; the rate is always
      48000 Hz, the rate Opus decodes at. Without a head, `channels` (default 2).
    - MP3: the given values. Speex: default 16000 Hz mono. G.711 (A-law, µ-law): default 8000 Hz mono.

    Raises CodecError when `config` does not parse or `codec` is not an audio codec.
    """
    if codec.kind is not MediaKind.AUDIO:
        raise CodecError(f"{codec} is not an audio codec")
    if codec is Codec.AAC:
        asc = aac.parse_audio_specific_config(config)
        return Track(codec, config, sample_rate=asc.sample_rate, channels=asc.channels)
    if codec is Codec.OPUS and config:
        head_channels, _, _ = opus_head(config)
        return Track(codec, config, sample_rate=OPUS_SAMPLE_RATE, channels=head_channels)
    default_rate, default_channels = _DEFAULTS.get(codec, (0, 0))
    if codec is Codec.OPUS:
        sample_rate = OPUS_SAMPLE_RATE
    return Track(codec, config, sample_rate=sample_rate or default_rate, channels=channels or default_channels)
