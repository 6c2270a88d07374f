"""Owner failover: every process takes up the live games of a process that died.

Leases are renewed every third of `TUIZ_GAME_LEASE_MS`; a dead owner stops renewing. Each
process looks at the leases a few times per lease period and claims every unfinished game
whose lease lapsed, or whose holder is a process on this host that no longer runs. The claim
is one conditional write, so exactly one process wins; it rebuilds the game from its log
(every acknowledged answer is there, each once: answers are keyed by their id) and its timers
run again. Clients of the game on every process carry on through it (`forward.py` re-seats
their sockets on the new owner).
"""

from __future__ import annotations

import asyncio
import contextlib

from tuiz.cluster.ownership import dead_here
from tuiz.errors import TuizError
from tuiz.live.hub import GameHub
from tuiz.logs import get_logger, log_failure

log = get_logger(__name__)


class Failover:
    """Claims orphaned live games for this process."""

    def __init__(self, hub: GameHub) -> None:
        self.hub = hub
        self.interval = min(2.0, max(0.2, hub.settings.game_lease_ms / 5000))
        self.adopted = 0
        self._task: asyncio.Task[None] | None = None

    async def adopt(self) -> int:
        """Take up every orphaned game now; returns how many this process won."""
        won = 0
        for game_id, owner, lapsed in await self.hub.games.leased_live_games():
            if str(game_id) in self.hub.runners or owner == self.hub.owner:
                continue
            if not lapsed and not dead_here(owner):
                continue
            try:
                await self.hub.get(game_id)
            except TuizError:
                continue  # another process won it, or it has no log
            won += 1
            log.warning("game_adopted", game_id=str(game_id), from_owner=owner)
        self.adopted += won
        return won

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="tuiz-failover")

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.adopt()
            except Exception as exc:  # the database away: looked at again next round
                log_failure(log, "failover_scan_failed", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
