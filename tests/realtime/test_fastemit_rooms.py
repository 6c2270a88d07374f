"""`FastEmitManager` keeps each socket's rooms, so a disconnect leaves those rooms only: the
rooms it ends up with are python-socketio's own, whatever the sockets did."""

from __future__ import annotations

import random
from typing import Any

import socketio

from tuiz.realtime.fastemit import FastEmitManager


def _manager(manager: Any) -> Any:
    socketio.AsyncServer(client_manager=manager, async_mode="asgi")
    return manager


async def test_rooms_after_joins_leaves_and_disconnects_match_python_socketio() -> None:
    ours, theirs = _manager(FastEmitManager()), _manager(socketio.AsyncManager())
    draw = random.Random(15)
    sids: list[tuple[str, str]] = []
    for step in range(600):
        roll = draw.random()
        if roll < 0.3 or not sids:
            eio = f"eio-{step}"
            sid = await ours.pre_connect(eio, "/")
            theirs.basic_enter_room(sid, "/", None, eio_sid=eio)  # the same sid on both
            theirs.basic_enter_room(sid, "/", sid, eio_sid=eio)
            theirs.pending_connect.setdefault("/", []).append(sid)
            for manager in (ours, theirs):
                await manager.connect(sid, "/")
            sids.append((sid, eio))
        elif roll < 0.6:
            sid, _ = draw.choice(sids)
            room = f"game-{draw.randrange(4)}"
            for manager in (ours, theirs):
                await manager.enter_room(sid, "/", room)
        elif roll < 0.75:
            sid, _ = draw.choice(sids)
            room = f"game-{draw.randrange(4)}"
            for manager in (ours, theirs):
                await manager.leave_room(sid, "/", room)
        elif roll < 0.8:
            room = f"game-{draw.randrange(4)}"
            for manager in (ours, theirs):
                await manager.close_room(room, "/")
        else:
            sid, _ = sids.pop(draw.randrange(len(sids)))
            for manager in (ours, theirs):
                await manager.disconnect(sid, "/")
        assert _rooms(ours) == _rooms(theirs), step
    assert set(ours._rooms_of) == {("/", sid) for sid, _ in sids}


def _rooms(manager: Any) -> dict[Any, dict[str, str]]:
    return {room: dict(members) for room, members in manager.rooms.get("/", {}).items()}
