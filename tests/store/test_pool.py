"""The shared pool releases connections without asyncpg's reset query: what must still hold."""

from __future__ import annotations

import uuid

from tuiz.auth import Caller
from tuiz.store.db import create_pool
from tuiz.store.scoped import as_caller


async def test_released_connections_carry_no_transaction_or_caller(db_url: str) -> None:
    pool = await create_pool(db_url, min_size=1, max_size=1)  # every acquire: the same session
    try:
        async with pool.acquire() as conn:
            owner = await conn.fetchval("SELECT current_user")
            await conn.execute("CREATE TABLE pool_probe (x int)")
            await conn.execute("BEGIN")  # left open on purpose, as a buggy caller would
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM pool_probe") == 0

        claims = {"sub": str(uuid.uuid4()), "role": "authenticated"}
        caller = Caller(role="authenticated", user_id=uuid.UUID(claims["sub"]), claims=claims)
        async with as_caller(pool, caller, "device-1") as conn:
            assert await conn.fetchval("SELECT current_user") == "authenticated"
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == owner
            assert not await conn.fetchval("SELECT current_setting('request.jwt.claims', true)")
            assert not await conn.fetchval("SELECT current_setting('request.headers', true)")
    finally:
        await pool.close()
