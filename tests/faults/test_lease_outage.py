"""The database goes away for a while shorter than a game's lease: the owner keeps the game.

The lease is renewed every third of its life; a renewal the database cannot answer is tried
again every 0.25 s (cluster/ownership.py), not a whole third later: with the default 15 s
lease, waiting 5 s after each failed try let a 10 s outage run the lease out, and every live
game of a cluster failed over (and all its players reconnected) once the database was back.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.cluster.test_two_processes import metric
from tests.faults.pgproc import PostgresProcess
from tests.gamehelpers import create_game, make_test_quiz
from tests.servers import run_server
from tests.sioclient import eventually

LEASE_MS = 3000  # renewed every second
OUTAGE_S = 4.0  # four renewal periods (with no other process, a lapsed lease stays ours)


async def _lease(db_url: str, game_id: uuid.UUID) -> asyncpg.Record | None:
    conn = await asyncpg.connect(db_url)
    try:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT owner, expires_at FROM public.game_owners WHERE game_id = $1", game_id
        )
        return row
    finally:
        await conn.close()


async def test_renewals_are_retried_while_the_database_is_away(
    own_postgres: tuple[PostgresProcess, str], tmp_path: Path
) -> None:
    pg, db_url = own_postgres
    quiz = await make_test_quiz(db_url)
    env = {"TUIZ_GAME_LEASE_MS": str(LEASE_MS), "TUIZ_LOAD_SAMPLE": "false"}
    with run_server(db_url, tmp_path, **env) as server:
        game = await create_game(server.url, quiz, auto_advance=False)
        game_id = uuid.UUID(game["id"])
        before = await _lease(db_url, game_id)
        assert before is not None

        async def renewed() -> bool:
            now = await _lease(db_url, game_id)
            return now is not None and now["expires_at"] > before["expires_at"]

        assert await eventually(renewed, timeout=15)  # just after a renewal
        failed = await metric(server, "tuiz_game_lease_renewals_failed_total")
        await asyncio.to_thread(pg.stop, "immediate")
        await asyncio.sleep(OUTAGE_S)  # the outage itself, not a wait for an event
        tried = await metric(server, "tuiz_game_lease_renewals_failed_total") - failed
        await asyncio.to_thread(pg.start)

        # One try per 1 s period would be at most 4 in 4 s; every 0.25 s after the first
        # (which comes a period after the last renewal) it is about 12 (a slow machine: 8).
        assert tried >= 8, tried
        after = await _lease(db_url, game_id)
        assert after is not None and after["owner"] == before["owner"]
        assert await eventually(renewed, timeout=15)
        assert await metric(server, "tuiz_game_leases_lost_total") == 0
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get(f"/games/{game['id']}")).status_code == 200
