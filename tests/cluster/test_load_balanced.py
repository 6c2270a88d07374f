"""nginx (deploy/nginx.conf) in front of three `tuiz serve` processes, one PostgreSQL, one Redis.

A game's host and players land on different processes and play to the podium, over websocket
and over long-polling; the owner is killed mid-question and another process carries the game
on with every acknowledged answer; Redis is killed and restarted mid-game.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.cluster.lb import Cluster, node_of
from tests.cluster.redisproc import RedisProcess
from tests.cluster.test_two_processes import await_fanout
from tests.gamehelpers import create_game, make_test_quiz
from tests.realtime.test_crash_recovery import CHOICES, _answer, _answering, _play_rest
from tests.sioclient import Recorder

REFERENCE = {"A": 2500, "B": 500}  # the same answers on one process (test_crash_recovery)
LEASE_MS = 3000


@pytest.fixture
def cluster(db_url: str, tmp_path: Path, stoppable_redis: RedisProcess) -> Iterator[Cluster]:
    with ExitStack() as stack:
        lease = str(LEASE_MS)
        yield Cluster(stack, db_url, tmp_path, stoppable_redis.url, TUIZ_GAME_LEASE_MS=lease)


@pytest.fixture
async def clients() -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


async def owner_index(cluster: Cluster, game_id: str) -> int:
    index = await cluster.owner_index(game_id)
    assert index is not None, "the game has no owner among the three processes"
    return index


async def connect_on(
    cluster: Cluster, made: list[Recorder], device: str, node: int, transport: str
) -> Recorder:
    """A socket through nginx that landed on process `node` (round-robin: a few tries)."""
    for _ in range(12):
        client = Recorder(cluster.url, transports=[transport])
        made.append(client)
        try:
            await client.connect()
        except Exception:
            continue  # nginx tried a process that just died
        if node_of(client.sio.eio.sid) == node:
            await client.register(device)
            return client
        await client.close()
    raise AssertionError(f"no session landed on process {node}")


async def call(client: Recorder, event: str, data: dict[str, Any]) -> dict[str, Any]:
    ack: dict[str, Any] = await client.sio.call(event, data, timeout=10)
    return ack


async def until_ok(client: Recorder, event: str, data: dict[str, Any], limit: float) -> Any:
    """Send until the owner accepts (UNAVAILABLE while a process takes the game over)."""
    async with asyncio.timeout(limit):
        while True:
            ack = await call(client, event, data)
            if ack.get("ok", True) is not False:
                return ack
            assert ack["error"] == "UNAVAILABLE", ack
            await asyncio.sleep(0.2)


async def seat(
    cluster: Cluster, made: list[Recorder], game: dict[str, Any], transport: str, nodes: list[int]
) -> tuple[Recorder, Recorder, Recorder, dict[str, Any], dict[str, Any]]:
    """The host on `nodes[0]`, player A on `nodes[1]`, player B on `nodes[2]`."""
    host = await connect_on(cluster, made, "host-device", nodes[0], transport)
    joined = await call(
        host, "game:host:join", {"gameId": game["id"], "hostToken": game["host_token"]}
    )
    assert joined["ok"], joined
    a = await connect_on(cluster, made, "device-a", nodes[1], transport)
    b = await connect_on(cluster, made, "device-b", nodes[2], transport)
    a_ack = await call(a, "game:join", {"pin": game["game_code"], "nickname": "A"})
    b_ack = await call(b, "game:join", {"pin": game["game_code"], "nickname": "B"})
    assert a_ack["ok"] and b_ack["ok"], (a_ack, b_ack)
    # Presence is cluster-wide: each count includes the sockets on the other processes.
    assert [(await c.expect("room:joined"))["clients"] for c in (host, a, b)] == [1, 2, 3]
    return host, a, b, a_ack, b_ack


async def new_game(cluster: Cluster, db_url: str) -> tuple[dict[str, Any], int]:
    """A game created through nginx, and the process that owns it."""
    quiz = await make_test_quiz(db_url)
    game = await create_game(cluster.url, quiz, auto_advance=False, time_bonus=False)
    return game, await owner_index(cluster, game["id"])


async def after_question_one(host_call: Any, players: list[Recorder], game_id: str) -> None:
    """From question 1's reveal to the podium, with the answers of test_crash_recovery."""
    await host_call("game:flow:next")  # explanation
    await host_call("game:flow:next")  # leaderboard
    await host_call("game:flow:next")  # question 2
    await _play_rest(host_call, players, game_id, 1)
    await host_call("game:flow:next")


async def leaderboard(url: str, game_id: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.get(f"/games/{game_id}/leaderboard")
    assert response.status_code == 200, response.text
    return {row["name"]: row["score"] for row in response.json()["leaderboard"]}


async def gapless(db_url: str, game_id: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        seqs = await conn.fetch(
            "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY 1",
            uuid.UUID(game_id),
        )
        answers = await conn.fetchval(
            "SELECT count(*) FROM game_events WHERE game_id = $1"
            " AND event_type = 'game:answer:accepted'",
            uuid.UUID(game_id),
        )
    finally:
        await conn.close()
    assert [r[0] for r in seqs] == list(range(1, len(seqs) + 1))
    assert answers == 6  # two players, three questions, each answer once


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_game_across_processes_to_the_podium(
    cluster: Cluster, clients: list[Recorder], transport: str, db_url: str
) -> None:
    game, owner = await new_game(cluster, db_url)
    others = [i for i in range(3) if i != owner]
    host, a, b, a_ack, _ = await seat(cluster, clients, game, transport, [*others, owner])

    # Credentials are checked by the owner whichever process forwards them.
    refused = await call(host, "game:flow:start", {"gameId": str(uuid.uuid4())})
    assert refused == {"ok": False, "error": "NOT_FOUND", "message": refused["message"]}
    stranger = await connect_on(cluster, clients, "stranger", others[1], transport)
    forged = await call(stranger, "game:host:join", {"gameId": game["id"], "hostToken": "x"})
    assert forged["ok"] is False and forged["error"] == "FORBIDDEN"
    async with httpx.AsyncClient(timeout=10) as http:
        for server in cluster.servers:  # REST through every process: one answer
            path = f"{server.url}/games/{game['id']}/players/{a_ack['playerId']}/answers"
            assert (await http.get(path)).status_code == 403
            view = (await http.get(f"{server.url}/games/by-code/{game['game_code']}")).json()
            assert view["id"] == game["id"] and "host_token" not in view

    async def host_call(event: str) -> Any:
        return await call(host, event, {"gameId": game["id"]})

    assert (await host_call("game:flow:start"))["ok"]
    await _play_rest(host_call, [a, b], game["id"], 0)
    accepted = await a.expect("game:answer:accepted")  # to A's own socket, from the owner
    assert accepted["playerId"] == a_ack["playerId"]
    assert (await host_call("game:flow:next"))["ok"]  # the podium
    while (await host.expect("game:phase:change"))["phase"] != "podium":
        pass
    for server in cluster.servers:
        assert await leaderboard(server.url, game["id"]) == REFERENCE
    await gapless(db_url, game["id"])
    # Room, player and host messages reach each socket in the owner's order (one stream).
    for socket in (host, a, b):
        seqs = [d["seq"] for _, d in socket.log if isinstance(d, dict) and "seq" in d]
        assert seqs == sorted(seqs) and len(seqs) > 10, seqs
    results = [e for e, _ in a.log if e in ("game:question:ended", "game:player:result")]
    assert results[:2] == ["game:question:ended", "game:player:result"], results
    assert a.pending("game:error") == b.pending("game:error") == 0
    assert host.pending("game:error") == 1  # the refusal above, sent to its own socket


async def test_owner_killed_mid_question(
    cluster: Cluster, clients: list[Recorder], db_url: str
) -> None:
    game, owner = await new_game(cluster, db_url)
    others = [i for i in range(3) if i != owner]
    host, a, b, _, b_ack = await seat(cluster, clients, game, "websocket", [*others, owner])

    async def host_call(event: str) -> Any:
        return await until_ok(host, event, {"gameId": game["id"]}, LEASE_MS / 1000 + 15)

    await host_call("game:flow:start")
    q = await _answering(a)
    acked = await _answer(a, game["id"], q, CHOICES[0][0])
    assert acked["ok"], acked  # durable on the owner: must survive what comes next

    cluster.servers[owner].kill()
    killed_at = len(host.log)
    await b.disconnected.wait()
    # B reconnects through nginx to a process still alive and takes its seat back.
    b2 = await connect_on(cluster, clients, "device-b", others[0], "websocket")
    rejoin = {
        "gameId": game["id"],
        "playerId": b_ack["playerId"],
        "resumeToken": b_ack["resumeToken"],
        "lastSeq": 0,
    }
    back = await until_ok(b2, "game:rejoin", rejoin, LEASE_MS / 1000 + 15)
    assert back["snapshot"]["phase"] == "answering" and back["snapshot"]["me"]["answer"] is None
    assert await owner_index(cluster, game["id"]) in others  # taken over

    # A's retry of the acked answer (its ack could have been lost) changes nothing.
    again = await _answer(a, game["id"], {"question": back["snapshot"]["question"]}, "Tokyo")
    assert again["ok"] and again["answerId"] == acked["answerId"]
    answered = await _answer(b2, game["id"], {"question": back["snapshot"]["question"]}, "Osaka")
    assert answered["ok"], answered
    await b2.expect("game:answer:accepted")  # per-seat events reach it on the new owner
    await a.expect("game:question:ended")
    await after_question_one(host_call, [a, b2], game["id"])
    for index in others:
        assert await leaderboard(cluster.servers[index].url, game["id"]) == REFERENCE
    await gapless(db_url, game["id"])
    # Sockets seated on the surviving processes were re-seated on the new owner: A's own
    # acknowledgements and the host's live answer counts kept reaching them.
    questions = {data["questionId"] for event, data in a.log if event == "game:answer:accepted"}
    assert len(questions) == 3
    after = [event for event, _ in host.log[killed_at:]]
    assert "game:answer:stats:update" in after


async def test_redis_killed_and_restarted(
    cluster: Cluster, clients: list[Recorder], db_url: str, stoppable_redis: RedisProcess
) -> None:
    game, owner = await new_game(cluster, db_url)
    other = (owner + 1) % 3
    host, a, b, _, _ = await seat(cluster, clients, game, "websocket", [owner, other, owner])

    async def host_call(event: str) -> Any:
        return await call(host, event, {"gameId": game["id"]})

    assert (await host_call("game:flow:start"))["ok"]
    q = await _answering(b)
    await _answering(a)  # through Redis, still up
    stoppable_redis.stop()
    await await_fanout(cluster.servers[owner], up=False)

    # The owner's own sockets carry on; a socket elsewhere gets a prompt, clear UNAVAILABLE.
    assert (await _answer(b, game["id"], q, CHOICES[0][1]))["ok"]
    refused = await _answer(a, game["id"], q, CHOICES[0][0])
    assert refused["ok"] is False and refused["error"] == "UNAVAILABLE", refused
    assert "Redis" in refused["message"] or "in time" in refused["message"]

    stoppable_redis.start()
    for server in cluster.servers:
        await await_fanout(server, up=True)
    question = q["question"]
    retry = {
        "gameId": game["id"],
        "questionId": question["id"],
        "answerId": f"{question['id']}-x",
        "choiceIds": [{c["text"]: c["id"] for c in question["choices"]}[CHOICES[0][0]]],
    }
    assert (await until_ok(a, "game:answer:submit", retry, 20))["ok"]
    await a.expect("game:question:ended")  # fan-out is back too
    await after_question_one(host_call, [a, b], game["id"])
    assert await leaderboard(cluster.url, game["id"]) == REFERENCE
    await gapless(db_url, game["id"])
