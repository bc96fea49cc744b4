"""RTMP ingest adapter: handshake, chunk stream, AMF0/AMF3, the sans-I/O publish flow (`protocol`), FLV tags →
tracks and access units (`flv`), and the asyncio server (`server`). The only place, with the transcoder's FLV
input writer, that knows RTMP or FLV."""
