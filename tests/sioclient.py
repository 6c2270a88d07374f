"""A python-socketio test client that records every event, so tests await events, never sleep."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import socketio


class Recorder:
    """A real Socket.IO client; `expect(event)` waits for the next unseen event of that name."""

    def __init__(self, url: str, *, transports: list[str] | None = None) -> None:
        self.url = url
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self._queues: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.log: list[tuple[str, Any]] = []  # every event received, in order
        self.sio.on("*", self._record)
        self.disconnected = asyncio.Event()
        self.sio.on("disconnect", self._on_disconnect)

    async def _record(self, event: str, *args: Any) -> None:
        data = args[0] if args else None
        self.log.append((event, data))
        self._queues[event].put_nowait(data)

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def connect(self, **kwargs: Any) -> Recorder:
        await self.sio.connect(self.url, transports=self.transports, **kwargs)
        return self

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid()
        assert sid is not None
        return sid

    async def emit(self, event: str, data: Any = None) -> None:
        if data is None:
            await self.sio.emit(event)
        else:
            await self.sio.emit(event, data)

    async def expect(self, event: str, timeout: float = 10) -> Any:
        return await asyncio.wait_for(self._queues[event].get(), timeout)

    def pending(self, event: str) -> int:
        """Events of that name received but not yet expected."""
        return self._queues[event].qsize()

    async def register(self, device_id: str, **extra: Any) -> dict[str, Any]:
        await self.emit("ws:connect", {"deviceId": device_id, **extra})
        connected: dict[str, Any] = await self.expect("ws:connected")
        return connected

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def eventually(check: Any, timeout: float = 10, interval: float = 0.05) -> Any:
    """Poll an async condition until it returns something truthy (for effects with no event).

    Used only for database rows written after the server has already answered the client.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(interval)
