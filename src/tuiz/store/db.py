"""The asyncpg pool every repository shares."""

from __future__ import annotations

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


async def _on_release(conn: asyncpg.Connection) -> None:
    """Nothing beyond what asyncpg always does on release (roll back an unfinished transaction).

    asyncpg's default reset sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` whenever a connection goes back to the pool: a second round trip for every
    query a repository runs, and most of the database's CPU per socket connect. tuiz leaves no
    session state on pooled connections: roles and claims are `SET LOCAL`, the jobs release
    their advisory locks themselves, nothing LISTENs or keeps a cursor open.
    """


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_on_release
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the same codecs as the pool's."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
