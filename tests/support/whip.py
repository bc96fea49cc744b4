"""A real WHIP client for the tests: aiortc publishing a pre-encoded H.264 + Opus file, nothing decoded.

`encode_source` makes the file with ffmpeg (H.264 Constrained Baseline without B-frames, the profile
aiortc sends, and Opus at 48 kHz) in MPEG-TS: aiortc 1.16's `H264Encoder.pack` splits packets at Annex B
start codes, so a Matroska or MP4 source (length-prefixed NAL units) would reach the server as garbage.
`WhipPublisher` POSTs the offer, keeps the peer connection up while the file plays, and DELETEs the
resource. ICE runs on loopback: the tests call
`streamforge_media.ingest.whip.passthrough.gather_on(("127.0.0.1",))`, which covers this client too.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from multidict import CIMultiDict


def encode_source(path: Path, seconds: float, *, size: str = "320x240", rate: int = 30, gop: int = 60) -> Path:
    """An H.264 (baseline, no B-frames, keyframe every `gop` frames) + Opus MPEG-TS file of `seconds`."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                    "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", str(gop), "-preset", "veryfast",
                    "-pix_fmt", "yuv420p", "-c:a", "libopus", "-ar", "48000", "-f", "mpegts", str(path)], check=True)
    return path


@dataclass
class WhipAnswer:
    status: int
    headers: CIMultiDict[str]
    body: str


@dataclass
class WhipPublisher:
    """One publish: `offer()` makes the local offer (VP8 listed first when `vp8_first`), `post()` sends it."""

    url: str
    key: str | None
    source: Path | None = None
    vp8_first: bool = False
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[])))
    player: Any = None
    resource: str | None = None

    async def offer(self) -> str:
        if self.source is not None:
            self.player = MediaPlayer(str(self.source), decode=False)
            tracks = [self.player.audio, self.player.video]
        else:
            tracks = []
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            if track.kind == "video":
                codecs = RTCRtpSender.getCapabilities("video").codecs
                h264 = [c for c in codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]
                vp8 = [c for c in codecs if c.mimeType.lower() == "video/vp8"]
                transceiver.setCodecPreferences(vp8 + h264 if self.vp8_first else h264)
        if not tracks:
            self.pc.addTransceiver("video", direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def post(self, http: aiohttp.ClientSession, sdp: str | None = None,
                   content_type: str = "application/sdp") -> WhipAnswer:
        body = await self.offer() if sdp is None else sdp
        headers = {"Content-Type": content_type}
        if self.key is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        async with http.post(self.url, data=body.encode(), headers=headers) as response:
            answer = WhipAnswer(response.status, CIMultiDict(response.headers), await response.text())
        if answer.status == 201:
            self.resource = str(aiohttp.client.URL(self.url).join(aiohttp.client.URL(answer.headers["Location"])))
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.body, type="answer"))
        return answer

    async def delete(self, http: aiohttp.ClientSession, key: str | None = None) -> int:
        assert self.resource is not None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with http.delete(self.resource, headers=headers) as response:
            return response.status

    async def wait_connected(self, timeout_s: float = 15.0) -> None:
        """Until the peer connection is up (raises AssertionError when it fails, TimeoutError at the deadline)."""
        changed = asyncio.Event()
        self.pc.on("connectionstatechange", changed.set)
        async with asyncio.timeout(timeout_s):
            while self.pc.connectionState != "connected":
                if self.pc.connectionState in ("failed", "closed"):
                    raise AssertionError(f"WebRTC connection {self.pc.connectionState}")
                changed.clear()
                await changed.wait()

    async def close(self) -> None:
        await self.pc.close()


async def publish_file(url: str, key: str, source: Path) -> int:
    """Publish `source` until it ends, then DELETE; the DELETE's status (0 when the POST was refused)."""
    async with aiohttp.ClientSession() as http:
        publisher = WhipPublisher(url, key, source)
        answer = await publisher.post(http)
        if answer.status != 201:
            await publisher.close()
            return 0
        ended = asyncio.Event()
        publisher.player.video.on("ended", ended.set)
        await ended.wait()
        status = await publisher.delete(http)
        await publisher.close()
        return status


if __name__ == "__main__":  # python -m tests.support.whip URL KEY FILE: a WHIP publisher in its own process
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "media_tasks"))
    from streamforge_media.ingest.whip import passthrough

    passthrough.gather_on(("127.0.0.1",))
    sys.exit(0 if asyncio.run(publish_file(sys.argv[1], sys.argv[2], Path(sys.argv[3]))) == 200 else 1)
