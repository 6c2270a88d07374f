"""Shared set-up for live-game tests: a short quiz, a host and players over real sockets."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import asyncpg
import httpx

from tests.factories import make_user
from tests.sioclient import Recorder
from tuiz.store.quizzes import import_quiz

QUIZ: dict[str, Any] = {
    "version": 1,
    "title": "Test quiz",
    "status": "published",
    "is_public": True,
    "questions": [
        {
            "question_text": "Capital of Japan?",
            "question_type": "multiple_choice",
            "show_question_time": 0,
            "answering_time": 10,
            "show_explanation_time": 5,
            "points": 1000,
            "explanation_title": "Tokyo",
            "explanation_text": "Since 1869.",
            "answers": [
                {"answer_text": "Osaka", "is_correct": False},
                {"answer_text": "Tokyo", "is_correct": True},
                {"answer_text": "Kyoto", "is_correct": False},
            ],
        },
        {
            "question_text": "The sun is a star.",
            "question_type": "true_false",
            "show_question_time": 0,
            "answering_time": 10,
            "points": 500,
            "answers": [
                {"answer_text": "True", "is_correct": True},
                {"answer_text": "False", "is_correct": False},
            ],
        },
        {
            "question_text": "Type 'tuiz'",
            "question_type": "type_answer",
            "show_question_time": 0,
            "answering_time": 10,
            "points": 1000,
            "accepted_answers": ["tuiz"],
            "answers": [],
        },
    ],
}


async def make_test_quiz(db_url: str, **question_overrides: Any) -> uuid.UUID:
    doc = copy.deepcopy(QUIZ)
    for q in doc["questions"]:
        q.update(question_overrides)
    conn = await asyncpg.connect(db_url)
    try:
        owner = await make_user(conn)
        return await import_quiz(conn, owner, doc)
    finally:
        await conn.close()


async def create_game(
    url: str, quiz_id: uuid.UUID, device_id: str = "host-device", **settings: Any
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.post(
            "/games",
            json={"quiz_set_id": str(quiz_id), "device_id": device_id, "game_settings": settings},
        )
    assert response.status_code == 201, response.text
    game: dict[str, Any] = response.json()
    return game


class Host:
    def __init__(self, client: Recorder, game: dict[str, Any]) -> None:
        self.client = client
        self.game = game
        self.game_id = game["id"]

    async def command(self, event: str, **extra: Any) -> dict[str, Any]:
        ack: dict[str, Any] = await self.client.sio.call(
            event, {"gameId": self.game_id, **extra}, timeout=10
        )
        return ack


async def connect_host(url: str, game: dict[str, Any]) -> Host:
    client = await Recorder(url).connect()
    await client.register(game.get("_device", "host-device"))
    ack = await client.sio.call(
        "game:host:join", {"gameId": game["id"], "hostToken": game["host_token"]}, timeout=10
    )
    assert ack["ok"], ack
    return Host(client, game)


class Player:
    def __init__(self, client: Recorder, ack: dict[str, Any], device_id: str) -> None:
        self.client = client
        self.ack = ack
        self.device_id = device_id
        self.player_id: str = ack["playerId"]
        self.game_id: str = ack["gameId"]

    async def answer(self, question_id: str, **fields: Any) -> dict[str, Any]:
        ack: dict[str, Any] = await self.client.sio.call(
            "game:answer:submit",
            {"gameId": self.game_id, "questionId": question_id, **fields},
            timeout=10,
        )
        return ack


async def join_player(
    url: str, pin: str, nickname: str, device_id: str | None = None, join_key: str | None = None
) -> Player:
    device_id = device_id or f"dev-{uuid.uuid4().hex[:12]}"
    client = await Recorder(url).connect()
    await client.register(device_id)
    payload = {"pin": pin, "nickname": nickname}
    if join_key is not None:
        payload["joinKey"] = join_key
    ack = await client.sio.call("game:join", payload, timeout=10)
    assert ack["ok"], ack
    return Player(client, ack, device_id)


async def next_phase(client: Recorder, phase: str, timeout: float = 15) -> dict[str, Any]:
    """The next game:phase:change to `phase` (earlier phases are skipped over)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        change: dict[str, Any] = await client.expect("game:phase:change", timeout=max(left, 0.01))
        if change["phase"] == phase:
            return change
