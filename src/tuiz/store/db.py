"""The asyncpg pools: the REST API's and jobs', and the live layer's (sockets, rooms, games,
the event log)."""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy
"""A plain connection or one borrowed from the pool; repositories accept either."""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    """JSON columns as Python objects, encoded with orjson (the event log's hot path)."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog"
        )


GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"
"""For the live layer's pool: its statements are prepared once per connection (asyncpg's
statement cache) and find rows by keys (`=`, `= ANY`), so one plan serves every execution.
Left to choose, PostgreSQL plans the batch statements anew each time: knowing a batch's array
length makes the custom plan look cheaper than the generic one, so it never switches, and
planning `enter`'s CTEs costs more than running them (a seat's `enter`: 0.83-0.91 ms a round
trip planned each time, 0.40-0.46 ms with the generic plan; bench/README.md 2026-12-07f).
Not for the REST pool: its listings take optional filters (`$1 IS NULL OR ...`) that only
a plan made for the values given can drop."""


async def _init_generic(conn: asyncpg.Connection) -> None:
    await _init_connection(conn)
    await conn.execute(GENERIC_PLANS)


async def _on_release(conn: asyncpg.Connection) -> None:
    """Nothing beyond what asyncpg always does on release (roll back an unfinished transaction).

    asyncpg's default reset sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` whenever a connection goes back to the pool: a second round trip for every
    query a repository runs, and most of the database's CPU per socket connect. tuiz leaves no
    session state on pooled connections: roles and claims are `SET LOCAL`, the jobs release
    their advisory locks themselves, nothing LISTENs or keeps a cursor open. (Without
    `RESET ALL` the live pool's `GENERIC_PLANS` also lasts the connection's life.)
    """


ACQUIRE_TIMEOUT = 5.0
"""Seconds to get a pool connection (waiting for a free one, or connecting a new one)."""
QUERY_TIMEOUT = 30.0
"""Seconds a statement may run unless the caller passes its own `timeout`."""


class BoundedPool(asyncpg.Pool):
    """asyncpg's pool with a default acquire timeout.

    asyncpg waits for a connection forever unless each `acquire` names a timeout, and its
    `fetch`/`execute` shortcuts name none. While PostgreSQL is away a connect can hang (a lost
    network) or every connection can be held by stuck statements; with this bound every caller
    gets a TimeoutError (UNAVAILABLE, see `errors.client_error`) instead of waiting for good.
    """

    def __init__(self, *args: Any, acquire_timeout: float = ACQUIRE_TIMEOUT, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = ACQUIRE_TIMEOUT,
    query_timeout: float = QUERY_TIMEOUT,
    generic_plans: bool = False,
) -> asyncpg.Pool:
    """A pool; every wait on the database is bounded (connect and acquire by
    `acquire_timeout`, statements by `query_timeout`), so an outage yields errors, not hangs.
    Connections lost in an outage are replaced on their next acquire: nothing to restart.
    `generic_plans`: see `GENERIC_PLANS`."""
    # The same arguments asyncpg.create_pool passes to its Pool (asyncpg 0.29-0.32).
    pool = BoundedPool(
        dsn,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        init=_init_generic if generic_plans else _init_connection,
        reset=_on_release,
        timeout=acquire_timeout,  # connect
        command_timeout=query_timeout,
    )
    await pool
    return pool


async def close_pool(pool: asyncpg.Pool, timeout: float) -> None:
    """Close gracefully within `timeout` seconds, else terminate (a connection stuck on a
    dead server must not hold the process's exit)."""
    try:
        async with asyncio.timeout(max(timeout, 0.0)):
            await pool.close()
    except TimeoutError:
        pool.terminate()


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the same codecs as the pool's."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
