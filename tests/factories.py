"""Small builders for rows the tests need, written through a superuser connection.

They insert the minimum a row needs to be valid, so a test states only what it cares about.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from tuiz.store.db import Conn


async def make_user(conn: Conn, email: str | None = None) -> UUID:
    """A row in auth.users (the shim's, or Supabase's own)."""
    email = email or f"user-{secrets.token_hex(6)}@example.test"
    user_id: UUID = await conn.fetchval(
        "INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), $1) RETURNING id", email
    )
    return user_id


async def make_quiz(conn: Conn, owner: UUID, *, published: bool = True) -> UUID:
    """A quiz with a multiple-choice and a true/false question, each with its answers."""
    quiz_id: UUID = await conn.fetchval(
        """
        INSERT INTO public.quiz_sets (user_id, title, status, is_public)
        VALUES ($1, 'Capitals', $2::public.quiz_status, $3) RETURNING id
        """,
        owner,
        "published" if published else "draft",
        published,
    )
    questions = [
        ("multiple_choice", "Capital of Japan?", [("Tokyo", True), ("Osaka", False)]),
        ("true_false", "Paris is in France.", [("True", True), ("False", False)]),
    ]
    for index, (kind, text, answers) in enumerate(questions):
        question_id = await conn.fetchval(
            """
            INSERT INTO public.questions
                (question_set_id, question_text, question_type, order_index)
            VALUES ($1, $2, $3::public.question_type, $4) RETURNING id
            """,
            quiz_id,
            text,
            kind,
            index,
        )
        await conn.executemany(
            """
            INSERT INTO public.answers (question_id, answer_text, is_correct, order_index)
            VALUES ($1, $2, $3, $4)
            """,
            [(question_id, a, correct, i) for i, (a, correct) in enumerate(answers)],
        )
    await conn.execute(
        "UPDATE public.quiz_sets SET total_questions = $2 WHERE id = $1", quiz_id, len(questions)
    )
    return quiz_id


async def make_game(
    conn: Conn,
    owner: UUID | None = None,
    quiz: UUID | None = None,
    *,
    status: str = "waiting",
) -> UUID:
    """A game with a fresh PIN. No owner means a guest-hosted game (never a public one)."""
    for _ in range(20):
        code = f"{secrets.randbelow(900_000) + 100_000}"
        try:
            game_id: UUID = await conn.fetchval(
                """
                INSERT INTO public.games (user_id, quiz_set_id, game_code, status)
                VALUES ($1, $2, $3, $4::public.game_status) RETURNING id
                """,
                owner,
                quiz,
                code,
                status,
            )
        except asyncpg.UniqueViolationError:
            continue  # PIN taken by another live game; draw again
        return game_id
    raise RuntimeError("no free game PIN after 20 draws")


async def make_player(
    conn: Conn, game_id: UUID, device_id: str, name: str, *, is_host: bool = False
) -> UUID:
    """A seat in a game for a device."""
    player_id: UUID = await conn.fetchval(
        """
        INSERT INTO public.players (game_id, device_id, player_name, is_host)
        VALUES ($1, $2, $3, $4) RETURNING id
        """,
        game_id,
        device_id,
        name,
        is_host,
    )
    return player_id


@asynccontextmanager
async def acting_as(
    conn: asyncpg.Connection,
    role: str,
    *,
    user: UUID | None = None,
    device: str | None = None,
    headers: str | None = None,
) -> AsyncIterator[asyncpg.Connection]:
    """Run statements the way PostgREST would for a caller, in a transaction rolled back after.

    `role` is anon, authenticated or service_role; `user` becomes the JWT `sub`; `device` the
    `x-device-id` header (or pass raw `headers` text, e.g. '' as a pooled connection has it).
    """
    if role not in {"anon", "authenticated", "service_role"}:
        raise ValueError(f"not a PostgREST role: {role}")
    claims = {"role": role} | ({"sub": str(user)} if user else {})
    if headers is None:
        headers = json.dumps({"x-device-id": device} if device else {})
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f"SET LOCAL ROLE {role}")
        await conn.execute(
            "SELECT set_config('request.jwt.claims', $1, true),"
            " set_config('request.headers', $2, true)",
            json.dumps(claims),
            headers,
        )
        yield conn
    finally:
        await transaction.rollback()
