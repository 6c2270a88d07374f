"""Seats written with their sockets' participations (`GameRepository.add_players`): a
participation that cannot be written there never fails the other seats of the batch (one
joiner's socket must not be able to break a lobby's join batch); the caller learns which
were written and leaves the others to the connection store."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.factories import make_game, make_player, make_user
from tests.live.conftest import writer_waiting
from tests.sioclient import eventually
from tuiz.store.games import GameRepository, NewSeat

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans


async def _participants(pool: asyncpg.Pool, game: uuid.UUID) -> dict[str, tuple[str, object]]:
    rows = await pool.fetch(
        "SELECT socket_id, status::text AS status, user_id FROM public.room_participants"
        " WHERE game_id = $1",
        game,
    )
    return {r["socket_id"]: (r["status"], r["user_id"]) for r in rows}


async def test_a_deleted_user_does_not_fail_the_other_seats(pool: asyncpg.Pool) -> None:
    """A JWT outlives its user: the participation is written without one, as ON DELETE SET
    NULL would leave it, and the batch's other seats are written too."""
    async with pool.acquire() as conn:
        game = await make_game(conn)
        user = await make_user(conn)
    gone = uuid.uuid4()  # a signed-in user deleted since
    seats = [
        NewSeat(uuid.uuid4(), "dev-a", "A", "sock-a", user),
        NewSeat(uuid.uuid4(), "dev-b", "B", "sock-b", gone),
    ]
    written = await GameRepository(pool).add_players(game, seats)
    assert written == {str(s.player_id) for s in seats}
    assert await _participants(pool, game) == {
        "sock-a": ("active", user),
        "sock-b": ("active", None),
    }


async def test_another_socket_joining_at_once_leaves_that_participation_out(
    pool: asyncpg.Pool,
) -> None:
    """The device's other socket records its participation while the seat is written: the
    one-active-per-device index keeps that one, the seat and the batch's others are written,
    and the seat's participation is reported as not written."""
    async with pool.acquire() as conn:
        game = await make_game(conn)
        old_seat = await make_player(conn, game, "dev-d", "Old")
        await conn.execute("UPDATE public.players SET removed_at = now() WHERE id = $1", old_seat)
    other = await pool.acquire()
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "INSERT INTO public.room_participants (game_id, socket_id, device_id, player_id)"
            " VALUES ($1, 'sock-other', 'dev-d', $2)",
            game,
            old_seat,
        )
        seats = [
            NewSeat(uuid.uuid4(), "dev-d", "D", "sock-d", None),
            NewSeat(uuid.uuid4(), "dev-e", "E", "sock-e", None),
        ]
        adding = asyncio.ensure_future(GameRepository(pool).add_players(game, seats))
        assert await eventually(lambda: writer_waiting(pool, "%INSERT INTO public.players%"))
        await tx.commit()
        written = await adding
    finally:
        await pool.release(other)
    assert written == {str(seats[1].player_id)}
    seated = await pool.fetchval(
        "SELECT count(*) FROM public.players WHERE game_id = $1 AND removed_at IS NULL", game
    )
    assert seated == 2
    assert await _participants(pool, game) == {
        "sock-other": ("active", None),
        "sock-e": ("active", None),
    }
