"""Live games over real sockets: a whole game, answers at the edges, host control, rejoin."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.gamehelpers import (
    Host,
    Player,
    connect_host,
    create_game,
    join_player,
    make_test_quiz,
    next_phase,
)
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(db_url, tmp_path, TUIZ_LOAD_SAMPLE="false") as s:
        yield s


@pytest.fixture
async def closing() -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    await asyncio.gather(*(c.close() for c in made))


async def _setup(
    server: ServerProcess, db_url: str, closing: list[Recorder], players: int, **settings: Any
) -> tuple[Host, list[Player], dict[str, Any]]:
    quiz = await make_test_quiz(db_url)
    game = await create_game(server.url, quiz, auto_advance=False, **settings)
    host = await connect_host(server.url, game)
    closing.append(host.client)
    joined = []
    for i in range(players):
        player = await join_player(server.url, game["game_code"], f"Player {i}")
        closing.append(player.client)
        joined.append(player)
    return host, joined, game


async def test_full_game_with_host_and_players(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    host, players, game = await _setup(server, db_url, closing, 3)
    assert (await host.command("game:flow:start"))["ok"]
    started = await next_phase(players[0].client, "answering")
    question = (await players[0].client.expect("game:question:started"))["question"]
    assert "is_correct" not in str(question["choices"])
    correct = "Tokyo"
    ids = {c["text"]: c["id"] for c in question["choices"]}
    acks = await asyncio.gather(
        players[0].answer(question["id"], choiceIds=[ids[correct]], answerId="a1"),
        players[1].answer(question["id"], choiceIds=[ids["Osaka"]], answerId="a2"),
        players[2].answer(question["id"], choiceIds=[ids[correct]], answerId="a3"),
    )
    assert all(a["ok"] for a in acks), acks
    assert acks[0]["submittedAt"] <= started["endsAt"]
    # everyone answered: the question closes early and each player learns their result
    ended = await players[1].client.expect("game:question:ended")
    assert ended["correctChoiceIds"] == [ids[correct]]
    assert ended["counts"] == {ids[correct]: 2, ids["Osaka"]: 1, ids["Kyoto"]: 0}
    result = await players[1].client.expect("game:player:result")
    assert result["correct"] is False and result["points"] == 0
    mine = await players[0].client.expect("game:player:result")
    assert mine["correct"] is True and 500 <= mine["points"] <= 1000

    await host.command("game:flow:next")  # -> explanation
    shown = await players[0].client.expect("game:explanation:show")
    assert shown["explanation"]["title"] == "Tokyo"
    await host.command("game:flow:next")  # -> leaderboard
    board = await players[0].client.expect("game:leaderboard:update")
    assert [row["rank"] for row in board["leaderboard"]] == [1, 2, 3] or board["leaderboard"]

    await host.command("game:flow:next")  # -> question 2
    q2 = None
    while q2 is None or q2["phase"] != "answering":
        q2 = await players[0].client.expect("game:question:started")
    tf = {c["text"]: c["id"] for c in q2["question"]["choices"]}
    for p in players:
        await p.answer(q2["question"]["id"], choiceIds=[tf["True"]])
    await players[0].client.expect("game:question:ended")
    await host.command("game:flow:next")  # -> leaderboard
    await host.command("game:flow:next")  # -> question 3
    q3 = None
    while q3 is None or q3["phase"] != "answering":
        q3 = await players[0].client.expect("game:question:started")
    texts = ["  TUIZ ", "tuiz", "nope"]
    for p, text in zip(players, texts, strict=True):
        assert (await p.answer(q3["question"]["id"], text=text))["ok"]
    await players[0].client.expect("game:question:ended")
    await host.command("game:flow:next")  # -> podium (no leaderboard after the last)
    end = await players[0].client.expect("game:end")
    assert end["completed"] is True and len(end["podium"]) == 3

    # the database agrees with what the players were told
    async with httpx.AsyncClient(base_url=server.url) as http:
        board = (await http.get(f"/games/{game['id']}/leaderboard")).json()["leaderboard"]
    conn = await asyncpg.connect(db_url)
    try:

        async def scores_written() -> dict[str, int] | None:
            rows = await conn.fetch(
                "SELECT player_id::text, score FROM game_player_data WHERE game_id = $1",
                __import__("uuid").UUID(game["id"]),
            )
            got = {r[0]: r[1] for r in rows}
            want = {row["player_id"]: row["score"] for row in board}
            return got if got == want else None

        assert await eventually(scores_written)
        status = await conn.fetchval(
            "SELECT status::text FROM games WHERE id = $1", __import__("uuid").UUID(game["id"])
        )
        assert status == "finished"
        seqs = await conn.fetch(
            "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY 1",
            __import__("uuid").UUID(game["id"]),
        )
        assert [r[0] for r in seqs] == list(range(1, len(seqs) + 1))
    finally:
        await conn.close()


async def test_answers_refused_clearly(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    host, (alice, bob), game = await _setup(server, db_url, closing, 2)
    early = await alice.answer("00000000-0000-0000-0000-000000000000", choiceIds=["x"])
    assert early["ok"] is False and early["error"] == "WRONG_PHASE"
    await host.command("game:flow:start")
    q = None
    while q is None or q["phase"] != "answering":
        q = await alice.client.expect("game:question:started")
    qid = q["question"]["id"]
    choice = q["question"]["choices"][0]["id"]
    wrong_q = await alice.answer("00000000-0000-0000-0000-000000000000", choiceIds=[choice])
    assert wrong_q["error"] == "VALIDATION_ERROR"
    bad_choice = await alice.answer(qid, choiceIds=["not-a-choice"])
    assert bad_choice["error"] == "VALIDATION_ERROR"
    first = await alice.answer(qid, choiceIds=[choice], answerId="once")
    again = await alice.answer(qid, choiceIds=[choice], answerId="once")
    assert first == again  # idempotent retry: the same acknowledgement
    other = await alice.answer(qid, choiceIds=[choice], answerId="twice")
    assert other["ok"] is False and other["error"] == "CONFLICT"
    forged = await bob.client.sio.call(
        "game:answer:submit",
        {
            "gameId": game["id"],
            "playerId": alice.player_id,
            "questionId": qid,
            "choiceIds": [choice],
        },
        timeout=10,
    )
    assert forged["error"] == "FORBIDDEN"
    not_host = await alice.client.sio.call("game:flow:next", {"gameId": game["id"]}, timeout=10)
    assert not_host["error"] == "FORBIDDEN"


async def test_join_errors_and_host_controls(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    host, (alice,), game = await _setup(server, db_url, closing, 1, max_players=2)
    pin = game["game_code"]
    stranger = await Recorder(server.url).connect()
    closing.append(stranger)
    await stranger.register("dev-stranger")

    async def join(nickname: str, pin: str = pin) -> dict[str, Any]:
        ack: dict[str, Any] = await stranger.sio.call(
            "game:join", {"pin": pin, "nickname": nickname}, timeout=10
        )
        return ack

    assert (await join("x", pin="000000"))["error"] in ("NOT_FOUND", "VALIDATION_ERROR")
    assert (await join("Player 0"))["error"] == "CONFLICT"
    assert (await join("player 0"))["error"] == "CONFLICT"
    assert (await join("x" * 200))["error"] == "VALIDATION_ERROR"
    assert (await join("   "))["error"] == "VALIDATION_ERROR"
    assert (await host.command("game:lock", locked=True))["ok"]
    assert (await join("Late"))["error"] == "GAME_LOCKED"
    await host.command("game:lock", locked=False)
    bob = await join("Bob")
    assert bob["ok"]
    third = await Recorder(server.url).connect()
    closing.append(third)
    await third.register("dev-third")
    full = await third.sio.call("game:join", {"pin": pin, "nickname": "Carol"}, timeout=10)
    assert full["error"] == "GAME_FULL"

    # kick with ban: the device cannot come back
    kicked = await host.command("game:kick", playerId=bob["playerId"], ban=True)
    assert kicked["ok"]
    note = await stranger.expect("game:player-kicked")
    assert note["player_id"] == bob["playerId"] and note["banned"] is True
    assert (await join("Bob again"))["error"] == "FORBIDDEN"
    rejoin = await stranger.sio.call(
        "game:rejoin",
        {"gameId": game["id"], "playerId": bob["playerId"], "resumeToken": bob["resumeToken"]},
        timeout=10,
    )
    assert rejoin["error"] == "FORBIDDEN"
    assert alice.client.pending("game:player-kicked") == 0  # not broadcast to everyone


async def test_pause_preserves_time_left_and_rejoin_gets_the_seat(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    host, (alice, bob), game = await _setup(server, db_url, closing, 2)
    await host.command("game:flow:start")
    q = None
    while q is None or q["phase"] != "answering":
        q = await alice.client.expect("game:question:started")
    qid = q["question"]["id"]
    choice = q["question"]["choices"][1]["id"]
    await alice.answer(qid, choiceIds=[choice], answerId="alice-1")
    paused = await host.command("game:flow:pause")
    assert paused["ok"]
    pause = await bob.client.expect("game:pause")
    assert 0 < pause["remainingMs"] <= 10_000
    refused = await bob.answer(qid, choiceIds=[choice])
    assert refused["error"] == "WRONG_PHASE"

    # alice reloads: a new socket, same device, resume token -> same seat and answer
    await alice.client.close()
    again = await Recorder(server.url).connect()
    closing.append(again)
    await again.register(alice.device_id)
    back = await again.sio.call(
        "game:rejoin",
        {
            "gameId": game["id"],
            "playerId": alice.player_id,
            "resumeToken": alice.ack["resumeToken"],
            "lastSeq": 0,
        },
        timeout=10,
    )
    assert back["ok"], back
    me = back["snapshot"]["me"]
    assert me["playerId"] == alice.player_id and me["answer"]["answerId"] == "alice-1"
    assert back["snapshot"]["paused"] is True and back["snapshot"]["gameId"] == game["id"]
    # The catch-up is what alice's socket received live, in order, as socket events.
    missed = back["missed"]
    assert [m["seq"] for m in missed] == sorted(m["seq"] for m in missed)
    events = [m["event"] for m in missed]
    assert events[:2] == ["game:started", "game:phase:change"]
    assert "game:question:started" in events and events[-1] == "game:pause"
    assert missed[-1]["data"]["remainingMs"] == pause["remainingMs"]
    wrong_device = await Recorder(server.url).connect()
    closing.append(wrong_device)
    await wrong_device.register("dev-thief")
    stolen = await wrong_device.sio.call(
        "game:rejoin",
        {
            "gameId": game["id"],
            "playerId": alice.player_id,
            "resumeToken": alice.ack["resumeToken"],
        },
        timeout=10,
    )
    assert stolen["error"] == "FORBIDDEN"

    await asyncio.sleep(0.3)  # real time passes while paused; it must not count
    resumed = await host.command("game:flow:resume")
    assert resumed["ok"]
    resume = await bob.client.expect("game:resume")
    left_after = resume["endsAt"] - resumed["snapshot"]["serverTime"]
    assert abs(left_after - pause["remainingMs"]) < 1000
    assert (await bob.answer(qid, choiceIds=[choice]))["ok"]


async def test_late_join_and_host_reconnect(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    host, (alice,), game = await _setup(server, db_url, closing, 1)
    await host.command("game:flow:start")
    await next_phase(alice.client, "answering")
    late = await join_player(server.url, game["game_code"], "Latecomer")
    closing.append(late.client)
    assert late.ack["snapshot"]["phase"] == "answering"
    await host.client.close()
    again = await connect_host(server.url, game)
    closing.append(again.client)
    assert (await again.command("game:flow:skip"))["ok"]
    await alice.client.expect("game:question:ended")


async def test_fifty_players_full_game(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    host, players, game = await _setup(server, db_url, closing, 0)
    players = list(
        await asyncio.gather(
            *(join_player(server.url, game["game_code"], f"P{i:02d}") for i in range(50))
        )
    )
    closing.extend(p.client for p in players)
    await host.command("game:flow:start")
    for index in range(3):
        if index:
            await host.command("game:flow:next")  # leaderboard
            await host.command("game:flow:next")  # next question
        starts = await asyncio.gather(*(next_phase(p.client, "answering") for p in players))
        assert len({s["questionId"] for s in starts}) == 1
        q = None
        while q is None or q["phase"] != "answering":
            q = await players[0].client.expect("game:question:started")
        question = q["question"]
        if question["type"] == "type_answer":
            picks: list[dict[str, Any]] = [
                {"text": "tuiz" if i % 3 else "wrong"} for i in range(50)
            ]
        else:
            choices = [c["id"] for c in question["choices"]]
            picks = [{"choiceIds": [choices[i % len(choices)]]} for i in range(50)]
        acks = await asyncio.gather(
            *(p.answer(question["id"], **pick) for p, pick in zip(players, picks, strict=True))
        )
        assert all(a["ok"] for a in acks)
        ended = await asyncio.gather(*(p.client.expect("game:question:ended") for p in players))
        assert sum(ended[0]["counts"].values()) == 50
        results = await asyncio.gather(*(p.client.expect("game:player:result") for p in players))
        assert all(r["answered"] for r in results)
        if index == 0:
            await host.command("game:flow:next")  # explanation
    await host.command("game:flow:next")
    ends = await asyncio.gather(*(p.client.expect("game:end") for p in players))
    assert all(e["completed"] for e in ends)
    async with httpx.AsyncClient(base_url=server.url) as http:
        board = (await http.get(f"/games/{game['id']}/leaderboard?limit=100")).json()
    rows = board["leaderboard"]
    assert len(rows) == 50
    for a, b in itertools.pairwise(rows):  # competition ranking
        assert a["score"] >= b["score"]
        assert (a["rank"] == b["rank"]) == (a["score"] == b["score"])


async def test_kicked_player_can_rejoin_unless_banned(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    host, (alice, bob), game = await _setup(server, db_url, closing, 2)
    await host.command("game:kick", playerId=alice.player_id)
    note = await alice.client.expect("game:player-kicked")
    assert note["banned"] is False
    refused = await alice.client.sio.call(
        "game:rejoin",
        {
            "gameId": game["id"],
            "playerId": alice.player_id,
            "resumeToken": alice.ack["resumeToken"],
        },
        timeout=10,
    )
    assert refused["error"] == "FORBIDDEN"  # the old seat is gone
    again = await alice.client.sio.call(
        "game:join", {"pin": game["game_code"], "nickname": "Player 0"}, timeout=10
    )
    assert again["ok"] and again["playerId"] != alice.player_id  # a new seat, same name

    await host.command("game:kick", playerId=bob.player_id, ban=True)
    banned = await bob.client.sio.call(
        "game:join", {"pin": game["game_code"], "nickname": "Bob"}, timeout=10
    )
    assert banned["error"] == "FORBIDDEN"
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT player_name, removed_at IS NOT NULL AS removed FROM players"
            " WHERE game_id = $1 AND NOT is_host ORDER BY created_at",
            __import__("uuid").UUID(game["id"]),
        )
    finally:
        await conn.close()
    assert [(r["player_name"], r["removed"]) for r in rows] == [
        ("Player 0", True),
        ("Player 1", True),
        ("Player 0", False),
    ]


async def test_answers_at_the_deadline_edge(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    """Server time is the only clock: just before the deadline counts, after the close not."""
    quiz = await make_test_quiz(db_url, answering_time=5)
    game = await create_game(server.url, quiz, auto_advance=False)
    host = await connect_host(server.url, game)
    early = await join_player(server.url, game["game_code"], "Early")
    late = await join_player(server.url, game["game_code"], "Late")
    closing.extend([host.client, early.client, late.client])
    await host.command("game:flow:start")
    q = None
    while q is None or q["phase"] != "answering":
        q = await early.client.expect("game:question:started")
    qid, choice = q["question"]["id"], q["question"]["choices"][0]["id"]
    offset = q["endsAt"] - 1000 - (await host.command("game:state"))["snapshot"]["serverTime"]
    await asyncio.sleep(max(0.0, offset / 1000))  # one second before the deadline
    ok = await early.answer(qid, choiceIds=[choice])
    assert ok["ok"] and ok["submittedAt"] <= q["endsAt"]
    closed = await late.client.expect("game:question:ended")  # the deadline, on the server
    assert closed["questionId"] == qid
    too_late = await late.answer(qid, choiceIds=[choice])
    assert too_late["ok"] is False and too_late["error"] == "TOO_LATE"


async def test_only_the_host_hears_who_dropped_and_came_back(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    """The host page marks players Disconnected/Reconnected from these events; players never
    receive them, and they carry the seat's id, never its device id."""
    host, (alice, bob), game = await _setup(server, db_url, closing, 2)
    await bob.client.close()
    left = await host.client.expect("game:player-left")
    assert left["playerId"] == bob.player_id and left["gameId"] == game["id"]
    assert bob.device_id not in repr(left)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        rows = (await http.get(f"/games/{game['id']}/players")).json()["players"]
    assert {r["id"]: r["connected"] for r in rows} == {alice.player_id: True, bob.player_id: False}
    assert all("device_id" not in r for r in rows)

    again = await Recorder(server.url).connect()
    closing.append(again)
    await again.register(bob.device_id)
    rejoined = await again.sio.call(
        "game:rejoin",
        {"gameId": game["id"], "playerId": bob.player_id, "resumeToken": bob.ack["resumeToken"]},
        timeout=10,
    )
    assert rejoined["ok"], rejoined
    back = await host.client.expect("game:player-reconnected")
    assert back["playerId"] == bob.player_id and bob.device_id not in repr(back)

    # A room event after both: the players have it, and neither presence event before it.
    assert (await host.command("game:lock", locked=True))["ok"]
    for client in (alice.client, again):
        await client.expect("game:room-locked")
        assert client.pending("game:player-left") == 0
        assert client.pending("game:player-reconnected") == 0


async def test_a_join_whose_reply_was_lost_is_answered_again_with_its_key(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    """The phone's network drops as its `game:join` is applied: it reconnects and sends the
    same join, with the same key, and gets the seat it took with its resume token."""
    host, _, game = await _setup(server, db_url, closing, 0)
    key = "3b2e9a4c-0d1f-4e6a-9b7c-5d8e2f1a0c3b"
    first = await join_player(server.url, game["game_code"], "Alice", join_key=key)
    await first.client.close()  # its ack never reached the phone
    await host.client.expect("game:player-left")

    again = await Recorder(server.url).connect()
    closing.append(again)
    await again.register(first.device_id)
    ack = await again.sio.call(
        "game:join", {"pin": game["game_code"], "nickname": "Alice", "joinKey": key}, timeout=10
    )
    assert ack["ok"], ack
    assert set(ack) == set(first.ack)
    assert ack["playerId"] == first.player_id and ack["resumeToken"] == first.ack["resumeToken"]
    assert key not in repr(ack)
    await host.client.expect("game:player-reconnected")  # seated on the new socket

    # The seat works: the host's next room event reaches it, and the game has one player.
    bob = await join_player(server.url, game["game_code"], "Bob")
    closing.append(bob.client)
    joined = [await host.client.expect("game:player-joined") for _ in range(2)]
    assert [j["playerName"] for j in joined] == ["Alice", "Bob"]  # no second Alice
    assert joined[1]["playersCount"] == 2
    assert (await host.command("game:lock", locked=True))["ok"]
    await again.expect("game:room-locked")


async def _seat_write_waiting(db: asyncpg.Connection) -> bool:
    waiting: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND query LIKE '%INSERT INTO public.players%'"
    )
    return waiting > 0


async def test_a_join_writes_seat_and_participation_in_one_commit_and_a_close_waits_for_it(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    """The seat and the joining socket's participation are one commit; a socket that closes
    while that commit waits has its participation ended once it lands, never left active."""
    _, _, game = await _setup(server, db_url, closing, 0)
    alice = await join_player(server.url, game["game_code"], "Alice")
    closing.append(alice.client)
    db = await asyncpg.connect(db_url)
    try:
        same_commit = await db.fetchval(
            "SELECT p.xmin::text = rp.xmin::text FROM public.players p"
            " JOIN public.room_participants rp ON rp.player_id = p.id WHERE p.device_id = $1",
            alice.device_id,
        )
        assert same_commit is True

        blocker = await asyncpg.connect(db_url)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(  # a seat's row checks its game's row: the join waits there
            "SELECT 1 FROM public.games WHERE id = $1 FOR UPDATE", game["id"]
        )
        bob = await Recorder(server.url).connect()
        closing.append(bob)
        await bob.register("dev-bob-gone")
        await bob.sio.emit("game:join", {"pin": game["game_code"], "nickname": "Bob"})
        assert await eventually(lambda: _seat_write_waiting(db))
        await bob.close()  # gone before its join is written
        await tx.rollback()
        await blocker.close()

        async def ended() -> object:
            return await db.fetchval(
                "SELECT rp.status::text FROM public.room_participants rp"
                " JOIN public.websocket_connections wc ON wc.socket_id = rp.socket_id"
                " WHERE rp.device_id = 'dev-bob-gone' AND wc.status <> 'active'"
            )

        assert await eventually(ended) == "disconnected"
        active = await db.fetchval(
            "SELECT count(*) FROM public.room_participants"
            " WHERE device_id = 'dev-bob-gone' AND status = 'active'"
        )
        assert active == 0
    finally:
        await db.close()
