"""StreamForge media task: RTMP ingest → session lifecycle → ffmpeg ladder → HLS on S3."""
