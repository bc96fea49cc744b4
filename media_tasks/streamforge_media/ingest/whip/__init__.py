"""WHIP ingest adapter (RFC 9725): the HTTP endpoint and peer connections (`server`), the offer checks and
the codecs answered (`sdp`), aiortc's decoder hook that hands frames over undecoded (`passthrough`), and
WebRTC frames → tracks and access units (`frames`). The only place that knows WebRTC."""
