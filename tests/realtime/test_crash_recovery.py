"""kill -9 mid-question, restart: the game goes on from PostgreSQL with every acked answer."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.gamehelpers import Player, connect_host, create_game, join_player, make_test_quiz
from tests.servers import run_server
from tests.sioclient import Recorder


async def _answering(client: Recorder) -> dict[str, Any]:
    while True:
        started: dict[str, Any] = await client.expect("game:question:started")
        if started["phase"] == "answering":
            return started


async def _rejoin(url: str, player: Player, last_seq: int) -> tuple[Recorder, dict[str, Any]]:
    client = await Recorder(url).connect()
    await client.register(player.device_id)
    ack = await client.sio.call(
        "game:rejoin",
        {
            "gameId": player.game_id,
            "playerId": player.player_id,
            "resumeToken": player.ack["resumeToken"],
            "lastSeq": last_seq,
        },
        timeout=10,
    )
    assert ack["ok"], ack
    return client, ack


CHOICES = {  # what each player answers, by question: same in both runs
    0: ("Tokyo", "Osaka"),
    1: ("True", "True"),
    2: ("tuiz", "nope"),
}


async def _answer(player_client: Recorder, game_id: str, q: dict[str, Any], pick: str) -> Any:
    question = q["question"]
    fields: dict[str, Any]
    if question["type"] == "type_answer":
        fields = {"text": pick}
    else:
        ids = {c["text"]: c["id"] for c in question["choices"]}
        fields = {"choiceIds": [ids[pick]]}
    return await player_client.sio.call(
        "game:answer:submit",
        {
            "gameId": game_id,
            "questionId": question["id"],
            "answerId": f"{question['id']}-x",
            **fields,
        },
        timeout=10,
    )


async def _scores(url: str, game_id: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=url) as http:
        board = (await http.get(f"/games/{game_id}/leaderboard")).json()["leaderboard"]
    return {row["name"]: row["score"] for row in board}


async def _play_rest(
    host_call: Any, clients: list[Recorder], game_id: str, start_question: int
) -> None:
    for index in range(start_question, 3):
        if index > start_question:
            await host_call("game:flow:next")  # leaderboard
            await host_call("game:flow:next")  # next question
        q = await _answering(clients[0])
        for client, pick in zip(clients, CHOICES[index], strict=True):
            assert (await _answer(client, game_id, q, pick))["ok"]
        await clients[0].expect("game:question:ended")
        if index == 0:
            await host_call("game:flow:next")  # explanation


async def test_kill_9_mid_question_then_restart(db_url: str, tmp_path: Path) -> None:
    quiz = await make_test_quiz(db_url)
    clients: list[Recorder] = []
    try:
        # -- the reference: the same answers, uninterrupted --------------------------------
        with run_server(db_url, tmp_path / "ref", TUIZ_LOAD_SAMPLE="false") as server:
            game = await create_game(server.url, quiz, auto_advance=False, time_bonus=False)
            host = await connect_host(server.url, game)
            players = [await join_player(server.url, game["game_code"], n) for n in ("A", "B")]
            clients += [host.client, *(p.client for p in players)]
            await host.command("game:flow:start")
            await _play_rest(host.command, [p.client for p in players], game["id"], 0)
            await host.command("game:flow:next")
            reference = await _scores(server.url, game["id"])
        assert reference == {"A": 2500, "B": 500}

        # -- the crash ---------------------------------------------------------------------
        port_dir = tmp_path / "crash"
        with run_server(db_url, port_dir, TUIZ_LOAD_SAMPLE="false") as server:
            port = server.port
            game = await create_game(server.url, quiz, auto_advance=False, time_bonus=False)
            host = await connect_host(server.url, game)
            a, b = [await join_player(server.url, game["game_code"], n) for n in ("A", "B")]
            clients += [host.client, a.client, b.client]
            await host.command("game:flow:start")
            q = await _answering(a.client)
            acked = await _answer(a.client, game["id"], q, CHOICES[0][0])
            assert acked["ok"]  # durable: must survive what comes next
            server.kill()

        await asyncio.gather(*(c.close() for c in clients))
        with run_server(db_url, port_dir, port=port, TUIZ_LOAD_SAMPLE="false") as again:
            url = again.url
            host2 = await Recorder(url).connect()
            clients.append(host2)
            await host2.register("host-device")
            ack = await host2.sio.call(
                "game:host:join",
                {"gameId": game["id"], "hostToken": game["host_token"]},
                timeout=10,
            )
            assert ack["ok"] and ack["snapshot"]["phase"] == "answering"
            a2, a_state = await _rejoin(url, a, 0)
            b2, b_state = await _rejoin(url, b, 0)
            clients += [a2, b2]
            mine = a_state["snapshot"]["me"]["answer"]
            assert mine is not None and mine["answerId"] == acked["answerId"]
            assert b_state["snapshot"]["me"]["answer"] is None
            assert b_state["snapshot"]["timeLeftMs"] > 0  # the deadline survived the crash

            async def host_call(event: str) -> Any:
                return await host2.sio.call(event, {"gameId": game["id"]}, timeout=10)

            # B answers question 1 now; it closes; the rest of the game is played
            question = a_state["snapshot"]["question"]
            assert (await _answer(b2, game["id"], {"question": question}, CHOICES[0][1]))["ok"]
            await a2.expect("game:question:ended")
            await host_call("game:flow:next")  # explanation
            await host_call("game:flow:next")  # leaderboard
            await host_call("game:flow:next")  # question 2
            await _play_rest(host_call, [a2, b2], game["id"], 1)
            await host_call("game:flow:next")
            assert await _scores(url, game["id"]) == reference

        conn = await asyncpg.connect(db_url)
        try:
            rows = await conn.fetch(
                "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY 1",
                uuid.UUID(game["id"]),
            )
        finally:
            await conn.close()
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_replay_cli_and_endpoint_match_the_live_game(db_url: str, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    quiz = await make_test_quiz(db_url)
    with run_server(db_url, tmp_path, TUIZ_LOAD_SAMPLE="false") as server:
        game = await create_game(server.url, quiz, auto_advance=False)
        host = await connect_host(server.url, game)
        a = await join_player(server.url, game["game_code"], "A")
        try:
            await host.command("game:flow:start")
            q = await _answering(a.client)
            assert (await _answer(a.client, game["id"], q, "Tokyo"))["ok"]
            await a.client.expect("game:question:ended")
            live = await _scores(server.url, game["id"])
            async with httpx.AsyncClient(base_url=server.url) as http:
                path = f"/games/{game['id']}/replay"
                assert (await http.get(path)).status_code == 403  # true scores: host only
                host_only = {"x-host-token": game["host_token"]}
                replayed = (await http.get(path, headers=host_only)).json()
        finally:
            await host.client.close()
            await a.client.close()
    assert {r["name"]: r["score"] for r in replayed["leaderboard"]} == live
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tuiz.cli", "replay", game["id"]],
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["last_seq"] >= replayed["last_seq"]  # later: the sockets' disconnects
    assert {r["name"]: r["score"] for r in printed["leaderboard"]} == live
    unknown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tuiz.cli", "replay", str(uuid.uuid4())],
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1 and "no event log" in unknown.stderr
