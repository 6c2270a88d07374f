"""Hostile clients against the database and the REST reads that run under their role.

Each principal is simulated the way PostgREST runs a Supabase request (`SET LOCAL ROLE`,
`request.jwt.claims`, `request.headers` with an `x-device-id`). The attacker knows everything
an attacker can learn: the quiz id, the game id, and the victim's device id, which it puts in
its own header. What it must not get: answer keys, the raw event log, anyone's device id,
connection rows (IP address, user agent), scores while the game runs. The owner still reads
its own answer key.

World: owner O has a published public quiz Q (multiple choice, true/false, type answer) and
runs game G of it (active). Seats in G: the host (dev-host), the victim (dev-victim, a guest)
and the attacker (dev-attacker, also seated). Stranger S is another signed-in user with a
connection of their own. The victim has a connection row with an IP address and user agent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import jwt
import pytest

from tests.factories import acting_as, make_game, make_player, make_quiz, make_user
from tests.servers import ServerProcess, run_server

VICTIM_IP = "203.0.113.77"
VICTIM_AGENT = "VictimBrowser/1.0 (secret-agent-string)"
ACCEPTED = ["Fuji", "Fujisan"]


@dataclass
class World:
    owner: UUID
    stranger: UUID
    quiz: UUID
    draft: UUID
    game: UUID
    victim: UUID  # player id

    def principals(self) -> dict[str, dict[str, Any]]:
        """Every hostile principal: no identity, a seated attacker, a claimed victim device,
        a signed-in stranger (with the victim's device claimed too)."""
        return {
            "anon": {"role": "anon"},
            "seated attacker": {"role": "anon", "device": "dev-attacker"},
            "claims victim device": {"role": "anon", "device": "dev-victim"},
            "stranger": {"role": "authenticated", "user": self.stranger},
            "stranger claiming victim": {
                "role": "authenticated",
                "user": self.stranger,
                "device": "dev-victim",
            },
        }


async def build_world(conn: asyncpg.Connection) -> World:
    owner, stranger = await make_user(conn), await make_user(conn)
    quiz = await make_quiz(conn, owner)
    draft = await make_quiz(conn, owner, published=False)
    for quiz_id in (quiz, draft):
        await conn.execute(
            """
            INSERT INTO questions (question_set_id, question_text, question_type, order_index,
                                   accepted_answers)
            VALUES ($1, 'Highest mountain of Japan?', 'type_answer', 2, $2)
            """,
            quiz_id,
            ACCEPTED,
        )
    game = await make_game(conn, owner, quiz, status="active")
    await make_player(conn, game, "dev-host", "Host", is_host=True)
    victim = await make_player(conn, game, "dev-victim", "Victim")
    attacker = await make_player(conn, game, "dev-attacker", "Attacker")
    seats = ((victim, "dev-victim", 900, "sock-v"), (attacker, "dev-attacker", 0, "sock-a"))
    for player, device, score, socket_id in seats:
        await conn.execute(
            "INSERT INTO game_player_data (player_id, player_device_id, game_id, score)"
            " VALUES ($1, $2, $3, $4)",
            player,
            device,
            game,
            score,
        )
        await conn.execute(
            "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
            " VALUES ($1, $2, $3, $4)",
            game,
            socket_id,
            device,
            player,
        )
    # The log's first event holds the quiz as played, answer key included.
    await conn.execute(
        "SELECT log_game_event(p_game_id => $1, p_event_type => 'game:created',"
        " p_device_id => 'dev-host', p_payload => $2::text::jsonb)",
        game,
        json.dumps({"quiz": {"choices": [{"text": "Tokyo", "is_correct": True}]}}),
    )
    await conn.execute(
        "INSERT INTO websocket_connections (socket_id, device_id, user_id, ip_address,"
        " user_agent) VALUES ('sock-v', 'dev-victim', NULL, $1, $2),"
        " ('sock-stranger', 'dev-stranger', $3, '198.51.100.1', 'StrangerBrowser')",
        VICTIM_IP,
        VICTIM_AGENT,
        stranger,
    )
    return World(owner, stranger, quiz, draft, game, victim)


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    return await build_world(conn)


async def refused(conn: asyncpg.Connection, sql: str, *args: Any) -> bool:
    """True when the statement fails for lack of privilege (never an empty success)."""
    try:
        await conn.fetch(sql, *args)
    except asyncpg.InsufficientPrivilegeError:
        return True
    return False


# -- answer keys ------------------------------------------------------------------------------

ANSWER_KEY_READS = [
    "SELECT is_correct FROM answers",
    "SELECT * FROM answers",
    "SELECT to_jsonb(a) FROM answers a",
    "SELECT id FROM answers WHERE is_correct",
    "SELECT id FROM answers ORDER BY is_correct DESC LIMIT 1",
    "SELECT accepted_answers FROM questions",
    "SELECT * FROM questions",
    "SELECT id FROM questions WHERE 'Fuji' = ANY (accepted_answers)",
]


@pytest.mark.parametrize("sql", ANSWER_KEY_READS)
async def test_answer_key_refused_to_everyone_but_the_owner(
    conn: asyncpg.Connection, world: World, sql: str
) -> None:
    """Reading, filtering or sorting on is_correct / accepted_answers is refused, also for a
    published quiz that everyone may read (and for its owner: the owner uses the function)."""
    for name, principal in world.principals().items():
        async with acting_as(conn, **principal):
            assert await refused(conn, sql), name
    async with acting_as(conn, "authenticated", user=world.owner):
        assert await refused(conn, sql)


async def test_published_quiz_still_readable_without_its_key(
    conn: asyncpg.Connection, world: World
) -> None:
    for name, principal in world.principals().items():
        async with acting_as(conn, **principal):
            texts = await conn.fetch(
                "SELECT a.answer_text FROM answers a JOIN questions q ON q.id = a.question_id"
                " WHERE q.question_set_id = $1",
                world.quiz,
            )
            assert {r[0] for r in texts} == {"Tokyo", "Osaka", "True", "False"}, name
            count = await conn.fetchval(
                "SELECT count(*) FROM questions WHERE question_set_id = $1", world.quiz
            )
            assert count == 3, name


async def test_answer_key_function_answers_the_owner_only(
    conn: asyncpg.Connection, world: World
) -> None:
    key_sql = (
        "SELECT q.question_text, a.answer_text, k.is_correct, k.accepted_answers"
        " FROM get_quiz_answer_key(p_quiz_set_id => $1) k"
        " JOIN questions q ON q.id = k.question_id"
        " LEFT JOIN answers a ON a.id = k.answer_id"
    )
    async with acting_as(conn, "authenticated", user=world.owner):
        rows = await conn.fetch(key_sql, world.quiz)
        correct = {r["answer_text"] for r in rows if r["is_correct"]}
        assert correct == {"Tokyo", "True"}
        assert [r["accepted_answers"] for r in rows if r["answer_text"] is None] == [ACCEPTED]
        assert len(await conn.fetch(key_sql, world.draft)) == 5  # drafts too: 4 answers + 1
    for name, principal in world.principals().items():
        async with acting_as(conn, **principal):
            if principal["role"] == "anon":
                assert await refused(conn, key_sql, world.quiz), name
            else:
                assert await conn.fetch(key_sql, world.quiz) == [], name
                assert await conn.fetch(key_sql, world.draft) == [], name


async def test_owner_still_edits_its_answer_key(conn: asyncpg.Connection, world: World) -> None:
    """PostgREST's PATCH (UPDATE ... SET is_correct = value WHERE id = ...) needs no read."""
    osaka = await conn.fetchval("SELECT id FROM answers WHERE answer_text = 'Osaka' LIMIT 1")
    async with acting_as(conn, "authenticated", user=world.stranger):
        assert await conn.execute("UPDATE answers SET is_correct = true WHERE id = $1", osaka) == (
            "UPDATE 0"
        )
    async with acting_as(conn, "authenticated", user=world.owner):
        status = await conn.execute("UPDATE answers SET is_correct = true WHERE id = $1", osaka)
        assert status == "UPDATE 1"


# -- games ------------------------------------------------------------------------------------

GAME_SECRETS = [
    "SELECT payload FROM game_events",
    "SELECT count(*) FROM game_events",
    "SELECT * FROM get_game_event_sequence(p_game_id => $1)",
    "SELECT device_id FROM players",
    "SELECT * FROM players",
    "SELECT device_id FROM room_participants",
    "SELECT metadata FROM room_participants",
    "SELECT player_device_id FROM game_player_data",
]


@pytest.mark.parametrize("sql", GAME_SECRETS)
async def test_log_and_device_ids_refused_to_clients(
    conn: asyncpg.Connection, world: World, sql: str
) -> None:
    """The raw log and every device id: refused to every client, the game's owner included."""
    args = [world.game] if "$1" in sql else []
    for name, principal in world.principals().items():
        async with acting_as(conn, **principal):
            assert await refused(conn, sql, *args), name
    async with acting_as(conn, "authenticated", user=world.owner):
        assert await refused(conn, sql, *args)
    async with acting_as(conn, "service_role"):
        assert not await refused(conn, sql, *args)


async def test_members_still_see_who_plays(conn: asyncpg.Connection, world: World) -> None:
    """What the lobby shows (names, host flag, participations) stays readable to members."""
    async with acting_as(conn, "anon", device="dev-attacker"):
        names = await conn.fetch("SELECT player_name, is_host FROM players ORDER BY player_name")
        assert [tuple(r) for r in names] == [
            ("Attacker", False),
            ("Host", True),
            ("Victim", False),
        ]
        seats = await conn.fetchval("SELECT count(player_id) FROM room_participants")
        assert seats == 2


async def test_scores_hidden_until_the_game_is_finished(
    conn: asyncpg.Connection, world: World
) -> None:
    """While a question may be open no client reads scores (nor through the leaderboard)."""
    readers = {**world.principals(), "owner": {"role": "authenticated", "user": world.owner}}
    for name, principal in readers.items():
        async with acting_as(conn, **principal):
            assert await conn.fetch("SELECT score FROM game_player_data") == [], name
            board = await conn.fetch(
                "SELECT * FROM get_game_leaderboard(game_uuid => $1)", world.game
            )
            assert board == [], name
    await conn.execute("UPDATE games SET status = 'finished' WHERE id = $1", world.game)
    async with acting_as(conn, "anon", device="dev-attacker"):
        board = await conn.fetch(
            "SELECT player_name, score FROM get_game_leaderboard(game_uuid => $1)", world.game
        )
        assert [tuple(r) for r in board] == [("Victim", 900), ("Attacker", 0)]
    async with acting_as(conn, "authenticated", user=world.stranger):
        assert await conn.fetch("SELECT score FROM game_player_data") == []


# -- connection rows --------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["websocket_connections", "device_sessions"])
async def test_claimed_device_reads_no_connection_rows(
    conn: asyncpg.Connection, world: World, table: str
) -> None:
    """The victim's device id in the header reads nothing; a user reads their own rows only."""
    columns = "ip_address, user_agent" if table == "websocket_connections" else "metadata"
    for name, principal in world.principals().items():
        async with acting_as(conn, **principal):
            if principal["role"] == "anon":
                assert await refused(conn, f"SELECT {columns} FROM {table}"), name
            else:
                rows = await conn.fetch(f"SELECT device_id FROM {table}")
                assert {r[0] for r in rows} == {"dev-stranger"}, name
    async with acting_as(conn, "service_role"):
        rows = await conn.fetch(f"SELECT device_id FROM {table}")
        assert {r[0] for r in rows} == {"dev-victim", "dev-stranger"}


async def test_no_client_reads_a_device_id_column(conn: asyncpg.Connection) -> None:
    """From the catalogue: anon reads no device-id column at all; authenticated only those of
    its own connection rows and sessions (the policies hold them to user_id = auth.uid())."""
    rows = await conn.fetch(
        """
        SELECT c.table_name, c.column_name,
               has_column_privilege('anon', format('public.%I', c.table_name),
                                    c.column_name, 'SELECT') AS anon,
               has_column_privilege('authenticated', format('public.%I', c.table_name),
                                    c.column_name, 'SELECT') AS authenticated
          FROM information_schema.columns c
         WHERE c.table_schema = 'public' AND c.column_name LIKE '%device_id'
        """
    )
    assert [(r[0], r[1]) for r in rows if r["anon"]] == []
    assert {(r[0], r[1]) for r in rows if r["authenticated"]} == {
        ("websocket_connections", "device_id"),
        ("device_sessions", "device_id"),
    }


# -- REST, against a real server ----------------------------------------------------------------

SECRET = "security-test-jwt-secret-0123456789abcdef"
SERVICE_KEY = "security-test-service-key-0123456789"


def token(user: UUID) -> str:
    claims = {"sub": str(user), "role": "authenticated", "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def rest_world(module_db_url: str) -> World:
    async def build() -> World:
        conn = await asyncpg.connect(module_db_url)
        try:
            return await build_world(conn)
        finally:
            await conn.close()

    return asyncio.run(build())


@pytest.fixture(scope="module")
def server(
    module_db_url: str, rest_world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("dbsec")
    with run_server(
        module_db_url,
        tmp,
        TUIZ_JWT_SECRET=SECRET,
        TUIZ_SERVICE_KEY=SERVICE_KEY,
        TUIZ_LOAD_SAMPLE="false",
    ) as s:
        yield s


def get(server: ServerProcess, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=10)


def _keys(value: Any) -> set[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_rest_quiz_without_key_for_anon_and_strangers(
    server: ServerProcess, rest_world: World
) -> None:
    path = f"/quiz-sets/{rest_world.quiz}"
    for headers in (
        {},
        {"x-device-id": "dev-victim"},
        {"authorization": f"Bearer {token(rest_world.stranger)}"},
    ):
        response = get(server, path, **headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["questions"]) == 3
        assert not _keys(body) & {"is_correct", "accepted_answers"}, headers
        assert "Fujisan" not in response.text
        export = get(server, f"{path}/export", **headers)
        assert export.status_code in (401, 403), headers


@pytest.mark.parametrize("who", ["owner", "service"])
def test_rest_quiz_with_key_for_owner_and_service(
    server: ServerProcess, rest_world: World, who: str
) -> None:
    credential = token(rest_world.owner) if who == "owner" else SERVICE_KEY
    body = get(server, f"/quiz-sets/{rest_world.quiz}", authorization=f"Bearer {credential}")
    assert body.status_code == 200, body.text
    questions = body.json()["questions"]
    correct = {a["answer_text"] for q in questions for a in q["answers"] if a["is_correct"]}
    assert correct == {"Tokyo", "True"}
    assert [q["accepted_answers"] for q in questions][2] == ACCEPTED
    export = get(
        server, f"/quiz-sets/{rest_world.quiz}/export", authorization=f"Bearer {credential}"
    )
    assert export.status_code == 200
    assert export.json()["questions"][2]["accepted_answers"] == ACCEPTED


def test_rest_connection_rows_need_more_than_a_device_id(
    server: ServerProcess, rest_world: World
) -> None:
    victim = {"x-device-id": "dev-victim"}
    stranger = {"authorization": f"Bearer {token(rest_world.stranger)}", **victim}
    for path in (
        "/websocket-connections?device_id=dev-victim",
        "/websocket-connections/active",
        "/device-sessions/dev-victim",
    ):
        response = get(server, path, **victim)
        assert response.status_code == 401, (path, response.text)
        assert VICTIM_IP not in response.text and VICTIM_AGENT not in response.text
        response = get(server, path, **stranger)
        assert response.status_code in (200, 404), (path, response.text)
        assert VICTIM_IP not in response.text and VICTIM_AGENT not in response.text
    own = get(server, "/websocket-connections", **stranger).json()["items"]
    assert [c["device_id"] for c in own] == ["dev-stranger"]
    service = get(
        server,
        "/websocket-connections?device_id=dev-victim",
        authorization=f"Bearer {SERVICE_KEY}",
    )
    assert [c["ip_address"] for c in service.json()["items"]] == [VICTIM_IP]


def test_rest_raw_log_and_participants(server: ServerProcess, rest_world: World) -> None:
    game = rest_world.game
    for headers in (
        {"x-device-id": "dev-victim"},
        {"x-device-id": "dev-attacker"},
        {"authorization": f"Bearer {token(rest_world.owner)}"},
    ):
        events = get(server, f"/games/{game}/events", **headers)
        assert events.status_code == 403, events.text
        assert "is_correct" not in events.text
        participants = get(server, f"/games/{game}/participants", **headers)
        assert participants.status_code == 200
        assert len(participants.json()["items"]) == 2
        assert "dev-" not in participants.text  # no device id, anyone's
    service = get(server, f"/games/{game}/events", authorization=f"Bearer {SERVICE_KEY}")
    assert [e["event_type"] for e in service.json()["items"]] == ["game:created"]
