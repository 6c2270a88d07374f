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


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the same codecs as the pool's."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
