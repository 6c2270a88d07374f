"""Local accounts in SQL: auth.users rows, their password hashes, refresh tokens and profiles.

Everything here runs with the server's own privileges (these tables are service-only, see
the accounts migration). E-mails are stored lower-cased and compared case-insensitively.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from tuiz.errors import ErrorCode, TuizError
from tuiz.store.db import Conn

PROFILE_COLUMNS = """p.id, p.username, p.display_name, p.avatar_url, p.role, p.last_active,
    p.created_at, p.updated_at, u.email"""


def _taken(what: str, field: str) -> TuizError:
    return TuizError(
        ErrorCode.CONFLICT,
        f"{field}: this {what} is already registered",
        errors=[{"loc": ["body", field], "msg": f"{what} taken"}],
        reason=f"{field}_taken",
    )


async def create_account(
    conn: Conn,
    *,
    email: str,
    password_hash: str,
    username: str | None,
    display_name: str,
) -> asyncpg.Record:
    """A new user with a local password and a profile, in one transaction; its profile row.

    CONFLICT when the e-mail (any case) or the username (any case) is taken.
    """
    async with conn.transaction():
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM auth.users WHERE lower(email) = lower($1))", email
        ):
            raise _taken("e-mail", "email")
        if username and await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM public.profiles WHERE lower(username) = lower($1))",
            username,
        ):
            raise _taken("username", "username")
        meta = orjson.dumps({"username": username, "display_name": display_name}).decode()
        try:
            user_id: uuid.UUID = await conn.fetchval(
                "INSERT INTO auth.users (email, raw_user_meta_data) VALUES ($1, $2::text::jsonb)"
                " RETURNING id",
                email,
                meta,
            )
            await conn.execute(
                "INSERT INTO public.user_credentials (user_id, password_hash) VALUES ($1, $2)",
                user_id,
                password_hash,
            )
            await conn.execute(
                "INSERT INTO public.profiles (id, username, display_name) VALUES ($1, $2, $3)",
                user_id,
                username,
                display_name,
            )
        except asyncpg.UniqueViolationError as exc:  # a concurrent sign-up won the race
            field = "username" if "username" in (exc.constraint_name or "") else "email"
            raise _taken("username" if field == "username" else "e-mail", field) from None
    row = await fetch_profile(conn, user_id)
    assert row is not None
    return row


async def find_login(conn: Conn, email: str) -> asyncpg.Record | None:
    """The user id, e-mail and password hash for a sign-in, or None for an unknown e-mail."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT u.id, u.email, c.password_hash
          FROM auth.users u LEFT JOIN public.user_credentials c ON c.user_id = u.id
         WHERE lower(u.email) = lower($1)
         ORDER BY u.created_at
         LIMIT 1
        """,
        email,
    )
    return row


async def set_password_hash(conn: Conn, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute(
        "UPDATE public.user_credentials SET password_hash = $2 WHERE user_id = $1",
        user_id,
        password_hash,
    )


async def fetch_profile(conn: Conn, user_id: uuid.UUID) -> asyncpg.Record | None:
    """The user's profile, made on first use for users who signed up elsewhere."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM public.profiles p JOIN auth.users u ON u.id = p.id"
        " WHERE p.id = $1",
        user_id,
    )
    if row is not None:
        return row
    email: str | None = await conn.fetchval("SELECT email FROM auth.users WHERE id = $1", user_id)
    if email is None and not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM auth.users WHERE id = $1)", user_id
    ):
        return None
    name = ((email or "").split("@")[0] or "user")[:50]
    await conn.execute(
        "INSERT INTO public.profiles (id, display_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        user_id,
        name,
    )
    return await fetch_profile(conn, user_id)


async def touch(conn: Conn, user_id: uuid.UUID) -> None:
    await conn.execute("UPDATE public.profiles SET last_active = now() WHERE id = $1", user_id)


async def update_profile(conn: Conn, user_id: uuid.UUID, **changes: Any) -> asyncpg.Record:
    """Set username / display_name / avatar_url; CONFLICT for a username taken (any case)."""
    allowed = {"username", "display_name", "avatar_url"}
    if not changes or set(changes) - allowed:
        raise ValueError(f"not a profile field: {sorted(set(changes) - allowed)}")
    if await fetch_profile(conn, user_id) is None:
        raise TuizError(ErrorCode.UNAUTHORIZED, "the token's user no longer exists")
    names = list(changes)
    assignments = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    try:
        await conn.execute(
            f"UPDATE public.profiles SET {assignments} WHERE id = $1",
            user_id,
            *(changes[n] for n in names),
        )
    except asyncpg.UniqueViolationError:
        raise _taken("username", "username") from None
    row = await fetch_profile(conn, user_id)
    assert row is not None
    return row


async def store_refresh_token(
    conn: Conn, user_id: uuid.UUID, digest: bytes, expires_at: datetime
) -> uuid.UUID:
    session_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO public.refresh_tokens (user_id, token_digest, expires_at)"
        " VALUES ($1, $2, $3) RETURNING id",
        user_id,
        digest,
        expires_at,
    )
    return session_id


async def use_refresh_token(conn: Conn, digest: bytes) -> asyncpg.Record | None:
    """Revoke a live refresh token and return its user (id, email); None when not live.

    A token used twice means it leaked: the second use also revokes every session of
    that user.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            """
            SELECT t.id, t.user_id, t.revoked_at, t.expires_at < now() AS expired, u.email
              FROM public.refresh_tokens t JOIN auth.users u ON u.id = t.user_id
             WHERE t.token_digest = $1
             FOR UPDATE OF t
            """,
            digest,
        )
        if row is None or row["expired"]:
            return None
        if row["revoked_at"] is not None:
            await revoke_all(conn, row["user_id"])
            return None
        await conn.execute(
            "UPDATE public.refresh_tokens SET revoked_at = now() WHERE id = $1", row["id"]
        )
        return row


async def revoke_session(conn: Conn, user_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
    """Sign out one session (the access token's `session_id`), or every session without it."""
    if session_id is None:
        await revoke_all(conn, user_id)
        return
    await conn.execute(
        "UPDATE public.refresh_tokens SET revoked_at = now()"
        " WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        session_id,
        user_id,
    )


async def revoke_all(conn: Conn, user_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE public.refresh_tokens SET revoked_at = now()"
        " WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )
