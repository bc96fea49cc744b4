"""One media task in its own process for the ingest benchmark: the real session manager, transcoder and
packager with the in-memory store and S3 of the unit tests, RTMP, WHIP (loopback ICE) and SRT listening on free
ports. Prints `{"rtmp", "whip", "srt"}` ports as one JSON line, then, once one publish has come and gone, the
process's own CPU and its children's (the transcoder) in seconds, and when the stream was first playable
(time.monotonic(), the same clock in every process of the machine)."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for extra in ("media_tasks", "layers/shared/python", "tests/unit/media"):
    sys.path.insert(0, str(REPO / extra))

from aiohttp import web  # noqa: E402
from media_support import STREAM_ID, make_config, running_harness  # noqa: E402
from streamforge_media.ingest.srt.server import SrtServer  # noqa: E402
from streamforge_media.ingest.whip import passthrough  # noqa: E402
from streamforge_media.ingest.whip.server import WhipEndpoint  # noqa: E402
from streamforge_media.ladder import DEFAULT_LADDER  # noqa: E402


def cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def main() -> None:
    passthrough.gather_on(("127.0.0.1",))
    with tempfile.TemporaryDirectory() as work:
        config = make_config(Path(work), reconnect_grace_s=0, ladder=DEFAULT_LADDER, key_poll_s=2.0,
                             health_interval_s=10.0)
        async with running_harness(config) as h:
            whip = WhipEndpoint(h.manager)
            app = web.Application()
            whip.add_routes(app)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            srt = SrtServer(h.manager)
            await srt.start("127.0.0.1", 0)
            whip_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            print(json.dumps({"rtmp": h.server.port, "whip": whip_port, "srt": srt.port}), flush=True)
            first_playable = None
            seen = False
            while not (seen and not h.manager.streams):
                seen = seen or bool(h.manager.streams)
                stored = h.objects.keys(f"live/{STREAM_ID}/")
                if first_playable is None and f"live/{STREAM_ID}/master.m3u8" in stored and any(
                        k.endswith((".m4s", ".ts")) for k in stored):  # segments are stored before playlists
                    first_playable = time.monotonic()
                await asyncio.sleep(0.05)
            await srt.close()
            await whip.close()
            await runner.cleanup()
        print(json.dumps({"cpu_s": cpu_s(), "first_playable_at": first_playable}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
