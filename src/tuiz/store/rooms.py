"""Which rooms exist and who a device is in them: a room is a game, keyed by the game's id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import asyncpg

from tuiz.errors import ErrorCode, TuizError
from tuiz.store.batch import GroupCommit

if TYPE_CHECKING:
    from tuiz.store.connections_pg import PgConnectionStore


@dataclass(frozen=True)
class RoomAccess:
    """A device's place in a room: a seat (player or host) or none (spectator, e.g. a screen)."""

    game_id: uuid.UUID
    player_id: uuid.UUID | None
    role: str  # host | player | spectator


class RoomDirectory(Protocol):
    async def access(self, room_id: str, device_id: str) -> RoomAccess:
        """The device's access to the room; NOT_FOUND when there is no such game."""

    async def enter(
        self, room_id: str, device_id: str, socket_id: str, user_id: uuid.UUID | None
    ) -> tuple[RoomAccess, bool]:
        """`access`, and whether the socket's participation is already written with it (then
        the caller must not write it again)."""


def _game_id(room_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(room_id)
    except ValueError:
        raise TuizError(ErrorCode.NOT_FOUND, f"no game with id {room_id!r}") from None


def _seated(game_id: uuid.UUID, player_id: uuid.UUID | None, is_host: bool | None) -> RoomAccess:
    """A found game's access for a device: its seat's role, or a spectator without a seat."""
    if player_id is None:
        return RoomAccess(game_id, None, "spectator")
    return RoomAccess(game_id, player_id, "host" if is_host else "player")


# The game `g` and the live seat `p` of each request `b` (game_id, device_id): an index
# lookup per request, never a pass over the game's seats. Shared with the connection store's
# one-round-trip `enter`.
SEAT_OF_EACH = """  LEFT JOIN public.games g ON g.id = b.game_id
  LEFT JOIN LATERAL (
        SELECT p.id, p.is_host FROM public.players p
         WHERE p.game_id = g.id AND p.device_id = b.device_id AND p.removed_at IS NULL
         LIMIT 1) p ON true"""

# A batch of lookups in one round trip (`store/batch.py`): rooms joined at the same moment
# share it. `i` is the request's position (a device has at most one live seat per game).
_ACCESS = f"""
SELECT b.i, g.id IS NOT NULL AS found, p.id AS player_id, p.is_host
  FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS b(game_id, device_id, i)
{SEAT_OF_EACH}
"""


class PgRoomDirectory:
    def __init__(self, pool: asyncpg.Pool, store: PgConnectionStore | None = None) -> None:
        self._pool = pool
        self._store = store
        self._lookups: GroupCommit[tuple[uuid.UUID, str], RoomAccess | None] = GroupCommit(
            self._lookup
        )

    async def _lookup(self, batch: Sequence[tuple[uuid.UUID, str]]) -> list[RoomAccess | None]:
        rows = await self._pool.fetch(_ACCESS, [g for g, _ in batch], [d for _, d in batch])
        found: dict[int, RoomAccess | None] = {}
        for r in rows:  # one per request (SEAT_OF_EACH: LIMIT 1)
            game_id = batch[r["i"] - 1][0]
            found[r["i"]] = _seated(game_id, r["player_id"], r["is_host"]) if r["found"] else None
        return [found.get(i + 1) for i in range(len(batch))]

    async def access(self, room_id: str, device_id: str) -> RoomAccess:
        access = await self._lookups.submit((_game_id(room_id), device_id))
        if access is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no game with id {room_id}")
        return access

    async def enter(
        self, room_id: str, device_id: str, socket_id: str, user_id: uuid.UUID | None
    ) -> tuple[RoomAccess, bool]:
        """With the connection store: the lookup and the participation in one round trip."""
        if self._store is None:
            return await self.access(room_id, device_id), False
        game_id = _game_id(room_id)
        seat = await self._store.enter(game_id, socket_id, device_id, user_id)
        if seat is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no game with id {room_id}")
        return _seated(game_id, seat.player_id, seat.is_host), True


class OpenRoomDirectory:
    """Development without a database: any game-id-shaped room exists, everyone spectates."""

    async def access(self, room_id: str, device_id: str) -> RoomAccess:
        return RoomAccess(_game_id(room_id), None, "spectator")

    async def enter(
        self, room_id: str, device_id: str, socket_id: str, user_id: uuid.UUID | None
    ) -> tuple[RoomAccess, bool]:
        return await self.access(room_id, device_id), False
