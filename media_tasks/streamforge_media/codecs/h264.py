"""H.264: the sequence parameter set (ITU-T H.264 §7.3.2.1.1) and the AVCDecoderConfigurationRecord
(ISO/IEC 14496-15 §5.3.3.1, "avcC").

The size of a video track is read from the SPS inside its decoder configuration: it is what the decoder
will output, whatever the publisher declares. Only what is needed to reach the frame-cropping fields is
parsed; the VUI is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamforge_media.codecs.bits import BitReader, unescape_rbsp
from streamforge_media.codecs.errors import CodecError

__all__ = [
    "H264Error",
    "SpsInfo",
    "decoder_config_from_parameter_sets",
    "decoder_config_size",
    "first_sps",
    "nal_length_size",
    "parse_sps",
    "unescape_rbsp",
    "with_nal_length_size",
]

# profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling matrices.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
# profile_idc values whose avcC carries the chroma format / bit depth extension (14496-15 §5.3.3.1.2).
_AVCC_EXTENSION_PROFILES = frozenset({100, 110, 122, 144})
NAL_SPS = 7
NAL_PPS = 8
_AVCC_HEADER = 6  # configurationVersion .. numOfSequenceParameterSets


class H264Error(CodecError):
    """The bytes are not a usable SPS, PPS or AVCDecoderConfigurationRecord."""


@dataclass(frozen=True)
class SpsInfo:
    """What an SPS says about the decoded picture: sizes in pixels after cropping, bit depths in bits."""

    profile_idc: int
    level_idc: int
    chroma_format_idc: int
    frame_mbs_only: bool
    width: int
    height: int
    bit_depth_luma: int = 8
    bit_depth_chroma: int = 8


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last_scale + reader.se() + 256) % 256
        last_scale = next_scale if next_scale != 0 else last_scale


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse one SPS NAL unit (with its one-byte NAL header, without a start code or length).

    §7.3.2.1.1; the size is the frame size minus the frame-cropping rectangle (§7.4.2.1.1, CropUnitX/Y).
    Raises H264Error when the bytes are not an SPS or are truncated or out of range.
    """
    if not nal or nal[0] & 0x1F != NAL_SPS:
        raise H264Error("not an SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[1:]), H264Error, "SPS")
    profile_idc = r.bits(8)
    r.skip(8)  # constraint_set flags, reserved bits
    level_idc = r.bits(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc, separate_colour_plane = 1, False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise H264Error(f"bad chroma_format_idc {chroma_format_idc}")
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma = r.ue() + 8
        bit_depth_chroma = r.ue() + 8
        if bit_depth_luma > 14 or bit_depth_chroma > 14:
            raise H264Error(f"bad bit depth {bit_depth_luma}/{bit_depth_chroma}")
        r.flag()  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():  # seq_scaling_list_present_flag[i]
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = r.ue()
    if pic_order_cnt_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        r.flag()  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        cycle = r.ue()
        if cycle > 255:
            raise H264Error(f"bad num_ref_frames_in_pic_order_cnt_cycle {cycle}")
        for _ in range(cycle):
            r.se()
    elif pic_order_cnt_type != 2:
        raise H264Error(f"bad pic_order_cnt_type {pic_order_cnt_type}")
    r.ue()  # max_num_ref_frames
    r.flag()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.flag()  # mb_adaptive_frame_field_flag
    r.flag()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if r.flag():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
        if chroma_array_type == 0:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            sub_width = 1 if chroma_format_idc == 3 else 2
            sub_height = 2 if chroma_format_idc == 1 else 1
            unit_x, unit_y = sub_width, sub_height * (2 - frame_mbs_only)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise H264Error(f"bad picture size {width}x{height}")
    return SpsInfo(profile_idc, level_idc, chroma_format_idc, frame_mbs_only, width, height,
                   bit_depth_luma, bit_depth_chroma)


def _check_record(record: bytes) -> None:
    if len(record) < _AVCC_HEADER or record[0] != 1:
        raise H264Error("not an AVCDecoderConfigurationRecord")


def first_sps(record: bytes) -> bytes:
    """The first SPS NAL unit of an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1); raises H264Error."""
    _check_record(record)
    if record[5] & 0x1F == 0:
        raise H264Error("AVCDecoderConfigurationRecord holds no SPS")
    if len(record) < _AVCC_HEADER + 2:
        raise H264Error("AVCDecoderConfigurationRecord truncated")
    size = int.from_bytes(record[6:8], "big")
    if size == 0 or len(record) < 8 + size:
        raise H264Error("AVCDecoderConfigurationRecord truncated")
    return record[8:8 + size]


def decoder_config_size(record: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the first SPS of an AVCDecoderConfigurationRecord; raises H264Error."""
    info = parse_sps(first_sps(record))
    return info.width, info.height


def nal_length_size(record: bytes) -> int:
    """Bytes in each NAL unit length prefix of the samples (lengthSizeMinusOne + 1: 1, 2 or 4); raises H264Error."""
    _check_record(record)
    size = (record[4] & 0x03) + 1
    if size == 3:  # 14496-15 §5.3.3.1.2: lengthSizeMinusOne 2 is not allowed
        raise H264Error("AVCDecoderConfigurationRecord with 3-byte NAL unit lengths")
    return size


def with_nal_length_size(record: bytes, size: int = 4) -> bytes:
    """The record declaring `size`-byte NAL unit lengths (1, 2 or 4), all else unchanged; raises H264Error.

    The neutral access units always carry 4-byte lengths, so a record copied from a source that used
    shorter ones must say so before it goes into a container with those units.
    """
    _check_record(record)
    if size not in (1, 2, 4):
        raise H264Error(f"bad NAL unit length size {size}")
    return record[:4] + bytes([0xFC | (size - 1)]) + record[5:]


def decoder_config_from_parameter_sets(sps: bytes, pps: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord (14496-15 §5.3.3.1) holding one SPS and one PPS, 4-byte lengths.

    For sources that send parameter sets in-band (Annex B: WebRTC, MPEG-TS). `sps` and `pps` are single
    NAL units with their header byte and no start code. Raises H264Error when `sps` does not parse or
    `pps` is not a PPS.
    """
    info = parse_sps(sps)
    if not pps or pps[0] & 0x1F != NAL_PPS:
        raise H264Error("not a PPS NAL unit")
    if len(sps) > 0xFFFF or len(pps) > 0xFFFF:
        raise H264Error("parameter set longer than 65535 bytes")
    # Profile, constraint flags and level are copied from the SPS (§5.3.3.1.2); 0xFF: 4-byte lengths; 0xE1: one SPS.
    out = bytearray([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
    out += len(sps).to_bytes(2, "big") + sps
    out += b"\x01" + len(pps).to_bytes(2, "big") + pps
    if info.profile_idc in _AVCC_EXTENSION_PROFILES:
        out += bytes([0xFC | info.chroma_format_idc, 0xF8 | (info.bit_depth_luma - 8),
                      0xF8 | (info.bit_depth_chroma - 8), 0])  # no SPS extensions
    return bytes(out)
