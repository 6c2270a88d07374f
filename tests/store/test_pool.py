"""The pools release connections without asyncpg's reset query (what must still hold), and how
each plans its statements."""

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


async def test_the_live_pool_plans_each_statement_once(db_url: str) -> None:
    """The live layer's pool keeps one generic plan per prepared statement (planning its batch
    statements cost more than running them); the REST pool plans for the values given, which
    its optional filters (`$1 IS NULL OR ...`) need."""
    sql = "SELECT count(*) FROM unnest($1::int[]) AS v WHERE $2::int IS NULL OR v = $2"
    for generic_plans in (True, False):
        pool = await create_pool(db_url, min_size=1, max_size=1, generic_plans=generic_plans)
        try:
            async with pool.acquire() as conn:
                statement = await conn.prepare(sql)
                assert [await statement.fetchval([1, 2, 2], v) for v in (None, 2)] == [3, 2]
            async with pool.acquire() as conn:  # the same session, after a release
                statement = await conn.prepare(sql)
                for _ in range(7):
                    await statement.fetchval([1, 2], 1)
                plans = await conn.fetchrow(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE name = $1",
                    statement.get_name(),
                )
        finally:
            await pool.close()
        if generic_plans:
            assert (plans["generic_plans"], plans["custom_plans"]) == (7, 0)
        else:
            assert plans["custom_plans"] >= 5
