"""The maintenance jobs and their leader election.

Each job takes a PostgreSQL advisory lock for the time it runs (`pg_try_advisory_lock`): when
several tuiz processes (or a cron `tuiz jobs run-once`) fire at once, one runs and the others
skip. Nothing to configure, and a crashed leader's lock goes with its connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from tuiz.config import Settings
from tuiz.logs import get_logger, log_failure
from tuiz.store.connections_pg import PgConnectionStore

log = get_logger(__name__)

_LOCK_BASE = 0x7475_0000


@dataclass(frozen=True)
class JobResult:
    job: str
    ran: bool
    affected: dict[str, int]


@dataclass(frozen=True)
class Job:
    name: str
    lock_key: int
    interval_ms: Callable[[Settings], int]
    work: Callable[[asyncpg.Pool, Settings], Awaitable[dict[str, int]]]


async def _stale_sweep(pool: asyncpg.Pool, settings: Settings) -> dict[str, int]:
    """Connections silent past the heartbeat timeout become `timeout`, their rooms too."""
    silent_for = timedelta(milliseconds=settings.heartbeat_timeout_ms)
    return {"connections": await PgConnectionStore(pool).sweep_stale(silent_for)}


async def _retention(pool: asyncpg.Pool, settings: Settings) -> dict[str, int]:
    """Ended connections and finished games' events older than the retention period go."""
    days = settings.retention_days
    connections = await PgConnectionStore(pool).cleanup(days)
    events: int = await pool.fetchval("SELECT public.cleanup_old_game_events(days_old => $1)", days)
    return {"connections": connections, "events": events}


JOBS: dict[str, Job] = {
    "stale-sweep": Job(
        "stale-sweep",
        _LOCK_BASE + 1,
        lambda s: min(s.heartbeat_timeout_ms, 60_000) // 2 or 1,
        _stale_sweep,
    ),
    "retention": Job("retention", _LOCK_BASE + 2, lambda s: s.cleanup_interval_ms, _retention),
}


async def run_job(job: Job, pool: asyncpg.Pool, settings: Settings) -> JobResult:
    """Run once if no other process holds the job's lock; otherwise report it skipped."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", job.lock_key):
            log.info("job_skipped", job=job.name, reason="running elsewhere")
            return JobResult(job.name, False, {})
        try:
            affected = await job.work(pool, settings)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", job.lock_key)
    if any(affected.values()):
        log.info("job_done", job=job.name, **affected)
    return JobResult(job.name, True, affected)


async def run_forever(job: Job, pool: asyncpg.Pool, settings: Settings) -> None:
    """The job on its interval for the life of the process; a failure is logged, not fatal."""
    interval = job.interval_ms(settings) / 1000
    while True:
        await asyncio.sleep(interval)
        try:
            await run_job(job, pool, settings)
        except Exception as exc:
            log_failure(log, "job_failed", exc, job=job.name)
