"""Picture size from an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1, §7.4.2.1.1).

Used when a publisher's onMetaData carries no width/height: the size is read from the SPS inside the
AVCDecoderConfigurationRecord of the FLV AVC sequence header (the first video tag of every encoder).
Only what is needed to reach the frame-cropping fields is parsed; the VUI is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamforge_media import flv

# profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling matrices.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_NAL_SPS = 7
_MAX_EXP_GOLOMB_ZEROS = 31


class H264Error(ValueError):
    """The bytes are not a usable SPS / AVC sequence header."""


@dataclass(frozen=True)
class SpsInfo:
    profile_idc: int
    level_idc: int
    chroma_format_idc: int
    frame_mbs_only: bool
    width: int
    height: int


def unescape_rbsp(data: bytes) -> bytes:
    """Drop the emulation-prevention byte of every 0x00 0x00 0x03 sequence (§7.4.1)."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._size = len(data) * 8
        self._pos = 0

    def bits(self, count: int) -> int:
        if self._pos + count > self._size:
            raise H264Error("SPS truncated")
        self._pos += count
        return (self._value >> (self._size - self._pos)) & ((1 << count) - 1)

    def flag(self) -> bool:
        return self.bits(1) == 1

    def ue(self) -> int:
        zeros = 0
        while self.bits(1) == 0:
            zeros += 1
            if zeros > _MAX_EXP_GOLOMB_ZEROS:
                raise H264Error("exp-Golomb code too long")
        return (1 << zeros) - 1 + (self.bits(zeros) if zeros else 0)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last_scale + reader.se() + 256) % 256
        last_scale = next_scale if next_scale != 0 else last_scale


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse one SPS NAL unit (with its one-byte NAL header, without a start code)."""
    if not nal or nal[0] & 0x1F != _NAL_SPS:
        raise H264Error("not an SPS NAL unit")
    r = _BitReader(unescape_rbsp(nal[1:]))
    profile_idc = r.bits(8)
    r.bits(8)  # constraint_set flags, reserved bits
    level_idc = r.bits(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc, separate_colour_plane = 1, False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise H264Error(f"bad chroma_format_idc {chroma_format_idc}")
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
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
    return SpsInfo(profile_idc, level_idc, chroma_format_idc, frame_mbs_only, width, height)


def first_sps(record: bytes) -> bytes:
    """The first SPS NAL unit of an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1)."""
    if len(record) < 7 or record[0] != 1:
        raise H264Error("not an AVCDecoderConfigurationRecord")
    if record[5] & 0x1F == 0:
        raise H264Error("AVCDecoderConfigurationRecord holds no SPS")
    size = int.from_bytes(record[6:8], "big")
    if size == 0 or len(record) < 8 + size:
        raise H264Error("AVCDecoderConfigurationRecord truncated")
    return record[8:8 + size]


def sequence_header_size(payload: bytes) -> tuple[int, int]:
    """Width and height from an FLV AVC sequence header tag body (AVCPacketType 0); raises H264Error."""
    if len(payload) < 5 or not flv.is_avc_sequence_header(payload):
        raise H264Error("not an AVC sequence header")
    info = parse_sps(first_sps(payload[5:]))
    return info.width, info.height
