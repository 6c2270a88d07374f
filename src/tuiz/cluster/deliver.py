"""The live layer's `Publisher` in a cluster: a game's messages for other processes' sockets
go out in one ordered stream on the bus (`ClusterBus.deliver`), not through the fan-out.

Through python-socketio's Redis manager every message to one socket of another process was a
Redis message of its own, received, decoded and encoded again by every process, the owner
included (at 10,000 players: every answer's acknowledgement to the player and to the host, and
every player's own result at each reveal). Here the owner delivers to its own sockets at once
and queues one item for the others; the bus sends what one loop turn queued as one Redis
message, and each process delivers the items whose sockets (or rooms) it holds, in the order
the owner published them, without a task per item. Room, player and host messages share that
one stream, so a socket still gets a game's messages in `seq` order.

While Redis is down the others' sockets miss these messages, as they did with the fan-out;
they catch up by `seq` when they rejoin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import socketio

from tuiz.cluster.bus import ClusterBus
from tuiz.cluster.fanout import serving_remote
from tuiz.live.publisher import Body
from tuiz.realtime.fastemit import FastEmitManager
from tuiz.realtime.server import watchers_room

NAMESPACE = "/"


class ClusterPublisher:
    """Local sockets now; other processes' sockets through the bus's delivery stream."""

    def __init__(self, sio: socketio.AsyncServer, bus: ClusterBus) -> None:
        self.sio = sio
        self.bus = bus
        self.manager: FastEmitManager = sio.manager
        self._tasks: set[asyncio.Task[Any]] = set()
        bus.inline["emit"] = self._on_emit
        bus.inline["room"] = self._on_room

    # -- the owner's side ----------------------------------------------------------------

    async def to_room(self, room: str, event: str, body: Body) -> None:
        # Queued first: the bus's writer then runs before this process's own socket writes,
        # so the other processes deliver while this one does.
        self.bus.deliver("emit", {"to": room, "event": event, "data": body})
        self._here(event, body, room)

    async def to_watchers(self, room: str, event: str, body: Body) -> None:
        await self.to_room(watchers_room(room), event, body)

    async def to_sockets(self, sids: Iterable[str], event: str, body: Body) -> None:
        here: list[str] = []
        away: list[str] = []
        for sid in sids:
            (here if self.manager.is_connected(sid, NAMESPACE) else away).append(sid)
        if away:
            self.bus.deliver("emit", {"to": away, "event": event, "data": body})
        if here:
            self._here(event, body, here)

    async def enter(self, sid: str, room: str) -> None:
        if self.manager.is_connected(sid, NAMESPACE):
            await self.sio.enter_room(sid, room)
        elif sid != serving_remote.get():  # that one enters when its process reads the reply
            self.bus.deliver("room", {"sid": sid, "room": room, "in": True})

    async def leave(self, sid: str, room: str) -> None:
        if self.manager.is_connected(sid, NAMESPACE):
            await self.sio.leave_room(sid, room)
        else:
            self.bus.deliver("room", {"sid": sid, "room": room, "in": False})

    # -- every other process -------------------------------------------------------------

    def _here(self, event: str, data: Any, to: str | list[str]) -> None:
        """To this process's sockets in `to` (a room or sids), at once, in order."""
        if not self.manager.emit_here(event, data, NAMESPACE, to):
            task = asyncio.ensure_future(self.sio.emit(event, data, to=to, ignore_queue=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_emit(self, body: dict[str, Any]) -> None:
        to, event = body.get("to"), body.get("event")
        if not isinstance(event, str):
            return
        if isinstance(to, list):
            held = [s for s in to if isinstance(s, str) and self.manager.is_connected(s, NAMESPACE)]
            if held:
                self._here(event, body.get("data"), held)
        elif isinstance(to, str):
            self._here(event, body.get("data"), to)

    def _on_room(self, body: dict[str, Any]) -> None:
        sid, room = body.get("sid"), body.get("room")
        if not isinstance(sid, str) or not isinstance(room, str):
            return
        if not self.manager.is_connected(sid, NAMESPACE):
            return
        if body.get("in"):
            self.manager.basic_enter_room(sid, NAMESPACE, room)
        else:
            self.manager.basic_leave_room(sid, NAMESPACE, room)
