"""Wiring: configuration → boto3-backed store, events and S3 → session manager → the ingest adapters
(RTMP, RTMPS, WHIP on the media HTTP port, SRT), each registered here and nowhere else."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from streamforge.events import SOURCE_MEDIA, EventBridgePublisher

from streamforge_media.config import MediaConfig
from streamforge_media.ingest.rtmp.server import RtmpServer
from streamforge_media.ingest.srt.server import SrtServer
from streamforge_media.ingest.whip.server import WhipEndpoint
from streamforge_media.publisher import S3ObjectStore
from streamforge_media.session import SessionManager
from streamforge_media.store import DynamoStreamStore

log = logging.getLogger("streamforge_media")

UPLOAD_THREADS = 16
ECS_METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"


def task_host(environ: dict[str, str] | None = None) -> str:
    """The address other tasks reach this one at: `STREAMFORGE_TASK_HOST`, else the task's private IPv4 from the
    ECS task metadata endpoint (v4, `Networks[].IPv4Addresses`), else the loopback (one local task)."""
    env = os.environ if environ is None else environ
    if env.get("STREAMFORGE_TASK_HOST"):
        return env["STREAMFORGE_TASK_HOST"]
    metadata = env.get(ECS_METADATA_ENV)
    if metadata:
        try:
            with urllib.request.urlopen(f"{metadata}/task", timeout=2) as response:  # the link-local metadata endpoint
                task = json.load(response)
            for container in task.get("Containers", []):
                for network in container.get("Networks", []):
                    if network.get("IPv4Addresses"):
                        return str(network["IPv4Addresses"][0])
        except (OSError, ValueError) as exc:
            log.warning("no task address from the ECS metadata endpoint: %s", exc)
    return "127.0.0.1"


class MediaTask:
    def __init__(self, config: MediaConfig, manager: SessionManager, executor: ThreadPoolExecutor) -> None:
        self.config = config
        self.manager = manager
        self.executor = executor
        self.server = RtmpServer(manager, config.limits)
        self.rtmps = RtmpServer(manager, config.limits) if config.rtmps_port >= 0 else None
        self.whip = WhipEndpoint(manager, config.whip) if config.http_port >= 0 else None
        self.srt = SrtServer(manager, config.srt) if config.srt_port >= 0 else None
        self.http: web.AppRunner | None = None
        self.http_port = 0

    @classmethod
    def from_config(cls, config: MediaConfig) -> MediaTask:
        executor = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="upload")
        manager = SessionManager(
            config,
            DynamoStreamStore(streams_table=config.streams_table, keys_table=config.stream_keys_table,
                              sessions_table=config.sessions_table),
            EventBridgePublisher(source=SOURCE_MEDIA, bus_name=config.event_bus_name,
                                 streams_table=config.streams_table),
            S3ObjectStore(config.media_bucket),
            executor,
        )
        return cls(config, manager, executor)

    async def start(self) -> None:
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.config
        await self.server.start(config.rtmp_host, config.rtmp_port)
        log.info("RTMP ingest ready on rtmp://%s:%d/live", config.rtmp_host, self.server.port)
        if self.rtmps is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(config.rtmps_cert_file, config.rtmps_key_file)
            await self.rtmps.start(config.rtmp_host, config.rtmps_port, tls=tls)
            log.info("RTMPS ingest ready on rtmps://%s:%d/live", config.rtmp_host, self.rtmps.port)
        if self.whip is not None:
            app = web.Application()
            self.whip.add_routes(app)
            self.manager.low_latency.add_routes(app)
            self.http = web.AppRunner(app, access_log=None)
            await self.http.setup()
            site = web.TCPSite(self.http, config.http_host, config.http_port)
            await site.start()
            self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            host = await asyncio.to_thread(task_host)
            self.manager.address = f"http://{host}:{self.http_port}"
            log.info("WHIP ingest and the LL-HLS origin ready on http://%s:%d (/whip/{stream_id}, /ll/{stream_id}/)",
                     config.http_host, self.http_port)
        if self.srt is not None:
            await self.srt.start(config.srt_host, config.srt_port)
            log.info("SRT ingest ready on srt://%s:%d", config.srt_host, self.srt.port)

    async def stop(self) -> None:
        await self.server.close()
        if self.rtmps is not None:
            await self.rtmps.close()
        if self.whip is not None:
            await self.whip.close()
        if self.http is not None:
            await self.http.cleanup()
        if self.srt is not None:
            await self.srt.close()
        await self.manager.shutdown()
        self.executor.shutdown(wait=True)
        log.info("media task stopped")


async def serve(config: MediaConfig) -> None:
    task = MediaTask.from_config(config)
    await task.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: ending live sessions")
    await task.stop()
