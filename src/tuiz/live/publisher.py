"""The port through which a live game reaches its sockets (implemented by `realtime/`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

Body = dict[str, Any]


class Publisher(Protocol):
    async def to_room(self, room: str, event: str, body: Body) -> None:
        """Everyone in the game's room: players, host, screens."""

    async def to_watchers(self, room: str, event: str, body: Body) -> None:
        """The room's members that are not players (host, screens)."""

    async def to_sockets(self, sids: Iterable[str], event: str, body: Body) -> None:
        """Exactly these sockets (a player's own, the host's)."""

    async def enter(self, sid: str, room: str) -> None: ...

    async def leave(self, sid: str, room: str) -> None: ...
