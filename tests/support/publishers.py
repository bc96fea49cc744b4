"""The publishers the tests use, as a broadcaster would run them: ffmpeg or GStreamer sending a test pattern and a
tone over RTMP(S), or ffmpeg over SRT (MPEG-TS). One command line per tool; `*_publisher` starts it blocking-style
(`subprocess.Popen`, for tests of the platform in other processes), `start_*` on the event loop (for a media task
running in the test's own loop).

Publishers of other shapes (the OBS-like field variety, WHIP) are built where they are the subject of a test.
"""

from __future__ import annotations

import asyncio
import subprocess


def ffmpeg_publish_args(url: str, seconds: float, *, size: str = "320x240", rate: int = 30, keyframe_s: float = 1.0,
                        video_kbps: int | None = None, audio_kbps: int | None = 64, audio: bool = True,
                        container: str = "flv") -> list[str]:
    """H.264 (4:2:0, as OBS sends it) and AAC at real-time pace, in FLV (RTMP, RTMPS) or `container="mpegts"`
    (SRT); `audio=False` for a video-only source."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
             "-g", str(round(keyframe_s * rate)), "-pix_fmt", "yuv420p"]
    if video_kbps is not None:
        args += ["-b:v", f"{video_kbps}k"]
    if audio:
        args += ["-c:a", "aac", *(["-b:a", f"{audio_kbps}k"] if audio_kbps is not None else [])]
    return [*args, "-f", container, url]


def ffmpeg_publisher(url: str, seconds: float, *, size: str = "1280x720", rate: int = 30) -> subprocess.Popen[bytes]:
    """A broadcast as the platform tests send it: 2 s keyframes (the ladder's GOP), 1.5 Mb/s."""
    args = ffmpeg_publish_args(url, seconds, size=size, rate=rate, keyframe_s=2, video_kbps=1500, audio_kbps=96)
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def start_ffmpeg(url: str, seconds: float, *, size: str = "320x240", rate: int = 30, audio: bool = True,
                       container: str = "flv") -> asyncio.subprocess.Process:
    """A small, cheap broadcast for an in-process media task: 320x240, 1 s keyframes."""
    args = ffmpeg_publish_args(url, seconds, size=size, rate=rate, audio=audio, container=container)
    return await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


def gstreamer_publish_args(url: str, seconds: float, *, width: int = 640, height: int = 360, rate: int = 30,
                           keyframe_s: float = 2.0, sink: str = "rtmp2sink", audio: bool = True) -> list[str]:
    """GStreamer's x264enc into flvmux; `sink` is rtmp2sink (GStreamer's own RTMP) or rtmpsink (librtmp)."""
    location = f"location={url}" + (" live=1" if sink == "rtmpsink" else "")
    args = ["gst-launch-1.0", "-q", "-e",
            "videotestsrc", "is-live=true", f"num-buffers={int(seconds * rate)}", "!",
            f"video/x-raw,width={width},height={height},framerate={rate}/1", "!",
            "x264enc", "tune=zerolatency", "speed-preset=ultrafast", f"key-int-max={round(keyframe_s * rate)}",
            "bitrate=800", "!", "h264parse", "!", "flvmux", "name=mux", "streamable=true", "!", sink, location]
    if audio:
        args += ["audiotestsrc", "is-live=true", f"num-buffers={int(seconds * 48000 / 1024) + 1}", "!",
                 "audio/x-raw,rate=48000", "!", "avenc_aac", "!", "aacparse", "!", "mux."]
    return args


def gstreamer_publisher(url: str, seconds: float, *, width: int = 640, height: int = 360,
                        rate: int = 30) -> subprocess.Popen[bytes]:
    args = gstreamer_publish_args(url, seconds, width=width, height=height, rate=rate)
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def start_gstreamer(url: str, seconds: float, *, sink: str = "rtmp2sink",
                          audio: bool = True) -> asyncio.subprocess.Process:
    """A 320x240 GStreamer broadcast, 1 s keyframes, for an in-process media task."""
    args = gstreamer_publish_args(url, seconds, width=320, height=240, keyframe_s=1, sink=sink, audio=audio)
    return await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
