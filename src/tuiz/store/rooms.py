"""Which rooms exist and who a device is in them: a room is a game, keyed by the game's id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from tuiz.errors import ErrorCode, TuizError


@dataclass(frozen=True)
class RoomAccess:
    """A device's place in a room: a seat (player or host) or none (spectator, e.g. a screen)."""

    game_id: uuid.UUID
    player_id: uuid.UUID | None
    role: str  # host | player | spectator


class RoomDirectory(Protocol):
    async def access(self, room_id: str, device_id: str) -> RoomAccess:
        """The device's access to the room; NOT_FOUND when there is no such game."""


def _game_id(room_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(room_id)
    except ValueError:
        raise TuizError(ErrorCode.NOT_FOUND, f"no game with id {room_id!r}") from None


_ACCESS = """
SELECT g.id, p.id AS player_id, p.is_host
  FROM public.games g
  LEFT JOIN public.players p
         ON p.game_id = g.id AND p.device_id = $2 AND p.removed_at IS NULL
 WHERE g.id = $1
"""


class PgRoomDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def access(self, room_id: str, device_id: str) -> RoomAccess:
        game_id = _game_id(room_id)
        row = await self._pool.fetchrow(_ACCESS, game_id, device_id)
        if row is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no game with id {room_id}")
        if row["player_id"] is None:
            return RoomAccess(game_id, None, "spectator")
        return RoomAccess(game_id, row["player_id"], "host" if row["is_host"] else "player")


class OpenRoomDirectory:
    """Development without a database: any game-id-shaped room exists, everyone spectates."""

    async def access(self, room_id: str, device_id: str) -> RoomAccess:
        return RoomAccess(_game_id(room_id), None, "spectator")
