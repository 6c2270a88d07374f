"""One owner per live game across processes: a renewed lease in `game_owners`.

A process claims a game before it runs it and renews its leases every third of their life;
another process refuses the game until the lease is released, expires, or its holder is a
process on this host that no longer runs (a crash, taken over at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterable

from tuiz.errors import ErrorCode, TuizError
from tuiz.logs import get_logger, log_failure
from tuiz.store.games import GameRepository

log = get_logger(__name__)


def dead_here(owner: str) -> bool:
    """True when `owner` was a process on this host that no longer runs (a crash)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier life of this pid: that owner id is not ours
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Leases:
    """This process's game leases: claim, renew in the background, release."""

    def __init__(self, games: GameRepository, ttl_ms: int) -> None:
        self.games = games
        self.ttl_ms = ttl_ms
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None

    async def claim(self, game_id: uuid.UUID) -> None:
        """Ours now, or UNAVAILABLE naming the process that runs it."""
        holder = await self.games.claim(game_id, self.owner, self.ttl_ms)
        if holder is None:
            return
        if dead_here(holder) and await self.games.take_over(
            game_id, holder, self.owner, self.ttl_ms
        ):
            log.info("game_taken_over", game_id=str(game_id), from_owner=holder)
            return
        raise TuizError(
            ErrorCode.UNAVAILABLE,
            "this game is run by another tuiz process; connect to that one",
            owner=holder,
        )

    def start(
        self, held: Callable[[], Iterable[uuid.UUID]], lost: Callable[[uuid.UUID], None]
    ) -> None:
        """Renew every game `held()` names; `lost(id)` for each lease that could not be kept."""
        self._task = asyncio.create_task(self._renew_forever(held, lost), name="tuiz-game-leases")

    async def _renew_forever(
        self, held: Callable[[], Iterable[uuid.UUID]], lost: Callable[[uuid.UUID], None]
    ) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                ids = list(held())
                if not ids:
                    continue
                kept = await self.games.renew(ids, self.owner, self.ttl_ms)
                for game_id in ids:
                    if game_id not in kept:  # we stalled past the lease: let go
                        log.error("game_lease_lost", game_id=str(game_id))
                        lost(game_id)
            except Exception as exc:  # the database away: renewed when it is back
                log_failure(log, "game_lease_renewal_failed", exc)

    async def release(self, game_ids: list[uuid.UUID]) -> None:
        await self.games.release(game_ids, self.owner)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
