"""Run a caller's reads under their own PostgreSQL role and claims, so RLS applies to them.

This is how PostgREST runs Supabase requests: `SET LOCAL ROLE` plus `request.jwt.claims` and
`request.headers`, inside one transaction. The server's own checks come first; RLS is the
second, independent guard.

`as_caller` opens a read-only transaction (rolled back at the end); `as_caller(..., write=True)`
a read-write one, committed when the block ends normally and rolled back when it raises.
`become` switches a connection that is already inside a transaction, for writers that first
run the server's own checks (with the server's privileges, e.g. locking a row) and then do the
write as the caller, all in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

from tuiz.auth import Caller
from tuiz.store.db import Conn

_ROLES = frozenset({"anon", "authenticated", "service_role"})


async def become(conn: Conn, caller: Caller, device_id: str | None = None) -> None:
    """Act as `caller` until the current transaction ends (must be called inside one)."""
    if caller.role not in _ROLES:
        raise ValueError(f"unexpected role {caller.role!r}")
    if not conn.is_in_transaction():
        raise RuntimeError("become() outside a transaction would leak the role to the pool")
    claims = dict(caller.claims or {})
    claims.setdefault("role", caller.role)
    if caller.user_id is not None:
        claims.setdefault("sub", str(caller.user_id))
    headers = {"x-device-id": device_id} if device_id else {}
    await conn.execute(f"SET LOCAL ROLE {caller.role}")
    await conn.execute(
        "SELECT set_config('request.jwt.claims', $1, true),"
        " set_config('request.headers', $2, true)",
        orjson.dumps(claims).decode(),
        orjson.dumps(headers).decode(),
    )


@asynccontextmanager
async def as_caller(
    pool: asyncpg.Pool, caller: Caller, device_id: str | None = None, *, write: bool = False
) -> AsyncIterator[Conn]:
    """A pooled connection acting as `caller` until the block ends.

    Read-only and rolled back by default; with `write=True` read-write and committed when the
    block ends without an exception (rolled back otherwise).
    """
    if caller.role not in _ROLES:
        raise ValueError(f"unexpected role {caller.role!r}")
    async with pool.acquire() as conn:
        tx = conn.transaction(readonly=not write)
        await tx.start()
        committed = False
        try:
            await become(conn, caller, device_id)
            yield conn
            if write:
                await tx.commit()
                committed = True
        finally:
            if not committed:
                await tx.rollback()
