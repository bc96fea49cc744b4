"""H.265 / HEVC: the sequence parameter set (ITU-T H.265 §7.3.2.2) and the HEVCDecoderConfigurationRecord
(ISO/IEC 14496-15 §8.3.3.1, "hvcC").

As for H.264, the decoded size comes from the SPS (the conformance window, §7.4.3.2.1), never from what a
publisher declares. The SPS is parsed up to the bit depths; what follows (VUI etc.) is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamforge_media.codecs.bits import BitReader, unescape_rbsp
from streamforge_media.codecs.errors import CodecError

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
_HVCC_HEADER = 23  # configurationVersion .. numOfArrays (§8.3.3.1.1)
_MAX_SUB_LAYERS = 7
# SubWidthC, SubHeightC by ChromaArrayType (Table 6-1): the conformance window is in chroma samples.
_CHROMA_UNITS = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}


class HevcError(CodecError):
    """The bytes are not a usable HEVC SPS, parameter set or HEVCDecoderConfigurationRecord."""


@dataclass(frozen=True)
class HevcSpsInfo:
    """The general profile/tier/level, chroma format, bit depths (bits) and decoded size (pixels) of an SPS.

    `compatibility_flags` (32 bits) and `constraint_flags` (48 bits: progressive_source_flag through
    general_inbld_flag) are kept as read, for building an hvcC; `max_sub_layers` is 1..7.
    """

    profile_space: int
    high_tier: bool
    profile_idc: int
    level_idc: int
    compatibility_flags: int
    constraint_flags: int
    max_sub_layers: int
    temporal_id_nesting: bool
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int


def nal_type(nal: bytes) -> int:
    """nal_unit_type from the two-byte NAL unit header (§7.3.1.2); raises HevcError on a short unit."""
    if len(nal) < 2:
        raise HevcError("NAL unit shorter than its header")
    return (nal[0] >> 1) & 0x3F


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> None:
    """The sub-layer part of profile_tier_level(1, max_sub_layers_minus1) (§7.3.3), after general_level_idc."""
    present = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        if profile_present:
            r.skip(88)  # sub_layer profile space .. sub_layer_inbld_flag, as the general ones
        if level_present:
            r.skip(8)  # sub_layer_level_idc


def parse_sps(nal: bytes) -> HevcSpsInfo:
    """Parse one SPS NAL unit (with its two-byte NAL header, without start code or length) (§7.3.2.2).

    Width and height are pic_width/height_in_luma_samples minus the conformance window scaled by
    SubWidthC/SubHeightC (§7.4.3.2.1). Raises HevcError when the bytes are not an SPS, are truncated or
    hold out-of-range values. Multi-layer SPS extensions (nuh_layer_id > 0) are refused.
    """
    if nal_type(nal) != NAL_SPS:
        raise HevcError("not an SPS NAL unit")
    if (nal[0] & 1) or nal[1] >> 3:  # nuh_layer_id: SHVC / MV-HEVC layers change the SPS syntax
        raise HevcError("SPS of a layer other than the base layer")
    r = BitReader(unescape_rbsp(nal[2:]), HevcError, "SPS")
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.bits(3)
    if max_sub_layers_minus1 >= _MAX_SUB_LAYERS:
        raise HevcError(f"bad sps_max_sub_layers_minus1 {max_sub_layers_minus1}")
    temporal_id_nesting = r.flag()
    # profile_tier_level(1, sps_max_sub_layers_minus1), general part: 96 bits.
    profile_space = r.bits(2)
    high_tier = r.flag()
    profile_idc = r.bits(5)
    compatibility_flags = r.bits(32)
    constraint_flags = r.bits(48)
    level_idc = r.bits(8)
    _skip_profile_tier_level(r, max_sub_layers_minus1)
    if r.ue() > 15:
        raise HevcError("bad sps_seq_parameter_set_id")
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise HevcError(f"bad chroma_format_idc {chroma_format_idc}")
    separate_colour_plane = chroma_format_idc == 3 and r.flag()
    width = r.ue()
    height = r.ue()
    sub_width, sub_height = _CHROMA_UNITS[0 if separate_colour_plane else chroma_format_idc]
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
    bit_depth_luma = r.ue() + 8
    bit_depth_chroma = r.ue() + 8
    if bit_depth_luma > 16 or bit_depth_chroma > 16:
        raise HevcError(f"bad bit depth {bit_depth_luma}/{bit_depth_chroma}")
    if width <= 0 or height <= 0:
        raise HevcError(f"bad picture size {width}x{height}")
    return HevcSpsInfo(profile_space, high_tier, profile_idc, level_idc, compatibility_flags, constraint_flags,
                       max_sub_layers_minus1 + 1, temporal_id_nesting, chroma_format_idc,
                       bit_depth_luma, bit_depth_chroma, width, height)


def _check_record(hvcc: bytes) -> None:
    if len(hvcc) < _HVCC_HEADER or hvcc[0] != 1:
        raise HevcError("not an HEVCDecoderConfigurationRecord")


def parameter_sets(hvcc: bytes) -> list[tuple[int, bytes]]:
    """(nal_unit_type, NAL unit) of every parameter set in an HEVCDecoderConfigurationRecord, in order.

    §8.3.3.1: after the 23-byte header, numOfArrays arrays of (type, numNalus, (length16, nal)...).
    Raises HevcError when the record is not one or is truncated.
    """
    _check_record(hvcc)
    out: list[tuple[int, bytes]] = []
    pos = _HVCC_HEADER
    for _ in range(hvcc[22]):
        if pos + 3 > len(hvcc):
            raise HevcError("HEVCDecoderConfigurationRecord truncated")
        array_type = hvcc[pos] & 0x3F
        count = int.from_bytes(hvcc[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(hvcc):
                raise HevcError("HEVCDecoderConfigurationRecord truncated")
            size = int.from_bytes(hvcc[pos:pos + 2], "big")
            if pos + 2 + size > len(hvcc):
                raise HevcError("HEVCDecoderConfigurationRecord truncated")
            out.append((array_type, hvcc[pos + 2:pos + 2 + size]))
            pos += 2 + size
    return out


def decoder_config_size(hvcc: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the first SPS of an HEVCDecoderConfigurationRecord; raises HevcError."""
    for array_type, nal in parameter_sets(hvcc):
        if array_type == NAL_SPS:
            info = parse_sps(nal)
            return info.width, info.height
    raise HevcError("HEVCDecoderConfigurationRecord holds no SPS")


def nal_length_size(hvcc: bytes) -> int:
    """Bytes in each NAL unit length prefix of the samples (lengthSizeMinusOne + 1: 1, 2 or 4); raises HevcError."""
    _check_record(hvcc)
    size = (hvcc[21] & 0x03) + 1
    if size == 3:  # §8.3.3.1.2: lengthSizeMinusOne 2 is not allowed
        raise HevcError("HEVCDecoderConfigurationRecord with 3-byte NAL unit lengths")
    return size


def with_nal_length_size(hvcc: bytes, size: int = 4) -> bytes:
    """The record declaring `size`-byte NAL unit lengths (1, 2 or 4), all else unchanged; raises HevcError."""
    _check_record(hvcc)
    if size not in (1, 2, 4):
        raise HevcError(f"bad NAL unit length size {size}")
    return hvcc[:21] + bytes([(hvcc[21] & 0xFC) | (size - 1)]) + hvcc[22:]


def decoder_config_from_parameter_sets(vps: bytes, sps: bytes, pps: bytes) -> bytes:
    """An HEVCDecoderConfigurationRecord (14496-15 §8.3.3.1) holding one VPS, SPS and PPS, 4-byte lengths.

    For Annex B sources (WebRTC, MPEG-TS). Each argument is one NAL unit with its two-byte header and no
    start code. Profile, tier, level, chroma format and bit depths are copied from the SPS; the fields
    that need the VUI or the stream (min_spatial_segmentation_idc, parallelismType, avgFrameRate,
    constantFrameRate) are written as 0, "unknown". Raises HevcError on a wrong or unparsable unit.
    """
    info = parse_sps(sps)
    for nal, expected in ((vps, NAL_VPS), (pps, NAL_PPS)):
        if nal_type(nal) != expected:
            raise HevcError(f"expected NAL unit type {expected}, got {nal_type(nal)}")
    if max(len(vps), len(sps), len(pps)) > 0xFFFF:
        raise HevcError("parameter set longer than 65535 bytes")
    if max(info.bit_depth_luma, info.bit_depth_chroma) > 15:  # the record has 3 bits for each depth minus 8
        raise HevcError("bit depth above 15 does not fit an HEVCDecoderConfigurationRecord")
    out = bytearray([1, info.profile_space << 6 | info.high_tier << 5 | info.profile_idc])
    out += info.compatibility_flags.to_bytes(4, "big") + info.constraint_flags.to_bytes(6, "big")
    out += bytes([
        info.level_idc,
        0xF0, 0x00,  # reserved '1111', min_spatial_segmentation_idc 0
        0xFC,  # reserved, parallelismType 0 (unknown)
        0xFC | info.chroma_format_idc,
        0xF8 | (info.bit_depth_luma - 8),
        0xF8 | (info.bit_depth_chroma - 8),
        0x00, 0x00,  # avgFrameRate 0 (unknown)
        # constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
        info.max_sub_layers << 3 | info.temporal_id_nesting << 2 | 0x03,
        3,  # numOfArrays
    ])
    for nal_unit_type, nal in ((NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)):
        # array_completeness 1: every parameter set of this type is here (they may also come in-band).
        out += bytes([0x80 | nal_unit_type]) + (1).to_bytes(2, "big") + len(nal).to_bytes(2, "big") + nal
    return bytes(out)
