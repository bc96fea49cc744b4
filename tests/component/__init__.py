"""The component tier: one part of StreamForge with its real neighbours on this machine.

A component test may open loopback sockets (a media task's RTMP, SRT or WHIP listener, the local CDN) and start
processes (ffmpeg, GStreamer publishers, a fresh interpreter), which the unit tier forbids. It starts no platform
and no emulator server: what it needs from AWS is in-process (`moto.mock_aws`) or faked.
"""
