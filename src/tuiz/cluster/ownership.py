"""One owner per live game across processes: a renewed lease in `game_owners`.

A process claims a game before it runs it and renews its leases every third of their life;
another process refuses the game until the lease is released, expires, or its holder is a
process on this host that no longer runs (a crash, taken over at once).

An owner id is `host:pid:life:nonce`, where `life` is the kernel's boot id and the process's
start time (`/proc/<pid>/stat`). A PID alone is not enough: after `kill -9` and an immediate
restart the dead PID may still exist (a zombie not yet reaped, or the number reused by another
process), and one restart in three used to refuse every live game for a whole lease (15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from tuiz.errors import ErrorCode, TuizError
from tuiz.logs import get_logger, log_failure
from tuiz.store.games import GameRepository

log = get_logger(__name__)

RENEW_RETRY_S = 0.25
"""Seconds between attempts to renew leases while the database is away."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8]
    except OSError:
        return ""


BOOT_ID = _boot_id()


def process_life(pid: int) -> str | None:
    """`<boot id>-<start time>` of a running process; None when no such process runs (a
    zombie has stopped running); "" where /proc cannot tell (another OS)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):
        return None
    return f"{BOOT_ID}-{fields[19]}"  # field 22: start time in clock ticks since boot


def owner_id() -> str:
    """This process's owner id (`host:pid:life:nonce`)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_life(pid) or ''}:{uuid.uuid4().hex[:8]}"


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_here(owner: str) -> bool:
    """True when `owner` was a process on this host that no longer runs (a crash)."""
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True  # an earlier life of this pid: that owner id is not ours
    life = process_life(pid)
    if life is None:
        return True
    recorded = parts[2] if len(parts) >= 4 else ""  # ids of older versions: host:pid:nonce
    if life and recorded:
        return life != recorded  # the pid now belongs to another process
    return not _pid_runs(pid)


class Leases:
    """This process's game leases: claim, renew in the background, release."""

    def __init__(self, games: GameRepository, ttl_ms: int) -> None:
        self.games = games
        self.ttl_ms = ttl_ms
        self.owner = owner_id()
        self._task: asyncio.Task[None] | None = None
        # Which claim of each game is current: a renewal judges only the claims it renewed.
        self._claims: dict[uuid.UUID, int] = {}
        self._counter = itertools.count(1)
        self._releasing: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.renewals_failed = 0  # metrics: attempts the database did not answer
        self.leases_lost = 0

    async def claim(self, game_id: uuid.UUID) -> None:
        """Ours now, or UNAVAILABLE naming the process that runs it."""
        releasing = self._releasing.get(game_id)
        if releasing is not None:  # a release still in flight must not delete this claim
            with contextlib.suppress(Exception):
                await asyncio.shield(releasing)
        holder = await self.games.claim(game_id, self.owner, self.ttl_ms)
        if holder is None:
            self._claims[game_id] = next(self._counter)
            return
        if dead_here(holder) and await self.games.take_over(
            game_id, holder, self.owner, self.ttl_ms
        ):
            log.info("game_taken_over", game_id=str(game_id), from_owner=holder)
            self._claims[game_id] = next(self._counter)
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

    async def renew(
        self, held: Callable[[], Iterable[uuid.UUID]], lost: Callable[[uuid.UUID], None]
    ) -> None:
        """One renewal. A game claimed (again) while it was in flight is not judged by it: its
        fresh lease was not part of the statement, so its absence proves nothing."""
        claims = {gid: self._claims.get(gid) for gid in held()}
        if not claims:
            return
        kept = await self.games.renew(list(claims), self.owner, self.ttl_ms)
        for game_id, claim in claims.items():
            if game_id in kept or self._claims.get(game_id) != claim:
                continue
            log.error("game_lease_lost", game_id=str(game_id))  # we stalled past the lease
            self.leases_lost += 1
            self._claims.pop(game_id, None)
            lost(game_id)

    async def _renew_forever(
        self, held: Callable[[], Iterable[uuid.UUID]], lost: Callable[[uuid.UUID], None]
    ) -> None:
        """Renew every third of the lease; after a failure, every RENEW_RETRY_S until one
        succeeds. Waiting a whole third again would let a 10 s database outage run out a 15 s
        lease, and every live game of the cluster would fail over once the database is back
        (each of its players reconnecting at once)."""
        period = self.ttl_ms / 3000
        pause = period
        while True:
            await asyncio.sleep(pause)
            try:
                # Bounded: a renewal stuck on a stalled database is tried again, not waited on.
                async with asyncio.timeout(max(period / 2, RENEW_RETRY_S)):
                    await self.renew(held, lost)
                pause = period
            except Exception as exc:  # the database away: renewed as soon as it is back
                self.renewals_failed += 1
                log_failure(log, "game_lease_renewal_failed", exc)
                pause = min(RENEW_RETRY_S, period)

    def forget(self, game_id: uuid.UUID) -> None:
        """The lease is someone else's now (lost): nothing to release."""
        self._claims.pop(game_id, None)

    def release_soon(self, game_id: uuid.UUID) -> None:
        """Let one game go in the background; a claim of it meanwhile waits for this first."""
        self._claims.pop(game_id, None)
        task = asyncio.create_task(self.release([game_id]))
        self._releasing[game_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._releasing.get(game_id) is t:
                del self._releasing[game_id]
            if not t.cancelled() and t.exception() is not None:
                log.warning("game_release_failed", game_id=str(game_id), error=repr(t.exception()))

        task.add_done_callback(done)

    async def release(self, game_ids: list[uuid.UUID]) -> None:
        for game_id in game_ids:
            self._claims.pop(game_id, None)
        await self.games.release(game_ids, self.owner)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
