"""A whole game the way the TUIZ web client drives one, against a real `tuiz serve`.

The host signs in (Bearer JWT), creates the game by REST, and advances it itself: `start`,
its countdown, `questions/start`, `reveal`, the leaderboard and explanation, `next`, and the
podium, relaying each step on its anonymous socket. Players join by REST, bind their socket
with `ws:connect` + `room:join` from the same device, answer by REST (the client's claims of
correctness and points) and then `game:answer:submit`. Shapes are the client's
(`src/services/gameApi.ts`, `useGameFlow.ts`, `useGameAnswer.ts`); scores must be the
server's rule on the server's clock, in the REST views and in `game_player_data`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from tests.factories import make_user
from tests.security.test_secrecy import leaks
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually
from tuiz.game.model import Choice, GameSettings, Question, QuestionType
from tuiz.game.scoring import score_answer
from tuiz.store.quizzes import import_quiz

SECRET = "client-contract-jwt-secret-with-enough-length-0123"
SHOW, ANSWER = 1, 6  # seconds: the client views the question, then takes answers
CLIENT_SETTINGS = {  # what the dashboard's buildGameSettings sends
    "show_question_only": True,
    "show_explanation": True,
    "time_bonus": True,
    "streak_bonus": False,
    "show_correct_answer": False,
    "max_players": 400,
}
QUIZ: dict[str, Any] = {
    "version": 1,
    "title": "Client contract quiz",
    "status": "published",
    "is_public": False,
    "questions": [
        {
            "question_text": f"Question {n}?",
            "question_type": "multiple_choice",
            "show_question_time": SHOW,
            "answering_time": ANSWER,
            "show_explanation_time": 5,
            "points": 1000,
            "explanation_title": "Why",
            "explanation_text": "Because.",
            "answers": [
                {"answer_text": "Right", "is_correct": True},
                {"answer_text": "Wrong", "is_correct": False},
                {"answer_text": "Also wrong", "is_correct": False},
            ],
        }
        for n in (1, 2)
    ],
}


def bearer(user: uuid.UUID) -> dict[str, str]:
    claims = {"sub": str(user), "role": "authenticated", "exp": int(time.time()) + 600}
    return {"authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(db_url, tmp_path, TUIZ_JWT_SECRET=SECRET, TUIZ_LOAD_SAMPLE="false") as s:
        yield s


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def sockets() -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for client in made:
        await client.close()


async def owner_and_quiz(db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(db_url)
    try:
        owner = await make_user(conn)
        return owner, await import_quiz(conn, owner, QUIZ)
    finally:
        await conn.close()


async def socket_for(url: str, device: str, game_id: str, made: list[Recorder]) -> Recorder:
    """The client's SocketProvider: connect, `ws:connect`, then `room:join {roomId}`."""
    client = await Recorder(url).connect()
    made.append(client)
    await client.register(device)
    await client.emit("room:join", {"roomId": game_id})
    await client.expect("room:joined")
    return client


class Player:
    """One phone: REST join by PIN, then its socket from the same device."""

    def __init__(self, name: str, device: str) -> None:
        self.name, self.device = name, device
        self.id = ""
        self.socket: Recorder | None = None

    async def join(self, http: httpx.AsyncClient, url: str, code: str, made: list[Recorder]) -> str:
        game = (await http.get(f"/games/by-code/{code}")).json()
        joined = await http.post(
            f"/games/{game['id']}/join", json={"player_name": self.name, "device_id": self.device}
        )
        assert joined.status_code == 201, joined.text
        body = joined.json()
        assert body["success"] is True and body["player"]["player_name"] == self.name
        self.id = body["player"]["id"]
        data = await http.post(
            f"/games/{game['id']}/players/{self.id}/data",
            json={"player_device_id": self.device},
        )
        assert data.status_code == 409  # tolerated by the client: the row exists
        self.socket = await socket_for(url, self.device, game["id"], made)
        gid: str = game["id"]
        return gid

    async def answer(
        self, http: httpx.AsyncClient, gid: str, qid: str, number: int, choice: str
    ) -> dict[str, Any]:
        """useGameAnswer: REST with the client's own verdict, then the socket submit."""
        rest = await http.post(
            f"/games/{gid}/players/{self.id}/answer",
            json={
                "question_id": qid,
                "question_number": number,
                "answer_id": choice,
                "is_correct": True,  # a claim: ignored
                "time_taken": 0.01,  # a claim: ignored
                "points_earned": 5000,  # a claim: ignored
            },
        )
        assert rest.status_code in (200, 201), rest.text
        assert "score" in rest.json()
        assert rest.json()["answer_report"]["questions"] == []  # no verdict before the reveal
        assert self.socket is not None
        await self.socket.emit(
            "game:answer:submit",
            {"roomId": gid, "playerId": self.id, "questionId": qid, "answer": choice},
        )
        accepted: dict[str, Any] = await self.socket.expect("game:answer:accepted")
        return accepted


async def phase(client: Recorder, name: str) -> dict[str, Any]:
    """The next `game:phase:change` to `name` (earlier ones of other names are skipped)."""
    while True:
        body: dict[str, Any] = await client.expect("game:phase:change")
        if body["phase"] == name:
            return body


async def test_a_whole_game_as_the_tuiz_client_plays_it(
    server: ServerProcess, db_url: str, http: httpx.AsyncClient, sockets: list[Recorder]
) -> None:
    owner, quiz_id = await owner_and_quiz(db_url)
    auth = bearer(owner)

    # -- dashboard: create; host waiting room: socket (room:join sent before ws:connect) ----
    created = await http.post(
        "/games",
        headers=auth,
        json={
            "quiz_set_id": str(quiz_id),
            "game_settings": CLIENT_SETTINGS,
            "device_id": "host-device",
            "player_name": "Host",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    game, code = body["game"], body["game"]["game_code"]
    gid = game["id"]
    assert body["host_player"]["is_host"] is True and game["user_id"] == str(owner)
    assert game["game_settings"]["tuiz_client"] is True
    host = await Recorder(server.url).connect()
    sockets.append(host)
    await host.emit("room:join", {"roomId": gid})  # the hooks join before registering
    await host.register("host-device")
    assert (await host.expect("room:joined"))["roomId"] == gid
    assert not [e for e, _ in host.log if e == "ws:error"]

    # -- players join by PIN; one more is kicked, and both sockets hear it -----------------
    alice, bob, mallory = Player("Alice", "dev-alice"), Player("Bob", "dev-bob"), Player("M", "m")
    for p in (alice, bob, mallory):
        assert await p.join(http, server.url, code, sockets) == gid
    listed = (await http.get(f"/games/{gid}/players")).json()
    assert listed["total"] == 3 and listed["game_id"] == gid
    assert {p["device_id"] for p in listed["players"]} == {"dev-alice", "dev-bob", "m"}
    assert all(p["created_at"].endswith("Z") for p in listed["players"])
    kicked = await http.delete(f"/games/{gid}/players/{mallory.id}", headers=auth)
    assert kicked.status_code == 200
    assert mallory.socket is not None
    assert (await mallory.socket.expect("game:player-kicked"))["player_id"] == mallory.id
    assert (await host.expect("game:player-kicked"))["player_id"] == mallory.id
    # gameApi.updatePlayer (no page calls it) is not served: not even the host renames a seat
    # or makes it host through it.
    for who in (auth, {}):
        patched = await http.patch(
            f"/games/{gid}/players/{alice.id}",
            headers=who,
            json={"player_name": "Renamed", "is_host": True},
        )
        assert patched.status_code == 405
    seat = next(
        p
        for p in (await http.get(f"/games/{gid}/players")).json()["players"]
        if p["id"] == alice.id
    )
    assert seat["player_name"] == "Alice" and seat["is_host"] is False

    # -- waiting room: start, relayed; the game waits in a countdown -----------------------
    assert (await http.post(f"/games/{gid}/start", headers=auth)).status_code == 200
    await host.emit("game:started", {"roomId": gid, "gameId": gid, "roomCode": code})
    await host.emit("game:phase:change", {"roomId": gid, "phase": "countdown"})
    assert alice.socket is not None and bob.socket is not None
    await phase(alice.socket, "countdown")
    state = (await http.get(f"/games/{gid}/state")).json()
    assert state["game"]["status"] == "active" and state["gameFlow"]["is_paused"] is False
    first_qid = state["gameFlow"]["current_question_id"]
    assert first_qid and state["gameFlow"]["current_question_start_time"] is None
    assert (await http.get(f"/games/{gid}/questions/current")).status_code == 404

    elapsed: dict[tuple[str, str], int] = {}
    qid = first_qid
    for index in range(2):
        # -- host: countdown over -> questions/start, relayed twice over -------------------
        started = await http.post(
            f"/games/{gid}/questions/start",
            headers=auth,
            json={"questionId": qid, "questionIndex": index},
        )
        assert started.status_code == 200, started.text
        flow = started.json()
        assert flow["current_question_id"] == qid and flow["current_question_index"] == index
        window = flow["ends_at"] - flow["starts_at"]
        assert window == (SHOW + ANSWER) * 1000 == flow["duration_ms"]
        again = await http.post(
            f"/games/{gid}/questions/start",
            headers=auth,
            json={"questionId": qid, "questionIndex": index},
        )
        assert again.json()["current_question_start_time"] == flow["current_question_start_time"]
        await host.emit(
            "game:question:started",
            {"roomId": gid, "question": {"id": qid, "index": index}},
        )
        await host.emit("game:phase:change", {"roomId": gid, "phase": "question"})
        shown = await alice.socket.expect("game:question:started")
        assert shown["question"]["id"] == qid
        # One navigation per question on the player page: a second event to a different URL
        # races it, and Next.js falls back to a full page load that leaves the page deaf.
        assert not [
            b for e, b in alice.socket.log if e == "game:phase:change" and b["phase"] == "question"
        ]
        assert (await phase(host, "question"))["questionIndex"] == index

        current = (await http.get(f"/games/{gid}/questions/current")).json()
        assert current["is_active"] is True and 0 < current["remaining_ms"] <= window
        assert [a["order_index"] for a in current["answers"]] == [0, 1, 2]
        assert leaks(current, set()) == []  # no correctness before the reveal
        right = next(a["id"] for a in current["answers"] if a["text"] == "Right")
        wrong = next(a["id"] for a in current["answers"] if a["text"] == "Wrong")

        await asyncio.sleep(SHOW + 0.3)  # the client's viewing time
        if index == 1:  # Alice reloads mid-question: new socket, seat found by device id
            await alice.socket.close()
            seats = (await http.get(f"/games/{gid}/players")).json()["players"]
            mine = next(p for p in seats if p.get("device_id") == alice.device)
            assert mine["id"] == alice.id
            alice.socket = await socket_for(server.url, alice.device, gid, sockets)

        # Bob, knowing Alice's id from /players, answers for her by REST: nothing counts.
        forged = await http.post(
            f"/games/{gid}/players/{alice.id}/answer",
            json={"question_id": qid, "question_number": index + 1, "answer_id": wrong},
        )
        assert forged.status_code in (200, 201)
        await bob.socket.emit(
            "game:answer:submit",
            {"roomId": gid, "playerId": alice.id, "questionId": qid, "answer": wrong},
        )
        assert (await bob.socket.expect("game:error"))["error"] == "FORBIDDEN"

        views = ("leaderboard", f"players/{alice.id}/data", f"players/{alice.id}/stats")
        before = [(await http.get(f"/games/{gid}/{where}")).json() for where in views]
        ack = await alice.answer(http, gid, qid, index + 1, right)
        elapsed[(alice.id, qid)] = ack["elapsedMs"]
        # Before the reveal, nothing anyone can read changed with her (right) answer.
        assert [(await http.get(f"/games/{gid}/{where}")).json() for where in views] == before
        mine = (await http.get(f"/games/{gid}/players/{alice.id}/answers")).json()
        assert mine[-1]["question_id"] == qid and leaks(mine[-1], set()) == []
        if index == 0:  # Bob answers wrong; in question 2 he never answers
            ack = await bob.answer(http, gid, qid, index + 1, wrong)
            elapsed[(bob.id, qid)] = ack["elapsedMs"]
            await alice.socket.expect("game:question:ended")  # everyone answered: closed
        else:
            await alice.socket.expect("game:question:ended", timeout=ANSWER + 5)  # deadline
            late = await http.post(
                f"/games/{gid}/players/{bob.id}/answer",
                json={"question_id": qid, "question_number": 2, "answer_id": right},
            )
            assert late.status_code in (200, 201)
            await bob.socket.emit(
                "game:answer:submit",
                {"roomId": gid, "playerId": bob.id, "questionId": qid, "answer": right},
            )
            assert (await bob.socket.expect("game:error"))["error"] == "TOO_LATE"

        # -- host: reveal (after the server closed answering: a no-op with the stats) -------
        for _ in range(2):
            revealed = (await http.post(f"/games/{gid}/questions/reveal", headers=auth)).json()
            assert revealed["gameFlow"]["current_question_id"] == qid
            assert revealed["answerStats"][right] == 1
        await host.emit("game:phase:change", {"roomId": gid, "phase": "answer_reveal"})
        current = (await http.get(f"/games/{gid}/questions/current")).json()
        assert {a["text"]: a["is_correct"] for a in current["answers"]}["Right"] is True
        answers = (await http.get(f"/games/{gid}/players/{alice.id}/answers")).json()
        assert isinstance(answers, list) and answers[-1]["is_correct"] is True

        # -- leaderboard (socket only), explanation, next ---------------------------------
        # A player's socket cannot take a host step.
        await bob.socket.emit("game:phase:change", {"roomId": gid, "phase": "leaderboard"})
        assert (await bob.socket.expect("game:error"))["error"] == "FORBIDDEN"
        if index == 1:  # the host page loads anew: its socket registers, never sends room:join
            await host.close()
            host = await Recorder(server.url).connect()
            sockets.append(host)
            await host.register("host-device")
        await host.emit("game:phase:change", {"roomId": gid, "phase": "leaderboard"})
        await phase(bob.socket, "leaderboard")
        board = (await http.get(f"/games/{gid}/leaderboard")).json()
        assert [e["player_name"] for e in board["entries"]] == ["Alice", "Bob"]
        await host.emit("game:phase:change", {"roomId": gid, "phase": "explanation"})
        shown_expl = await http.post(f"/games/{gid}/questions/explanation/show", headers=auth)
        assert shown_expl.json()["explanation"]["title"] == "Why"
        await phase(bob.socket, "explanation")
        hidden = await http.post(f"/games/{gid}/questions/explanation/hide", headers=auth)
        assert hidden.status_code == 200 and hidden.json()["message"]
        if index == 0:
            nxt = (await http.post(f"/games/{gid}/questions/next", headers=auth)).json()
            assert nxt["isComplete"] is False and nxt["nextQuestion"]["index"] == 1
            twice = (await http.post(f"/games/{gid}/questions/next", headers=auth)).json()
            assert twice["nextQuestion"] == nxt["nextQuestion"]  # a repeat changes nothing
            await host.emit("game:phase:change", {"roomId": gid, "phase": "countdown"})
            await phase(alice.socket, "countdown")
            qid = nxt["nextQuestion"]["id"]

    # -- last question: explanation -> podium (socket only), then "ended" ------------------
    await host.emit("game:phase:change", {"roomId": gid, "phase": "podium"})
    end = await bob.socket.expect("game:end")
    assert end["completed"] is True
    await host.emit("game:phase:change", {"roomId": gid, "phase": "ended"})
    late_start = await http.post(
        f"/games/{gid}/questions/start", headers=auth, json={"questionId": qid, "questionIndex": 1}
    )
    assert late_start.status_code == 200 and late_start.json()["game"]["status"] == "finished"

    # -- scores: the server's rule, in the REST views and in game_player_data --------------
    report = (await http.get(f"/games/{gid}/report", headers=auth)).json()
    settings = GameSettings(streak_bonus=False)
    expected: dict[str, int] = {alice.id: 0, bob.id: 0}
    for q in report["questions"]:
        for row in report["players"]:
            a = row["answers"].get(q["question_id"])
            if a is None:
                continue
            assert a["elapsed_ms"] == elapsed[(row["player_id"], q["question_id"])]
            # The question as the engine scores it: the picked choice right or wrong.
            question = Question(
                q["question_id"],
                QuestionType.MULTIPLE_CHOICE,
                q["text"],
                points=1000,
                answering_time=ANSWER,
                choices=(Choice("right", "Right", True), Choice("wrong", "Wrong", False)),
            )
            picked = ("right",) if a["correct"] else ("wrong",)
            points = score_answer(
                question,
                picked,
                None,
                elapsed_ms=a["elapsed_ms"],
                streak_before=0,
                settings=settings,
            ).points
            assert a["points"] == points
            expected[row["player_id"]] += points
    assert expected[alice.id] > 1000 and expected[bob.id] == 0
    board = (await http.get(f"/games/{gid}/leaderboard")).json()
    assert {e["player_id"]: e["score"] for e in board["entries"]} == expected
    data = (await http.get(f"/games/{gid}/players/{alice.id}/data")).json()
    assert data["score"] == expected[alice.id]
    assert [q["is_correct"] for q in data["answer_report"]["questions"]] == [True, True]
    stats = (await http.get(f"/games/{gid}/players/{alice.id}/stats")).json()
    assert stats["correct_answers"] == 2 and stats["total_answers"] == 2

    async def stored() -> dict[str, int] | None:
        conn = await asyncpg.connect(db_url)
        try:
            rows = await conn.fetch(
                "SELECT player_id::text AS pid, score FROM public.game_player_data"
                " WHERE game_id = $1",
                uuid.UUID(gid),
            )
        finally:
            await conn.close()
        scores = {r["pid"]: r["score"] for r in rows if r["pid"] in expected}
        return scores if scores == expected else None

    assert await eventually(stored)
