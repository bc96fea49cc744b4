"""`make dev`: run the whole platform on this machine until Ctrl-C.

Expects a synthesized `cdk.out/` (the Makefile synthesizes first). The emulator (local/emulators.py):
- `AWS_ENDPOINT_URL` set: that emulator; when it is a LocalStack, moto fills in what LocalStack lacks;
- `STREAMFORGE_EMULATOR=localstack`: a LocalStack this command installs (first use) and starts on the emulator
  port, with moto beside it in the same way;
- otherwise (`STREAMFORGE_EMULATOR=moto`, the default) an embedded moto server for everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from local import localstack
from local.emulators import MODES
from local.platform import LocalPlatform, PlatformConfig, Ports

READY_TIMEOUT_S = 120


async def run(endpoint_url: str | None) -> int:
    config = PlatformConfig(ports=Ports.from_env(), endpoint_url=endpoint_url,
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
    mode = os.environ.get("STREAMFORGE_EMULATOR", "moto")
    if mode not in MODES:
        sys.exit(f"STREAMFORGE_EMULATOR={mode}: expected one of {', '.join(MODES)}")
    with contextlib.ExitStack() as stack:
        endpoint_url = os.environ.get("AWS_ENDPOINT_URL") or None
        if endpoint_url is None and mode == "localstack":
            try:
                endpoint_url = stack.enter_context(localstack.running(Ports.from_env().emulator))
            except localstack.LocalStackUnavailable as error:
                sys.exit(f"LocalStack cannot run here: {error}")
        code = asyncio.run(run(endpoint_url))
    sys.exit(code)


if __name__ == "__main__":
    main()
