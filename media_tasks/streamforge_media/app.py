"""Wiring: configuration → boto3-backed store, events and S3 → session manager → RTMP server."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from streamforge.events import SOURCE_MEDIA, EventBridgePublisher

from streamforge_media.config import MediaConfig
from streamforge_media.ingest.rtmp.server import RtmpServer
from streamforge_media.publisher import S3ObjectStore
from streamforge_media.session import SessionManager
from streamforge_media.store import DynamoStreamStore

log = logging.getLogger("streamforge_media")

UPLOAD_THREADS = 16


class MediaTask:
    def __init__(self, config: MediaConfig, manager: SessionManager, executor: ThreadPoolExecutor) -> None:
        self.config = config
        self.manager = manager
        self.executor = executor
        self.server = RtmpServer(manager, config.limits)

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
        await self.server.start(self.config.rtmp_host, self.config.rtmp_port)
        log.info("RTMP ingest ready on rtmp://%s:%d/live", self.config.rtmp_host, self.server.port)

    async def stop(self) -> None:
        await self.server.close()
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
