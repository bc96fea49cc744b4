"""AAC: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), the decoder configuration of an AAC track.

It carries the audio object type (2: AAC-LC, 5: SBR / HE-AAC, 29: PS / HE-AACv2, ...), the sampling
frequency (an index into Table 1.18, or 15 and an explicit 24-bit value) and the channel configuration
(Table 1.19). Only that header is parsed; the object-type-specific configuration that follows is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamforge_media.codecs.bits import BitReader, BitWriter
from streamforge_media.codecs.errors import CodecError

# Table 1.18, samplingFrequencyIndex 0..12 (13 and 14 are reserved, 15 escapes to an explicit value).
SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_EXPLICIT_RATE = 15
_ESCAPE_OBJECT_TYPE = 31
_MAX_OBJECT_TYPE = 32 + 63  # the escape reaches 32..95
# Table 1.19 (with the channelConfiguration values added by later amendments): configuration → channels.
# 0 means "defined in a program_config_element", which is not parsed here; 8..10 are reserved.
_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}
_CONFIGURATION = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 11, 8: 7, 24: 13}  # channels → channelConfiguration
SBR = 5
PS = 29
# Object types whose specific config is a GASpecificConfig (§4.4.1): frameLengthFlag, dependsOnCoreCoder,
# extensionFlag all 0 make the 3 bits written after the header.
_GA_OBJECT_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})


class AacError(CodecError):
    """The bytes or values are not a usable AudioSpecificConfig."""


@dataclass(frozen=True)
class AudioSpecificConfig:
    """An AAC track's decoder configuration: object type, output sample rate in Hz, channel count.

    For explicitly signalled SBR / PS (object type 5 / 29), `sample_rate` is the extension (output) rate
    and PS output is stereo. `channels` is 0 when the configuration defers to a program config element.
    """

    object_type: int
    sample_rate: int
    channels: int


def _object_type(r: BitReader) -> int:
    value = r.bits(5)
    return 32 + r.bits(6) if value == _ESCAPE_OBJECT_TYPE else value


def _sample_rate(r: BitReader) -> int:
    index = r.bits(4)
    if index == _EXPLICIT_RATE:
        rate = r.bits(24)
        if rate == 0:
            raise AacError("explicit sampling frequency 0")
        return rate
    if index >= len(SAMPLE_RATES):
        raise AacError(f"reserved samplingFrequencyIndex {index}")
    return SAMPLE_RATES[index]


def parse_audio_specific_config(data: bytes) -> AudioSpecificConfig:
    """Parse the header of an AudioSpecificConfig (§1.6.2.1); raises AacError.

    Handles the object type escape (31: 32 + 6 more bits), the explicit frequency escape (index 15: a
    24-bit value in Hz) and explicit SBR/PS signalling (object type 5 or 29 followed by the extension
    frequency and the core object type). Implicit SBR (signalled later in the stream) is not seen here:
    such a track reports its core rate.
    """
    r = BitReader(data, AacError, "AudioSpecificConfig")
    object_type = _object_type(r)
    if object_type == 0:
        raise AacError("audio object type 0 (null)")
    sample_rate = _sample_rate(r)
    configuration = r.bits(4)
    if configuration and configuration not in _CHANNELS:
        raise AacError(f"reserved channelConfiguration {configuration}")
    channels = _CHANNELS.get(configuration, 0)
    if object_type in (SBR, PS):
        sample_rate = _sample_rate(r)  # extensionSamplingFrequency: what the decoder outputs
        if _object_type(r) == 0:
            raise AacError("audio object type 0 (null)")
        if object_type == PS and channels == 1:
            channels = 2  # parametric stereo: a mono core decoded to two channels
    return AudioSpecificConfig(object_type, sample_rate, channels)


def audio_specific_config(object_type: int, sample_rate: int, channels: int) -> bytes:
    """Build an AudioSpecificConfig (§1.6.2.1) for a non-SBR object type (2 for AAC-LC).

    `sample_rate` in Hz uses its Table 1.18 index when it has one, else the explicit 24-bit form;
    `channels` must have a channelConfiguration (1..6, 7, 8, 24). GA object types get an all-zero
    GASpecificConfig. Raises AacError for values that cannot be written, and for object type 5 / 29
    (explicit SBR / PS needs a core configuration this does not model).
    """
    if not 1 <= object_type <= _MAX_OBJECT_TYPE or object_type in (SBR, PS, _ESCAPE_OBJECT_TYPE):
        raise AacError(f"cannot write audio object type {object_type}")
    if not 0 < sample_rate < 1 << 24:
        raise AacError(f"cannot write sample rate {sample_rate}")
    if channels not in _CONFIGURATION:
        raise AacError(f"no channelConfiguration for {channels} channels")
    w = BitWriter()
    if object_type >= _ESCAPE_OBJECT_TYPE:
        w.bits(5, _ESCAPE_OBJECT_TYPE)
        w.bits(6, object_type - 32)
    else:
        w.bits(5, object_type)
    if sample_rate in SAMPLE_RATES:
        w.bits(4, SAMPLE_RATES.index(sample_rate))
    else:
        w.bits(4, _EXPLICIT_RATE)
        w.bits(24, sample_rate)
    w.bits(4, _CONFIGURATION[channels])
    if object_type in _GA_OBJECT_TYPES:
        w.bits(3, 0)
    return w.getvalue()
