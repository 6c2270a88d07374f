"""Game REST in the TUIZ backend's paths, reports, statistics, and the host grace period."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gamehelpers import connect_host, create_game, join_player, make_test_quiz, next_phase
from tests.servers import ServerProcess, run_server
from tuiz.live.hub import hash_join_key

SERVICE_KEY = "games-service-key"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(
        db_url,
        tmp_path,
        TUIZ_LOAD_SAMPLE="false",
        TUIZ_SERVICE_KEY=SERVICE_KEY,
        TUIZ_HOST_GRACE_MS="300",
    ) as s:
        yield s


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def test_rest_game_flow(server: ServerProcess, db_url: str, http: httpx.AsyncClient) -> None:
    quiz = await make_test_quiz(db_url)
    game = await create_game(server.url, quiz, auto_advance=False)
    gid, host = game["id"], {"x-host-token": game["host_token"]}
    assert (await http.get(f"/games/by-code/{game['game_code']}")).json()["id"] == gid
    assert (await http.get("/games/by-code/999999")).status_code == 404

    key = "rei-join-key-0123456789"
    rei_join = {"player_name": "Rei", "device_id": "d-rei", "join_key": key}
    joined = await http.post(f"/games/{gid}/join", json=rei_join)
    assert joined.status_code == 201, joined.text
    rei = joined.json()
    # Its reply lost, the same join again: the same seat and token, in the same shape.
    again = await http.post(f"/games/{gid}/join", json=rei_join)
    assert again.status_code == 201 and again.json() == rei
    assert key not in again.text and hash_join_key(key) not in again.text
    for other in ("not-the-key-0123456789", None):
        retaken = await http.post(f"/games/{gid}/join", json={**rei_join, "join_key": other})
        assert retaken.status_code == 409 and "resume_token" not in retaken.json()
    for bad_key in ("short", "x" * 129, "has spaces in it 0123456789"):
        refused = await http.post(f"/games/{gid}/join", json={**rei_join, "join_key": bad_key})
        assert refused.status_code == 422 and refused.json()["error"] == "VALIDATION_ERROR"
    taken = await http.post(f"/games/{gid}/join", json={"player_name": "REI", "device_id": "d-2"})
    assert taken.status_code == 409 and taken.json()["error"] == "CONFLICT"
    bad = await http.post(f"/games/{gid}/join", json={"player_name": "x", "device_id": "a b"})
    assert bad.status_code == 422

    assert (await http.post(f"/games/{gid}/start")).status_code == 403  # no host token
    assert (
        await http.post(f"/games/{gid}/start", headers={"x-host-token": "nope"})
    ).status_code == 403
    assert (await http.post(f"/games/{gid}/start", headers=host)).status_code == 200
    current = (await http.get(f"/games/{gid}/questions/current")).json()
    assert current["phase"] == "answering" and current["show_question_time"] == 0
    assert all("is_correct" not in c for c in current["question"]["choices"])
    tokyo = next(c["id"] for c in current["question"]["choices"] if c["text"] == "Tokyo")
    qid = current["question"]["id"]
    early = await http.get(f"/games/{gid}/questions/{qid}/explanation")
    assert early.status_code == 409 and early.json()["error"] == "WRONG_PHASE"

    path = f"/games/{gid}/players/{rei['id']}/answer"
    body = {"question_id": qid, "answer_id": tokyo, "is_correct": False, "points_earned": 99999}
    assert (await http.post(path, json=body)).status_code == 403  # no token
    claimed = await http.post(path, json=body, headers={"x-device-id": "d-rei"})
    assert claimed.status_code == 403  # a device id is a claim, not a credential
    seat = {"x-resume-token": rei["resume_token"]}
    ok = await http.post(path, json=body, headers=seat)
    assert ok.status_code == 201, ok.text
    again = await http.post(path, json=body, headers=seat)
    assert again.json() == ok.json()  # the same answer: same acknowledgement
    other = {**body, "client_answer_id": "second"}
    conflict = await http.post(path, json=other, headers={"x-resume-token": rei["resume_token"]})
    assert conflict.status_code == 409

    board = (await http.get(f"/games/{gid}/leaderboard")).json()["leaderboard"]
    assert board[0]["name"] == "Rei" and 500 <= board[0]["score"] <= 1000  # not 99999
    explanation = (await http.get(f"/games/{gid}/questions/{qid}/explanation")).json()
    assert explanation["explanation_title"] == "Tokyo"

    assert (await http.patch(f"/games/{gid}/lock", json={"locked": True}, headers=host)).json()[
        "locked"
    ]
    locked = await http.post(f"/games/{gid}/join", json={"player_name": "Late", "device_id": "d-l"})
    assert locked.status_code == 423 and locked.json()["error"] == "GAME_LOCKED"
    ended = await http.patch(f"/games/{gid}/status", json={"action": "end"}, headers=host)
    assert ended.json()["status"] == "finished"

    assert (await http.get(f"/games/{gid}/report")).status_code == 403  # the host's
    report = (await http.get(f"/games/{gid}/report", headers=host)).json()
    first = report["questions"][0]
    assert first["answered"] == 1 and first["correct_rate"] == 1.0
    assert report["players"][0]["answers"][qid]["correct"] is True
    csv_text = (await http.get(f"/games/{gid}/report?format=csv", headers=host)).text
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0][:3] == ["rank", "player", "score"] and rows[1][1] == "Rei"


async def test_statistics_need_the_service_key(
    server: ServerProcess, db_url: str, http: httpx.AsyncClient
) -> None:
    quiz = await make_test_quiz(db_url)
    await create_game(server.url, quiz)
    assert (await http.get("/stats/completion")).status_code == 403
    service = {"authorization": f"Bearer {SERVICE_KEY}"}
    completion = (await http.get("/stats/completion", headers=service)).json()["completion"]
    assert completion[0]["total_games"] >= 1
    daily = await http.get("/stats/daily", headers=service)
    assert daily.status_code == 200 and "days" in daily.json()
    games = (await http.get("/games", headers=service)).json()["games"]
    assert games and games[0]["quiz_title"] == "Test quiz"


async def test_host_away_past_the_grace_period_pauses(server: ServerProcess, db_url: str) -> None:
    quiz = await make_test_quiz(db_url)
    game = await create_game(server.url, quiz, auto_advance=False)
    host = await connect_host(server.url, game)
    player = await join_player(server.url, game["game_code"], "Solo")
    try:
        await host.command("game:flow:start")
        await next_phase(player.client, "answering")
        await host.client.close()
        paused: dict[str, Any] = await player.client.expect("game:pause")
        assert paused["remainingMs"] > 0
        back = await connect_host(server.url, game)
        try:
            assert back.game_id == game["id"]
            assert (await back.command("game:flow:resume"))["ok"]
            await player.client.expect("game:resume")
        finally:
            await back.client.close()
    finally:
        await asyncio.gather(host.client.close(), player.client.close())


async def test_guest_host_creates_a_game_from_an_inline_quiz(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    from tests.gamehelpers import QUIZ

    made = await http.post("/games", json={"quiz": QUIZ, "device_id": "guest-host"})
    assert made.status_code == 201, made.text
    game = made.json()
    assert game["quiz_set_id"] is None and game["total_questions"] == 3
    both = await http.post(
        "/games", json={"quiz": QUIZ, "quiz_set_id": game["id"], "device_id": "guest-host"}
    )
    assert both.status_code == 422
    broken = {**QUIZ, "questions": [{**QUIZ["questions"][0], "answers": []}]}
    bad = await http.post("/games", json={"quiz": broken, "device_id": "guest-host"})
    assert bad.status_code == 422 and bad.json()["error"] == "VALIDATION_ERROR"
    host = {"x-host-token": game["host_token"]}
    await http.post(f"/games/{game['id']}/join", json={"player_name": "A", "device_id": "d-a"})
    assert (await http.post(f"/games/{game['id']}/start", headers=host)).status_code == 200
    current = (await http.get(f"/games/{game['id']}/questions/current")).json()
    assert current["question"]["text"] == "Capital of Japan?"


async def test_finished_games_leave_memory_and_load_again(db_url: str, tmp_path: Path) -> None:
    quiz = await make_test_quiz(db_url)
    with run_server(
        db_url, tmp_path, TUIZ_LOAD_SAMPLE="false", TUIZ_FINISHED_GAME_TTL_MS="200"
    ) as server:
        game = await create_game(server.url, quiz)
        host = {"x-host-token": game["host_token"]}
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            await http.post(
                f"/games/{game['id']}/join", json={"player_name": "A", "device_id": "d"}
            )
            await http.post(f"/games/{game['id']}/start", headers=host)
            await http.patch(f"/games/{game['id']}/status", json={"action": "end"}, headers=host)

            async def live_games() -> float:
                text = (await http.get("/metrics")).text
                line = next(x for x in text.splitlines() if x.startswith("tuiz_live_games "))
                return float(line.split()[1])

            from tests.sioclient import eventually

            assert await eventually(lambda: _is_zero(live_games))
            again = await http.get(f"/games/{game['id']}")  # loaded again from its log
            assert again.status_code == 200 and again.json()["status"] == "finished"
            assert len((await http.get(f"/games/{game['id']}/players")).json()["players"]) == 1


async def _is_zero(read: Any) -> bool:
    return bool(await read() == 0)
