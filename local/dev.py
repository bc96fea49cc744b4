"""`make dev`: run the whole platform on this machine until Ctrl-C.

Expects a synthesized `cdk.out/` (the Makefile synthesizes first). Uses `AWS_ENDPOINT_URL` as the
emulator when it is set (LocalStack, say); otherwise embeds a moto server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from local.platform import LocalPlatform, PlatformConfig, Ports

READY_TIMEOUT_S = 120


async def run() -> int:
    config = PlatformConfig(ports=Ports.from_env(), endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                            public_host=os.environ.get("STREAMFORGE_PUBLIC_HOST", "127.0.0.1"))
    platform = LocalPlatform(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await platform.start()
        await platform.wait_healthy(READY_TIMEOUT_S)
        urls = config.urls
        print("\nStreamForge is up:", flush=True)
        for name in ("api", "docs", "websocket", "rtmp", "rtmps", "whip", "srt", "cdn", "dashboard", "emulator"):
            print(f"  {name:<10} {urls[name]}", flush=True)
        print("Publish with: ffmpeg -re -i input.mp4 -c:v libx264 -c:a aac -f flv "
              f"{urls['rtmp']}/<stream_key>\nCtrl-C stops everything.\n", flush=True)
        await stop.wait()
        return 0
    except (TimeoutError, RuntimeError, OSError) as error:
        logging.getLogger("streamforge.local").error("platform failed to start: %s", error)
        return 1
    finally:
        print("stopping…", flush=True)
        await platform.stop()


def main() -> None:
    logging.basicConfig(level=os.environ.get("STREAMFORGE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    # Boto and the emulator are chatty at INFO; their warnings still show.
    for noisy in ("botocore", "werkzeug", "moto", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
