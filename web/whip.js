// Publishing from this browser over WebRTC with WHIP (RFC 9725): the camera and microphone go to the
// stream's whip_url with its key as a Bearer token (never in the URL). H.264 is asked for, because the
// media task takes H.264 and Opus only; every ICE candidate is sent in the offer (no trickle).

const GATHER_TIMEOUT_MS = 3000;

function preferH264(transceiver) {
  if (!RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const codecs = RTCRtpSender.getCapabilities("video").codecs;
  const h264 = codecs.filter((c) => /video\/h264/i.test(c.mimeType));
  // Constrained Baseline with packetization-mode 1 first: what the server and every decoder take.
  h264.sort((a, b) => rank(a) - rank(b));
  const rtx = codecs.filter((c) => /video\/rtx/i.test(c.mimeType));
  if (h264.length) transceiver.setCodecPreferences([...h264, ...rtx]);
}

function rank(codec) {
  const fmtp = codec.sdpFmtpLine || "";
  return (fmtp.includes("packetization-mode=1") ? 0 : 2) + (/profile-level-id=42e0/i.test(fmtp) ? 0 : 1);
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); } };
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

export async function publishCamera(whipUrl, streamKey, { onState = () => {} } = {}) {
  const media = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }, audio: true });
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  for (const track of media.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [media] });
    if (track.kind === "video") preferH264(transceiver);
  }
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch(whipUrl, { method: "POST", body: pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${streamKey}` } });
    if (response.status !== 201) {
      let message = `the ingest answered ${response.status}`;
      try { message = (await response.json()).error.message; } catch { /* not JSON */ }
      throw new Error(message);
    }
    const resource = new URL(response.headers.get("Location"), whipUrl).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    return {
      media,
      async stop() {
        try {
          await fetch(resource, { method: "DELETE", headers: { Authorization: `Bearer ${streamKey}` } });
        } finally {
          pc.close();
          media.getTracks().forEach((t) => t.stop());
        }
      },
    };
  } catch (error) {
    pc.close();
    media.getTracks().forEach((t) => t.stop());
    throw error;
  }
}
