"""SDP offers of WHIP publishers: what is checked before any session or socket exists, and the codecs answered.

A WHIP offer (RFC 9725 §4.2) is an SDP offer (RFC 8866, with the JSEP rules of RFC 9429) with one audio
and/or one video section that the client sends. StreamForge takes H.264 video and Opus audio only: those
reach the transcoder without decoding in Python (the ladder re-encodes anyway). An offer that lists VP8
first is still answered with H.264 when it offers H.264 at all, because the answer's codec order is set
with `setCodecPreferences` on every transceiver (aiortc otherwise answers the offer's first codec).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCRtpCodecCapability, RTCRtpReceiver
from aiortc.sdp import SessionDescription

from streamforge_media.media import MediaKind

VIDEO_MIME_TYPES = ("video/h264",)
AUDIO_MIME_TYPES = ("audio/opus",)
_RTX = "video/rtx"
_SENDING = (None, "sendonly", "sendrecv")


class OfferError(ValueError):
    """An offer that cannot be answered: `status` is the HTTP status to send (400 or 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Offer:
    """A checked offer: its SDP text and the media kinds it sends (at least one)."""

    sdp: str
    kinds: frozenset[MediaKind]


def check_offer(text: str) -> Offer:
    """Parse and check a publisher's offer; raises OfferError.

    400 (malformed, RFC 9725 §4.2): not parseable SDP, no audio or video section, a media section without
    ICE credentials (RFC 8839 §5.4), DTLS fingerprint (RFC 8842 §5) or RTCP multiplexing (RFC 5761),
    or one that does not send. 422 (well-formed, not acceptable): video without H.264, audio without Opus.
    """
    try:
        description = SessionDescription.parse(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise OfferError(400, "the body is not a parseable SDP offer") from exc
    kinds: set[MediaKind] = set()
    for media in description.media:
        if media.kind not in ("audio", "video") or media.port == 0:
            continue
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError(400, f"the {media.kind} section has no ICE username fragment or password")
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError(400, f"the {media.kind} section has no DTLS fingerprint")
        if not media.rtcp_mux:
            raise OfferError(400, f"the {media.kind} section does not multiplex RTCP (a=rtcp-mux)")
        if media.direction not in _SENDING:
            raise OfferError(400, f"the {media.kind} section does not send (direction {media.direction})")
        wanted = VIDEO_MIME_TYPES if media.kind == "video" else AUDIO_MIME_TYPES
        if not any(codec.mimeType.lower() in wanted for codec in media.rtp.codecs):
            raise OfferError(422, f"the {media.kind} section offers none of {', '.join(wanted)}")
        kinds.add(MediaKind(media.kind))
    if not kinds:
        raise OfferError(400, "the offer sends neither audio nor video")
    return Offer(text, frozenset(kinds))


def codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """The codecs to answer for a transceiver of `kind` ("audio"/"video"): Opus, or H.264 with its RTX."""
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None
    wanted = (*VIDEO_MIME_TYPES, _RTX) if kind == "video" else AUDIO_MIME_TYPES
    return [codec for codec in capabilities.codecs if codec.mimeType.lower() in wanted]


def advertise(answer: str, public_ip: str) -> str:
    """`answer` with its host candidates' addresses (RFC 8839 §5.1 `a=candidate`) and the `c=` lines
    (RFC 8866 §5.7) replaced by `public_ip`, for a task behind a 1:1 NAT; ports are kept (the NAT keeps them)."""
    lines = []
    for line in answer.split("\r\n"):
        if line.startswith("a=candidate:") and " typ host" in line:
            fields = line.split(" ")
            fields[4] = public_ip  # foundation component transport priority ADDRESS port typ host
            line = " ".join(fields)
        elif line.startswith("c=IN IP4 "):
            line = f"c=IN IP4 {public_ip}"
        lines.append(line)
    return "\r\n".join(lines)
