"""aiortc's decoder hook: hand the adapter each frame still encoded, so nothing is decoded in Python.

aiortc's `RTCRtpReceiver` runs a decoder thread that calls `aiortc.rtcrtpreceiver.get_decoder(codec)` and
puts whatever the decoder returns on the track's queue, where `MediaStreamTrack.recv()` picks it up.
`install()` replaces that module-level name with one that returns a `PassthroughDecoder` for H.264 and
Opus: the access unit aiortc's depacketiser and jitter buffer assembled comes out of `recv()` as an
`EncodedFrame` (Annex B H.264, or one Opus packet), stamped with the time it arrived.

`get_decoder` is internal to aiortc, so requirements.txt pins aiortc (1.16.0); `install()` fails loudly
when the pinned name is missing rather than silently decoding.
"""

from __future__ import annotations

import time
from typing import Any

import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver as receiver_module

from streamforge_media.ingest.whip.frames import EncodedFrame

PINNED_AIORTC = "1.16.0"
PASSTHROUGH_MIME_TYPES = frozenset({"video/h264", "audio/opus"})


class PassthroughDecoder:
    """aiortc's `Decoder` interface: `decode(jitter_frame)` → one `EncodedFrame`, no decoding."""

    def decode(self, encoded_frame: Any) -> list[Any]:
        return [EncodedFrame(bytes(encoded_frame.data), int(encoded_frame.timestamp), time.monotonic())]


_installed = False


def install() -> None:
    """Make every aiortc receiver in this process hand over H.264 and Opus undecoded; idempotent.

    Raises RuntimeError when aiortc is not the pinned version or no longer has the hook.
    """
    global _installed
    if _installed:
        return
    if aiortc.__version__ != PINNED_AIORTC or not callable(getattr(receiver_module, "get_decoder", None)):
        raise RuntimeError(f"WHIP ingest needs aiortc {PINNED_AIORTC} (its decoder hook is internal); "
                           f"found {aiortc.__version__}")
    original = receiver_module.get_decoder

    def get_decoder(codec: Any) -> Any:
        if codec.mimeType.lower() in PASSTHROUGH_MIME_TYPES:
            return PassthroughDecoder()
        return original(codec)

    receiver_module.get_decoder = get_decoder
    _installed = True


def gather_on(addresses: tuple[str, ...]) -> None:
    """Gather ICE candidates on these local addresses only (aioice's `get_host_addresses`, internal too).

    aioice otherwise takes every non-loopback address: a loopback-only test, or a task with several
    interfaces, names its own. Process-wide, like the decoder hook.
    """
    wanted = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in wanted if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
