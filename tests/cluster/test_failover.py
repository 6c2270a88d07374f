"""Failover when the owner is on another host: nothing can see that process die, so its games
are taken over once its lease lapses (`TUIZ_GAME_LEASE_MS`), by a process that runs Failover."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.cluster.test_two_processes import await_log
from tests.gamehelpers import create_game, make_test_quiz
from tests.servers import run_server
from tests.sioclient import eventually

LEASE_MS = 1000
THEIRS_MS = 3000  # the other process's lease: long enough to see it held, short for a test


async def test_a_lapsed_lease_of_another_host_is_taken_over(
    db_url: str, tmp_path: Path, redis_url: str
) -> None:
    quiz = await make_test_quiz(db_url)
    env = {"REDIS_URL": redis_url, "TUIZ_GAME_LEASE_MS": str(LEASE_MS), "TUIZ_LOAD_SAMPLE": "false"}
    with run_server(db_url, tmp_path, **env) as server:
        game = await create_game(server.url, quiz, auto_advance=False)
        gid = uuid.UUID(game["id"])
        elsewhere = "another-host:4242:x:deadbeef"  # a process this host cannot look at
        conn = await asyncpg.connect(db_url)
        try:
            # That process took the game (say, after a network split) and then died: its lease
            # stands until it lapses; ours is gone.
            await conn.execute(
                "UPDATE game_owners SET owner = $2,"
                " expires_at = now() + make_interval(secs => $3 / 1000.0) WHERE game_id = $1",
                gid,
                elsewhere,
                THEIRS_MS,
            )
            await conn.execute("UPDATE games SET status = 'active' WHERE id = $1", gid)
            await await_log(server, "game_lease_lost")
            # No client asks for the game: Failover alone takes it up once the lease lapses.

            async def ours() -> bool:
                owner = await conn.fetchval("SELECT owner FROM game_owners WHERE game_id = $1", gid)
                return owner is not None and owner.split(":")[1] == str(server.process.pid)

            assert await eventually(ours, timeout=THEIRS_MS / 1000 + 10)
        finally:
            await conn.close()
        await await_log(server, "game_adopted")
        assert elsewhere in next(
            line for line in server.log().splitlines() if "game_adopted" in line
        )
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            back = await http.get(f"/games/{game['id']}")
        assert back.status_code == 200 and back.json()["id"] == game["id"]
