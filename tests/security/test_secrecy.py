"""A hostile player with a script, against a real server: before a question's reveal nothing
it can read tells which answer is right, and a device id never takes a seat or the host role.

Every payload a player, an outsider and an anonymous REST caller can get is scanned for the
answer key and for any score movement; after the reveal the same scan must find them (so the
scan itself is shown to work).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.gamehelpers import (
    connect_host,
    create_game,
    join_player,
    make_test_quiz,
)
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder
from tuiz.live.hub import hash_join_key

SERVICE_KEY = "secrecy-service-key"
ANSWER_KEY_FIELDS = {
    "is_correct",
    "correctChoiceIds",
    "acceptedAnswers",
    "accepted_answers",
    "quiz",
    "quiz_set_id",
    "host_device_id",
}
ALICE_KEY = "alice-join-key-0123456789abcdef"
KEY_SECRETS = {ALICE_KEY, hash_join_key(ALICE_KEY)}
"""A join key and what the game keeps of it: never in anything sent out."""
ZERO_UNTIL_REVEAL = {"score", "correctCount", "correct_count", "streak"}


def _tells(path: str, key: str, item: Any) -> bool:
    if key == "is_correct":  # the TUIZ client's answers[] carry it as null until the reveal
        return item is not None
    if key in ANSWER_KEY_FIELDS:
        return True
    if key in ZERO_UNTIL_REVEAL:
        return item not in (0, None)
    if key in ("answerCounts", "counts"):  # the host's live tally
        return item is not None
    if key == "points" and path.endswith("answer"):  # a question's `points` is its maximum
        return item is not None
    return key == "correct" and item not in (None, False)


def leaks(value: Any, secrets: set[str], path: str = "$") -> list[str]:
    """Where `value` tells something only the host may know before the reveal."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if _tells(path, key, item):
                found.append(f"{here}={item!r}")
            found += leaks(item, secrets, here)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found += leaks(item, secrets, f"{path}[{i}]")
    elif isinstance(value, str) and value in secrets:
        found.append(f"{path}={value}")
    return found


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(db_url, tmp_path, TUIZ_SERVICE_KEY=SERVICE_KEY) as s:
        yield s


@pytest.fixture
async def closing() -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for client in made:
        await client.close()


async def _outsider(server: ServerProcess, closing: list[Recorder], device: str) -> Recorder:
    client = await Recorder(server.url).connect()
    closing.append(client)
    await client.register(device)
    return client


async def test_nothing_tells_the_answer_before_the_reveal(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    quiz = await make_test_quiz(db_url)
    game = await create_game(server.url, quiz, auto_advance=False)
    gid, pin = game["id"], game["game_code"]
    host = await connect_host(server.url, game)
    alice = await join_player(server.url, pin, "Alice", device_id="dev-alice", join_key=ALICE_KEY)
    bob = await join_player(server.url, pin, "Bob", device_id="dev-bob")
    closing += [host.client, alice.client, bob.client]
    outsider = await _outsider(server, closing, "dev-outsider")
    await outsider.emit("room:join", {"roomId": gid})
    await outsider.expect("room:joined")

    await host.command("game:flow:start")
    started = await alice.client.expect("game:question:started")
    while started["phase"] != "answering":
        started = await alice.client.expect("game:question:started")
    question = started["question"]
    tokyo = next(c["id"] for c in question["choices"] if c["text"] == "Tokyo")
    assert (await alice.answer(question["id"], choiceIds=[tokyo], answerId="a1"))["ok"]
    secrets = {"dev-alice", "dev-bob", "host-device", *KEY_SECRETS}

    seen: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for path in (
            f"/games/{gid}",
            f"/games/by-code/{pin}",
            f"/games/{gid}/state",
            f"/games/{gid}/questions/current",
            f"/games/{gid}/players",
            f"/games/{gid}/leaderboard",
        ):
            response = await http.get(path)
            assert response.status_code == 200, path
            seen[f"GET {path}"] = response.json()
        as_host = {"x-host-token": game["host_token"]}
        for path in (f"/games/{gid}/report", f"/games/{gid}/replay"):
            response = await http.get(path, headers=as_host)
            assert response.status_code == 200, path
            assert not any(k in response.text for k in KEY_SECRETS), path
        for path in (
            f"/games/{gid}/report",
            f"/games/{gid}/report?format=csv",
            f"/games/{gid}/replay",
            f"/games/{gid}/players/{alice.player_id}/answers",
        ):
            refused = await http.get(path, headers={"x-device-id": "dev-alice"})
            assert refused.status_code == 403, path
        own = await http.get(
            f"/games/{gid}/players/{alice.player_id}/answers",
            headers={"x-resume-token": alice.ack["resumeToken"]},
        )
        assert own.status_code == 200 and own.json()["answers"][0]["choice_ids"] == [tokyo]
        seen["own answers"] = own.json()

    seen["alice game:state"] = await alice.client.sio.call("game:state", {"gameId": gid})
    seen["bob game:state"] = await bob.client.sio.call("game:state", {"gameId": gid})
    seen["bob leaderboard"] = await bob.client.sio.call("game:leaderboard:request", {"gameId": gid})
    again = await Recorder(server.url).connect()
    closing.append(again)
    await again.register("dev-alice")
    back = await again.sio.call(
        "game:rejoin",
        {
            "gameId": gid,
            "playerId": alice.player_id,
            "resumeToken": alice.ack["resumeToken"],
            "lastSeq": 0,
        },
    )
    assert back["ok"] and back["missed"], back
    assert all(set(m) == {"seq", "event", "data"} for m in back["missed"])
    assert "game:created" not in {m["event"] for m in back["missed"]}
    seen["alice rejoin"] = back
    seen["bob events"] = bob.client.log
    seen["outsider events"] = outsider.log

    own_device = {"alice": "dev-alice", "own": "dev-alice", "bob": "dev-bob", "outsider": ""}
    for where, payload in seen.items():
        hidden = secrets - {own_device.get(where.split()[0], "")}
        assert leaks(payload, hidden) == [], where
    # Not even to its own device or the host: the key goes in, nothing of it comes out.
    sent_out = [*seen.values(), alice.ack, alice.client.log, host.client.log]
    assert not any(k in repr(sent_out) for k in KEY_SECRETS)

    # The host sees its tally, and at the reveal everyone learns it: the scan finds it then.
    host_state = await host.command("game:state")
    assert host_state["snapshot"]["answerCounts"][tokyo] == 1
    assert (await host.command("game:flow:skip"))["ok"]
    ended = await bob.client.expect("game:question:ended")
    assert ended["correctChoiceIds"] == [tokyo]
    result = await alice.client.expect("game:player:result")
    assert result["correct"] is True and result["score"] > 0
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        board = (await http.get(f"/games/{gid}/leaderboard")).json()
    assert leaks(board, set()) != []


async def test_a_device_id_is_not_a_credential(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    quiz = await make_test_quiz(db_url)
    game = await create_game(server.url, quiz, auto_advance=False)
    gid, pin = game["id"], game["game_code"]
    host = await connect_host(server.url, game)
    alice = await join_player(server.url, pin, "Alice", device_id="dev-alice", join_key=ALICE_KEY)
    closing += [host.client, alice.client]

    thief = await _outsider(server, closing, "dev-alice")  # claims alice's device
    for key in ({}, {"joinKey": "a-guessed-key-0123456789"}):
        taken = await thief.sio.call("game:join", {"pin": pin, "nickname": "Alice2", **key})
        assert taken["ok"] is False and taken["error"] == "CONFLICT", taken
        assert "resumeToken" not in taken
    for bad in ("short", "k" * 129, "no spaces allowed here 0123", 12345678901234567):
        refused = await thief.sio.call("game:join", {"pin": pin, "nickname": "A", "joinKey": bad})
        assert refused["error"] == "VALIDATION_ERROR", bad
    forged = await thief.sio.call(
        "game:rejoin", {"gameId": gid, "playerId": alice.player_id, "resumeToken": "x" * 43}
    )
    assert forged["error"] == "FORBIDDEN"
    stolen = await thief.sio.call(
        "game:answer:submit", {"gameId": gid, "questionId": "q", "answer": "a"}
    )
    assert stolen["error"] == "FORBIDDEN"

    fake_host = await _outsider(server, closing, "host-device")  # claims the host's device
    for event, extra in (
        ("game:lock", {"locked": True}),
        ("game:flow:start", {}),
        ("game:flow:end", {}),
        ("game:kick", {"playerId": alice.player_id}),
    ):
        refused = await fake_host.sio.call(event, {"gameId": gid, **extra})
        assert refused["error"] == "FORBIDDEN", event
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        as_host = {"x-device-id": "host-device"}
        assert (await http.post(f"/games/{gid}/start", headers=as_host)).status_code == 403
        assert (
            await http.patch(f"/games/{gid}/lock", json={"locked": True}, headers=as_host)
        ).status_code == 403
        state = (await http.get(f"/games/{gid}")).json()
        players = (await http.get(f"/games/{gid}/players")).json()
    assert state["status"] == "waiting" and state["locked"] is False
    assert [p["player_name"] for p in players["players"]] == ["Alice"]
    assert leaks(players, {"dev-alice", "host-device"}) == []
    assert leaks(host.client.log, {"dev-alice"}) == []

    # The real alice still holds her seat, and her token works only from her device.
    assert (await alice.client.sio.call("game:state", {"gameId": gid}))["ok"]
    elsewhere = await _outsider(server, closing, "dev-elsewhere")
    moved = await elsewhere.sio.call(
        "game:rejoin",
        {"gameId": gid, "playerId": alice.player_id, "resumeToken": alice.ack["resumeToken"]},
    )
    assert moved["error"] == "FORBIDDEN"


async def test_outsiders_cannot_message_a_game_room(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    quiz = await make_test_quiz(db_url)
    game = await create_game(server.url, quiz, auto_advance=False)
    gid = game["id"]
    alice = await join_player(server.url, game["game_code"], "Alice")
    closing.append(alice.client)
    outsider = await _outsider(server, closing, "dev-outsider")
    await outsider.emit("room:join", {"roomId": gid})
    await outsider.expect("room:joined")
    await outsider.emit("room:message", {"roomId": gid, "message": "spam"})
    assert (await outsider.expect("ws:error"))["error"] == "FORBIDDEN"
    await alice.client.emit("room:message", {"roomId": gid, "message": "hello"})
    assert (await alice.client.expect("room:message"))["message"] == "hello"
    conn = await asyncpg.connect(db_url)
    try:
        messages = await conn.fetch(
            "SELECT payload FROM game_events WHERE game_id = $1 AND event_type = 'room:message'",
            uuid.UUID(gid),
        )
    finally:
        await conn.close()
    assert len(messages) == 1 and "spam" not in str(messages[0]["payload"])


async def test_report_csv_escapes_formulas(
    server: ServerProcess, db_url: str, closing: list[Recorder]
) -> None:
    quiz = await make_test_quiz(db_url)
    game = await create_game(server.url, quiz, auto_advance=False)
    evil = '=HYPERLINK("x.io")'
    player = await join_player(server.url, game["game_code"], evil)
    closing.append(player.client)
    host = {"x-host-token": game["host_token"]}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.get(f"/games/{game['id']}/report?format=csv", headers=host)
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[1][1] == "'" + evil
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
