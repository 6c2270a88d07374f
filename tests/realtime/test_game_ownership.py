"""One owner per live game: a second process refuses to run a game another one runs."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.gamehelpers import create_game, make_test_quiz
from tests.servers import run_server


async def test_second_process_refuses_a_game_run_elsewhere(db_url: str, tmp_path: Path) -> None:
    quiz = await make_test_quiz(db_url)
    with (
        run_server(db_url, tmp_path / "one", TUIZ_LOAD_SAMPLE="false") as one,
        run_server(db_url, tmp_path / "two", TUIZ_LOAD_SAMPLE="false") as two,
    ):
        game = await create_game(one.url, quiz)
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{one.url}/games/{game['id']}")).status_code == 200
            refused = await http.post(
                f"{two.url}/games/{game['id']}/join", json={"player_name": "X", "device_id": "d"}
            )
            assert refused.status_code == 503 and refused.json()["error"] == "UNAVAILABLE"
            assert "another tuiz process" in refused.json()["message"]
        conn = await asyncpg.connect(db_url)
        try:
            owner = await conn.fetchval(
                "SELECT owner FROM game_owners WHERE game_id = $1", uuid.UUID(game["id"])
            )
            players = await conn.fetchval(
                "SELECT count(*) FROM players WHERE game_id = $1 AND NOT is_host",
                uuid.UUID(game["id"]),
            )
        finally:
            await conn.close()
        assert owner is not None and owner.split(":")[1] == str(one.process.pid)
        assert players == 0  # the refused join wrote nothing

        # the owner stops cleanly: it lets the game go, and the other process takes it up
        one.terminate()
        async with httpx.AsyncClient(timeout=10) as http:
            taken = await http.post(
                f"{two.url}/games/{game['id']}/join", json={"player_name": "X", "device_id": "d"}
            )
        assert taken.status_code == 201, taken.text
