"""A WebSocket client that listens in a background thread, for tests that publish meanwhile."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import aiohttp


class Listener:
    def __init__(self, url: str, *, subscribe: list[str]) -> None:
        self.url = url
        self.messages: list[dict[str, Any]] = []
        self._subscribe = subscribe
        self._connected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),), daemon=True)
        self.error: BaseException | None = None

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as socket:
                for stream_id in self._subscribe:
                    await socket.send_json({"action": "subscribe", "stream_id": stream_id})
                self._connected.set()
                receiving = asyncio.ensure_future(self._receive(socket))
                await self._stop.wait()
                receiving.cancel()
        except BaseException as error:
            self.error = error
            self._connected.set()

    async def _receive(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(message.data))

    def __enter__(self) -> Listener:
        self._thread.start()
        if not self._connected.wait(15) or self.error:
            raise RuntimeError(f"WebSocket listener could not connect: {self.error}")
        return self

    def __exit__(self, *_: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def of_type(self, kind: str, stream_id: str) -> list[dict[str, Any]]:
        return [m for m in list(self.messages) if m.get("type") == kind and m.get("stream_id") == stream_id]
