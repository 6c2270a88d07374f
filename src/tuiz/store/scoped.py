"""Run a caller's reads under their own PostgreSQL role and claims, so RLS applies to them.

This is how PostgREST runs Supabase requests: `SET LOCAL ROLE` plus `request.jwt.claims` and
`request.headers`, inside one transaction. The server's own checks come first; RLS is the
second, independent guard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

from tuiz.auth import Caller
from tuiz.store.db import Conn

_ROLES = frozenset({"anon", "authenticated", "service_role"})


@asynccontextmanager
async def as_caller(
    pool: asyncpg.Pool, caller: Caller, device_id: str | None = None
) -> AsyncIterator[Conn]:
    """A pooled connection acting as `caller` until the block ends (then rolled back)."""
    if caller.role not in _ROLES:
        raise ValueError(f"unexpected role {caller.role!r}")
    claims = dict(caller.claims or {})
    claims.setdefault("role", caller.role)
    if caller.user_id is not None:
        claims.setdefault("sub", str(caller.user_id))
    headers = {"x-device-id": device_id} if device_id else {}
    async with pool.acquire() as conn:
        tx = conn.transaction(readonly=True)
        await tx.start()
        try:
            await conn.execute(f"SET LOCAL ROLE {caller.role}")
            await conn.execute(
                "SELECT set_config('request.jwt.claims', $1, true),"
                " set_config('request.headers', $2, true)",
                orjson.dumps(claims).decode(),
                orjson.dumps(headers).decode(),
            )
            yield conn
        finally:
            await tx.rollback()
