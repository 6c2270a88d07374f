"""Room sizes across processes (`room:joined {clients}`): each process publishes its own.

Each process writes the number of its sockets in each room it holds into one Redis hash per
room (`tuiz:presence:<room>`, a field per process) as soon as that number changes, and keeps
`tuiz:alive:<process>` alive while it runs. A room's size is this process's own count plus the
fields of the processes still alive, so a process that died stops counting within
`ALIVE_MS`. Every beat each process writes all its rooms again, so a Redis that restarted
empty is whole again within a second. With Redis away a process counts its own sockets only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from tuiz.logs import get_logger

log = get_logger(__name__)

ALIVE_MS = 5000
READ_TIMEOUT = 0.25  # a room:joined never waits longer than this on Redis


def room_key(room: str) -> str:
    return f"tuiz:presence:{room}"


def alive_key(owner: str) -> str:
    return f"tuiz:alive:{owner}"


class Presence:
    def __init__(
        self, redis: Any, owner: str, rooms: Callable[[], Mapping[Any, Mapping[str, Any]]]
    ) -> None:
        """`rooms()`: this process's Socket.IO rooms of the default namespace (room -> sids)."""
        self.redis = redis
        self.owner = owner
        self.rooms = rooms
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def changed(self, room: str) -> None:
        """This process's membership of `room` changed (called by the Socket.IO manager)."""
        self._dirty.add(room)
        self._wake.set()

    async def size(self, room: str, sid: str | None = None) -> int:
        """Sockets in `room` on every live process. `sid` (just put in the room) counts even
        if the process holding it has not written its count yet."""
        members = self.rooms().get(room, {})
        own = len(members) + (1 if sid is not None and sid not in members else 0)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                counts = await self.redis.hgetall(room_key(room))
                others = {k.decode(): int(v) for k, v in counts.items() if k.decode() != self.owner}
                if not others:
                    return own
                alive = await self.redis.mget([alive_key(o) for o in others])
        except Exception:
            return own  # Redis away: what this process knows
        return own + sum(n for n, a in zip(others.values(), alive, strict=True) if a is not None)

    def _all_rooms(self) -> set[str]:
        """The named rooms here (not the one room per socket that Socket.IO keeps)."""
        rooms = self.rooms()
        sids = rooms.get(None, {})
        return {r for r in rooms if isinstance(r, str) and r not in sids}

    async def flush(self) -> None:
        """Write this process's counts of the rooms that changed."""
        if not self._dirty:
            return
        rooms, self._dirty = self._dirty, set()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for room in rooms:
                    count = len(self.rooms().get(room, {}))
                    if count:
                        pipe.hset(room_key(room), self.owner, count)
                        pipe.pexpire(room_key(room), 86_400_000)
                    else:
                        pipe.hdel(room_key(room), self.owner)
                async with asyncio.timeout(1.0):
                    await pipe.execute()
        except Exception:
            self._dirty |= rooms  # written when Redis is back

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="tuiz-presence")

    async def _forever(self) -> None:
        beat = ALIVE_MS / 5000
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(beat):
                    await self._wake.wait()
            if not self._wake.is_set():  # a beat: everything again (Redis may have restarted)
                self._dirty |= self._all_rooms()
            self._wake.clear()
            await self.flush()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.redis.set(alive_key(self.owner), 1, px=ALIVE_MS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.redis.delete(alive_key(self.owner))
