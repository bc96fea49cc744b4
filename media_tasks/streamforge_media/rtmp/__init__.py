"""RTMP ingest: handshake, chunk stream, AMF0 and the publish command flow."""
