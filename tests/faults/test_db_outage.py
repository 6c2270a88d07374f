"""PostgreSQL stops mid-game and comes back: UNAVAILABLE at once, then everything works again.

The test owns its PostgreSQL (`pgproc`), so stopping it touches no other test. While it is
away, answers, host commands, `ws:connect`, REST writes and `/ready` must say UNAVAILABLE
quickly; once it is back, the same server (no restart) must take answers again, run its timers,
create games, and exit on SIGTERM within its drain timeout, with every acknowledged answer in
the log and every game's `seq` gapless.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import make_user
from tests.faults.pgproc import PostgresProcess
from tests.gamehelpers import QUIZ, Player, connect_host, create_game, join_player
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually
from tuiz.store.quizzes import import_quiz

PLAYERS = 6
ANSWERED_BEFORE = 3  # players whose answer is acknowledged before the outage
FAST = 5.0  # seconds: "at once" for a refusal, generous for a loaded CI machine
DRAIN_TIMEOUT_MS = 6000
RECOVERY_TIMEOUT = 30.0


async def _quiz(db_url: str, first_answering_time: int) -> uuid.UUID:
    """The shared test quiz; question 2 closes by its timer (5 s, the shortest allowed)."""
    doc = copy.deepcopy(QUIZ)
    doc["questions"][0]["answering_time"] = first_answering_time
    doc["questions"][1]["answering_time"] = 5
    conn = await asyncpg.connect(db_url)
    try:
        return await import_quiz(conn, await make_user(conn), doc)
    finally:
        await conn.close()


async def _answering(client: Recorder) -> dict[str, Any]:
    while True:
        started: dict[str, Any] = await client.expect("game:question:started", timeout=15)
        if started["phase"] == "answering":
            return started


async def _answer(player: Player, question: dict[str, Any], pick: str) -> dict[str, Any]:
    ids = {c["text"]: c["id"] for c in question["choices"]}
    ack: dict[str, Any] = await player.client.sio.call(
        "game:answer:submit",
        {
            "gameId": player.game_id,
            "questionId": question["id"],
            "answerId": f"{player.player_id[:8]}-{question['id'][:8]}",  # same on every retry
            "choiceIds": [ids[pick]],
        },
        timeout=30,  # a hang fails the timing assertions below, not this call
    )
    return ack


async def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def _ready_status(http: httpx.AsyncClient) -> int:
    return (await http.get("/ready", timeout=10)).status_code


async def _wait_ready(http: httpx.AsyncClient, timeout: float) -> float:
    """Poll /ready until 200; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await _ready_status(http) == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"/ready not 200 within {timeout}s of the database's return")


async def _wait_log(server: ServerProcess, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout}s"
        await asyncio.sleep(0.1)


async def _flow(db_url: str, game_id: str, question_index: int) -> asyncpg.Record | None:
    conn = await asyncpg.connect(db_url)
    try:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM game_flows WHERE game_id = $1 AND current_question_index = $2",
            uuid.UUID(game_id),
            question_index,
        )
        return row
    finally:
        await conn.close()


async def _refusals_while_down(
    server: ServerProcess, http: httpx.AsyncClient, quiz: uuid.UUID, game: dict[str, Any],
    host_client: Recorder, late: list[Player], question: dict[str, Any],
) -> dict[str, float]:  # fmt: skip
    """Every kind of request is refused with UNAVAILABLE, quickly; returns the slowest each."""
    slowest: dict[str, float] = {}

    def took(kind: str, seconds: float) -> None:
        slowest[kind] = max(slowest.get(kind, 0.0), seconds)

    for player in late:
        ack, seconds = await _timed(_answer(player, question, "Osaka"))
        assert ack["ok"] is False and ack["error"] == "UNAVAILABLE", ack
        took("answer", seconds)
    ack, seconds = await _timed(
        host_client.sio.call("game:flow:pause", {"gameId": game["id"]}, timeout=30)
    )
    assert ack["ok"] is False and ack["error"] == "UNAVAILABLE", ack
    took("host_command", seconds)
    body = {"quiz_set_id": str(quiz), "device_id": "host-2", "game_settings": {}}
    response, seconds = await _timed(http.post("/games", json=body, timeout=30))
    assert response.status_code == 503 and response.json()["error"] == "UNAVAILABLE"
    took("post_games", seconds)
    response, seconds = await _timed(http.get(f"/games/{uuid.uuid4()}", timeout=30))
    assert response.status_code == 503 and response.json()["error"] == "UNAVAILABLE"
    took("get_game", seconds)
    newcomer = await Recorder(server.url).connect()
    try:
        ack, seconds = await _timed(
            newcomer.sio.call("ws:connect", {"deviceId": "dev-newcomer"}, timeout=30)
        )
        assert ack["ok"] is False and ack["error"] == "UNAVAILABLE", ack
        took("ws_connect", seconds)
    finally:
        await newcomer.close()
    status, seconds = await _timed(_ready_status(http))
    assert status == 503
    took("ready", seconds)
    return slowest


@pytest.mark.parametrize("stop_mode", ["immediate", "fast"])
async def test_postgres_outage_mid_game_then_recovery(
    own_postgres: tuple[PostgresProcess, str], tmp_path: Path, stop_mode: str
) -> None:
    pg, db_url = own_postgres
    quiz = await _quiz(db_url, 120)  # question 1 stays open through the outage
    short_quiz = await _quiz(db_url, 5)  # its deadline passes while the database is away
    clients: list[Recorder] = []
    acked: dict[str, str] = {}  # player id -> acknowledged answer id
    env = {
        "TUIZ_LOAD_SAMPLE": "false",
        "TUIZ_DRAIN_TIMEOUT_MS": str(DRAIN_TIMEOUT_MS),
        "TUIZ_DB_ACQUIRE_TIMEOUT_MS": "2000",
    }
    try:
        with run_server(db_url, tmp_path / "server", **env) as server:
            async with httpx.AsyncClient(base_url=server.url) as http:
                game = await create_game(server.url, quiz, auto_advance=False, time_bonus=False)
                host = await connect_host(server.url, game)
                players = [
                    await join_player(server.url, game["game_code"], f"P{i}")
                    for i in range(PLAYERS)
                ]
                clients += [host.client, *(p.client for p in players)]
                await host.command("game:flow:start")
                question = (await _answering(players[0].client))["question"]
                early, late = players[:ANSWERED_BEFORE], players[ANSWERED_BEFORE:]
                for player in early:
                    ack = await _answer(player, question, "Tokyo")
                    assert ack["ok"], ack
                    acked[player.player_id] = ack["answerId"]
                # A second game whose question closes (by its timer) during the outage.
                timed = await create_game(server.url, short_quiz, device_id="host-t")
                timed_host = await connect_host(server.url, timed)
                waiter = await join_player(server.url, timed["game_code"], "Waiter")
                clients += [timed_host.client, waiter.client]
                await timed_host.command("game:flow:start")
                await _answering(waiter.client)

                # -- the outage ------------------------------------------------------------
                await asyncio.to_thread(pg.stop, stop_mode)
                slowest = await _refusals_while_down(
                    server, http, quiz, game, host.client, late, question
                )
                assert max(slowest.values()) < FAST, slowest
                await _wait_log(server, "tick_refused", timeout=15)  # the timed game's deadline

                # -- the database returns: the same process recovers by itself ---------------
                await asyncio.to_thread(pg.start)
                back = time.monotonic()
                recovery = await _wait_ready(http, RECOVERY_TIMEOUT)
                # Nobody acts on the timed game: reloaded by itself, its deadline fires.
                await waiter.client.expect("game:question:ended", timeout=15)
                timer_fired = time.monotonic() - back
                assert not (await waiter.client.expect("game:player:result"))["answered"]
                for player in late:  # refused answers, retried with the same id
                    ack = await _answer(player, question, "Osaka")
                    assert ack["ok"], ack
                    acked[player.player_id] = ack["answerId"]
                answers_back = time.monotonic() - back
                again = await _answer(early[0], question, "Tokyo")  # acked before: same ack
                assert again["ok"] and again["answerId"] == acked[early[0].player_id]
                # Everyone has answered: the question closes and each player hears how it went.
                for player in players:
                    await player.client.expect("game:question:ended", timeout=15)
                    result = await player.client.expect("game:player:result", timeout=15)
                    assert result["questionId"] == question["id"] and result["answered"]
                    assert result["correct"] is (player in early)

                # Host commands work, and the (reloaded) game's timers fire: question 2
                # closes by its 5-second deadline with nobody answering.
                assert (await host.command("game:flow:next"))["ok"]  # explanation
                assert (await host.command("game:flow:next"))["ok"]  # leaderboard
                assert (await host.command("game:flow:next"))["ok"]  # question 2
                second_question = (await _answering(players[0].client))["question"]
                ended = await players[0].client.expect("game:question:ended", timeout=15)
                assert ended["questionId"] == second_question["id"]
                # The tables (projections) caught up too.
                flow = await eventually(lambda: _flow(db_url, game["id"], 1))
                assert flow is not None, "game_flows never reached question 2"

                # New games and new sockets work too.
                second = await create_game(server.url, quiz, device_id="host-2")
                newcomer = await join_player(server.url, second["game_code"], "Newcomer")
                clients.append(newcomer.client)

            # -- SIGTERM after the outage: gone within the drain timeout --------------------
            code, stopping = await _timed(asyncio.to_thread(server.terminate, 30))
            assert code in (0, -15), server.log()
            assert stopping < DRAIN_TIMEOUT_MS / 1000, server.log()
            assert "Application shutdown complete" in server.log()

        conn = await asyncpg.connect(db_url)
        try:
            logged = {
                r["player_id"]: r["answer_id"]
                for r in await conn.fetch(
                    "SELECT player_id::text, payload->>'answer_id' AS answer_id"
                    "  FROM game_events WHERE game_id = $1 AND event_type = $2",
                    uuid.UUID(game["id"]),
                    "game:answer:accepted",
                )
            }
            assert logged == acked  # every acknowledged answer, once, and nothing else
            for game_id in (game["id"], timed["id"], second["id"]):
                seqs = await conn.fetch(
                    "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY 1",
                    uuid.UUID(game_id),
                )
                assert [r[0] for r in seqs] == list(range(1, len(seqs) + 1))
        finally:
            await conn.close()
        print(
            f"\nslowest refusal while down: {slowest}\n"
            f"/ready 200 again {recovery:.2f}s after PostgreSQL was back; the timed game's"
            f" deadline fired after {timer_fired:.2f}s; retried answers all acked after"
            f" {answers_back:.2f}s\n"
            f"SIGTERM to exit: {stopping:.2f}s (drain timeout {DRAIN_TIMEOUT_MS / 1000:.0f}s)"
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_frozen_database_waits_are_bounded_and_sigterm_exits(
    own_postgres: tuple[PostgresProcess, str], tmp_path: Path
) -> None:
    """A database that stops answering without an error (SIGSTOP: a lost network) is the hard
    case: only the bounded waits stand between the clients and a hang, and SIGTERM must still
    end the process within its drain timeout."""
    pg, db_url = own_postgres
    quiz = await _quiz(db_url, 120)
    clients: list[Recorder] = []
    env = {
        "TUIZ_LOAD_SAMPLE": "false",
        "TUIZ_DRAIN_TIMEOUT_MS": str(DRAIN_TIMEOUT_MS),
        "TUIZ_DB_ACQUIRE_TIMEOUT_MS": "1000",
        "TUIZ_DB_QUERY_TIMEOUT_MS": "2000",
    }
    bound = 2.0 + 1.0 + 1.5  # query timeout + a fresh connection's acquire + slack
    try:
        with run_server(db_url, tmp_path / "server", **env) as server:
            async with httpx.AsyncClient(base_url=server.url) as http:
                game = await create_game(server.url, quiz, auto_advance=False, time_bonus=False)
                host = await connect_host(server.url, game)
                players = [await join_player(server.url, game["game_code"], n) for n in "AB"]
                clients += [host.client, *(p.client for p in players)]
                await host.command("game:flow:start")
                question = (await _answering(players[0].client))["question"]
                acked = await _answer(players[0], question, "Tokyo")
                assert acked["ok"], acked

                await asyncio.to_thread(pg.freeze)
                try:
                    ack, refused_in = await _timed(_answer(players[1], question, "Osaka"))
                    assert ack["ok"] is False and ack["error"] == "UNAVAILABLE", ack
                    assert refused_in < bound, refused_in
                    body = {"quiz_set_id": str(quiz), "device_id": "host-2", "game_settings": {}}
                    response, seconds = await _timed(http.post("/games", json=body, timeout=30))
                    assert response.status_code == 503, response.text
                    assert seconds < bound, seconds
                    status, seconds = await _timed(_ready_status(http))
                    assert status == 503 and seconds < bound, (status, seconds)

                    # SIGTERM during the outage: sockets and games cannot be written down,
                    # and still the process is gone within its drain timeout.
                    code, stopping = await _timed(asyncio.to_thread(server.terminate, 30))
                    assert code in (0, -15), server.log()
                    assert stopping < DRAIN_TIMEOUT_MS / 1000, (stopping, server.log())
                    assert "Application shutdown complete" in server.log()  # not cut short
                finally:
                    await asyncio.to_thread(pg.thaw)

        conn = await asyncpg.connect(db_url)
        try:
            answers = await conn.fetch(
                "SELECT payload->>'answer_id' FROM game_events"
                " WHERE game_id = $1 AND event_type = 'game:answer:accepted'",
                uuid.UUID(game["id"]),
            )
            assert acked["answerId"] in [r[0] for r in answers]
            seqs = await conn.fetch(
                "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY 1",
                uuid.UUID(game["id"]),
            )
            assert [r[0] for r in seqs] == list(range(1, len(seqs) + 1))
        finally:
            await conn.close()
        print(
            f"\nfrozen database: answer refused in {refused_in:.2f}s;"
            f" SIGTERM to exit {stopping:.2f}s"
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
