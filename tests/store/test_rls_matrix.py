"""Who may do what: every principal x every table x select/insert/update/delete, and EXECUTE.

Principals are simulated the way PostgREST runs a request: `SET LOCAL ROLE`, JWT claims in
`request.jwt.claims`, the guest's device id in the `x-device-id` header of `request.headers`.

The world (built fresh for each test):
  user_a owns quiz QA (published, public) and QA-draft, and game GA (quiz QA);
  user_b owns quiz QB (draft) and game GB; GG is a guest-hosted game (no owner).
  GA seats: HostA (host, dev-host-a) and Guest (dev-guest); GB: HostB (dev-host-b), Bob (dev-b1);
  GG: HostG (dev-host-g). Connections: sock-a (user_a, dev-a), sock-guest (dev-guest),
  sock-b (user_b, dev-b1). Events: GA#1, GA#2, GB#1. Participants: dev-guest in GA, dev-b1 in
  GB. Flows and player data for GA and GB (player data of Guest and Bob). GB is finished, GA
  and GG are waiting.
The guest is `anon` with header x-device-id: dev-guest.

Since issue 10 clients read only what the live views would show them: no raw log, no device
ids (players, participants and player data are labelled by player name here), scores only of
finished games, and connection rows only by the signed-in owner (a claimed device id reads
none). Column privileges are checked in tests/security/test_db_privileges.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.factories import acting_as, make_game, make_player, make_quiz, make_user

PRINCIPALS = ("anon", "user_a", "user_b", "guest", "service")
DENIED = "denied"
OK = "ok"
Outcome = Any  # set[str] of visible labels, a row count, OK or DENIED

# fmt: off
# table:                (anon, user_a, user_b, guest, service)
SELECT: dict[str, tuple[Outcome, ...]] = {
    "quiz_sets":             (
        {"QA"}, {"QA", "QA-draft"}, {"QA", "QB"}, {"QA"}, {"QA", "QA-draft", "QB"}),
    "questions":             (2, 4, 4, 2, 6),
    "answers":               (4, 8, 8, 4, 12),
    "games":                 (set(), {"GA"}, {"GB"}, {"GA"}, {"GA", "GB", "GG"}),
    "players":               (
        set(), {"HostA", "Guest"}, {"HostB", "Bob"}, {"HostA", "Guest"},
        {"HostA", "Guest", "HostB", "Bob", "HostG"}),
    "game_flows":            (set(), {"GA"}, {"GB"}, {"GA"}, {"GA", "GB"}),
    "game_player_data":      (set(), set(), {"Bob"}, set(), {"Guest", "Bob"}),
    "game_event_counters":   (DENIED, DENIED, DENIED, DENIED, {"GA", "GB"}),
    "game_owners":           (DENIED, DENIED, DENIED, DENIED, {"GA", "GB"}),
    "websocket_connections": (
        DENIED, {"sock-a"}, {"sock-b"}, DENIED, {"sock-a", "sock-b", "sock-guest"}),
    "device_sessions":       (
        DENIED, {"dev-a"}, {"dev-b1"}, DENIED, {"dev-a", "dev-b1", "dev-guest"}),
    "game_events":           (DENIED, DENIED, DENIED, DENIED, {"GA#1", "GA#2", "GB#1"}),
    "room_participants":     (set(), {"Guest"}, {"Bob"}, {"Guest"}, {"Guest", "Bob"}),
    "profiles":              (DENIED, {"alice"}, {"bob"}, DENIED, {"alice", "bob"}),
    "user_credentials":      (DENIED, DENIED, DENIED, DENIED, 2),
    "refresh_tokens":        (DENIED, DENIED, DENIED, DENIED, 2),
}

INSERT: dict[str, tuple[Outcome, ...]] = {
    "quiz_sets":             (DENIED, OK, OK, DENIED, OK),
    "questions":             (DENIED, OK, OK, DENIED, OK),
    "answers":               (DENIED, OK, OK, DENIED, OK),
    "games":                 (DENIED, DENIED, DENIED, DENIED, OK),
    "players":               (DENIED, DENIED, DENIED, DENIED, OK),
    "game_flows":            (DENIED, DENIED, DENIED, DENIED, OK),
    "game_player_data":      (DENIED, DENIED, DENIED, DENIED, OK),
    "game_event_counters":   (DENIED, DENIED, DENIED, DENIED, OK),
    "game_owners":           (DENIED, DENIED, DENIED, DENIED, OK),
    "websocket_connections": (DENIED, DENIED, DENIED, DENIED, OK),
    "device_sessions":       (DENIED, DENIED, DENIED, DENIED, OK),
    "game_events":           (DENIED, DENIED, DENIED, DENIED, OK),
    "room_participants":     (DENIED, DENIED, DENIED, DENIED, OK),
    "profiles":              (DENIED, DENIED, DENIED, DENIED, OK),
    "user_credentials":      (DENIED, DENIED, DENIED, DENIED, OK),
    "refresh_tokens":        (DENIED, DENIED, DENIED, DENIED, OK),
}

# Rows changed by an UPDATE/DELETE without WHERE (0 = allowed, but RLS shows no row).
UPDATE: dict[str, tuple[Outcome, ...]] = {
    "quiz_sets":             (DENIED, 2, 1, DENIED, 3),
    "questions":             (DENIED, 4, 2, DENIED, 6),
    "answers":               (DENIED, 8, 4, DENIED, 12),
    "games":                 (0, 1, 1, 0, 3),  # host columns only (locked, game_settings)
    "players":               (DENIED, DENIED, DENIED, DENIED, 5),
    "game_flows":            (DENIED, DENIED, DENIED, DENIED, 2),
    "game_player_data":      (DENIED, DENIED, DENIED, DENIED, 2),
    "game_event_counters":   (DENIED, DENIED, DENIED, DENIED, 2),
    "game_owners":           (DENIED, DENIED, DENIED, DENIED, 2),
    "websocket_connections": (DENIED, DENIED, DENIED, DENIED, 3),
    "device_sessions":       (DENIED, DENIED, DENIED, DENIED, 3),
    "game_events":           (DENIED, DENIED, DENIED, DENIED, DENIED),  # append-only
    "room_participants":     (DENIED, DENIED, DENIED, DENIED, 2),
    "profiles":              (DENIED, DENIED, DENIED, DENIED, 2),
    "user_credentials":      (DENIED, DENIED, DENIED, DENIED, 2),
    "refresh_tokens":        (DENIED, DENIED, DENIED, DENIED, 2),
}

DELETE: dict[str, tuple[Outcome, ...]] = {
    "quiz_sets":             (DENIED, 2, 1, DENIED, 3),
    "questions":             (DENIED, 4, 2, DENIED, 6),
    "answers":               (DENIED, 8, 4, DENIED, 12),
    "games":                 (DENIED, DENIED, DENIED, DENIED, 3),
    "players":               (DENIED, DENIED, DENIED, DENIED, 5),
    "game_flows":            (DENIED, DENIED, DENIED, DENIED, 2),
    "game_player_data":      (DENIED, DENIED, DENIED, DENIED, 2),
    "game_event_counters":   (DENIED, DENIED, DENIED, DENIED, 2),
    "game_owners":           (DENIED, DENIED, DENIED, DENIED, 2),
    "websocket_connections": (DENIED, DENIED, DENIED, DENIED, 3),
    "device_sessions":       (DENIED, DENIED, DENIED, DENIED, 3),
    "game_events":           (DENIED, DENIED, DENIED, DENIED, 3),  # retention cleanup only
    "room_participants":     (DENIED, DENIED, DENIED, DENIED, 2),
    "profiles":              (DENIED, DENIED, DENIED, DENIED, 2),
    "user_credentials":      (DENIED, DENIED, DENIED, DENIED, 2),
    "refresh_tokens":        (DENIED, DENIED, DENIED, DENIED, 2),
}

# Roles holding EXECUTE on each function ("PUBLIC" = everyone, incl. future roles).
EVERYONE = {"PUBLIC", "anon", "authenticated", "service_role"}
CLIENTS_AND_SERVER = {"anon", "authenticated", "service_role"}
SERVER = {"service_role"}
NOBODY: set[str] = set()
EXECUTE: dict[str, set[str]] = {
    # helpers of the caller's own input (CHECK constraints and policies call them)
    "is_valid_device_id(text)":                  EVERYONE,
    "assert_device_id(text,text)":               EVERYONE,
    "request_device_id()":                       EVERYONE,
    # RLS membership tests: answer only for the caller's own identity
    "is_game_member(uuid)":                      CLIENTS_AND_SERVER,
    "is_game_host(uuid)":                        CLIENTS_AND_SERVER,
    # SECURITY INVOKER readers: RLS decides what they return
    "get_game_leaderboard(uuid,integer)":        CLIENTS_AND_SERVER,
    # the raw log is the server's: its reader too
    "get_game_event_sequence(uuid,integer)":     SERVER,
    # a quiz owner's answer key (SECURITY DEFINER, checks auth.uid())
    "get_quiz_answer_key(uuid)":                 {"authenticated"},
    # the seed's SECURITY DEFINER functions: the server only
    "get_device_reconnect_count(character varying)": SERVER,
    "get_active_connections_count()":            SERVER,
    "update_device_session(character varying,uuid,character varying,jsonb)": SERVER,
    "record_reconnection(character varying)":    SERVER,
    "log_game_event(uuid,character varying,character varying,character varying,"
    "character varying,uuid,uuid,jsonb)":        SERVER,
    "get_daily_connection_stats(integer)":       SERVER,
    "get_game_completion_stats()":               SERVER,
    "cleanup_old_websocket_connections(integer)": SERVER,
    "mark_stale_connections(integer)":           SERVER,
    "cleanup_old_game_events(integer)":          SERVER,
    # trigger functions: fired by the database, called by nobody
    "set_updated_at()":                          NOBODY,
    "update_game_player_count()":                NOBODY,
    "auto_record_reconnection()":                NOBODY,
    "auto_update_device_session()":              NOBODY,
    "game_events_append_only()":                 NOBODY,
}
# fmt: on

GAME_CODES = {"100001": "GA", "100002": "GB", "100003": "GG"}
SPARE_EMAIL = "spare@example.test"
_SPARE = f"(SELECT id FROM auth.users WHERE email = '{SPARE_EMAIL}')"


@dataclass
class World:
    user_a: UUID
    user_b: UUID
    quizzes: dict[str, UUID]
    games: dict[str, UUID]
    players: dict[str, UUID]
    questions: dict[str, UUID]  # first question of each quiz

    def principal(self, name: str) -> dict[str, Any]:
        return {
            "anon": {"role": "anon"},
            "user_a": {"role": "authenticated", "user": self.user_a},
            "user_b": {"role": "authenticated", "user": self.user_b},
            "guest": {"role": "anon", "device": "dev-guest"},
            "service": {"role": "service_role"},
        }[name]

    def me(self, name: str) -> UUID:
        """The principal's own user id, or user_a's for those without one."""
        return self.user_b if name == "user_b" else self.user_a

    def my_quiz(self, name: str) -> str:
        return "QB" if name == "user_b" else "QA"


async def build_world(conn: asyncpg.Connection) -> World:
    a, b = await make_user(conn), await make_user(conn)
    await make_user(conn, SPARE_EMAIL)  # no profile, password or session: for INSERTs
    for user, name in ((a, "alice"), (b, "bob")):
        await conn.execute(
            "INSERT INTO profiles (id, username, display_name) VALUES ($1, $2, $2)", user, name
        )
        await conn.execute(
            "INSERT INTO user_credentials (user_id, password_hash) VALUES ($1, $2)",
            user,
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
        )
        await conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_digest, expires_at)"
            " VALUES ($1, sha256($2::bytea), now() + interval '1 day')",
            user,
            name.encode(),
        )
    quizzes = {
        "QA": await make_quiz(conn, a),
        "QA-draft": await make_quiz(conn, a, published=False),
        "QB": await make_quiz(conn, b, published=False),
    }
    for title, quiz in quizzes.items():
        await conn.execute("UPDATE quiz_sets SET title = $2 WHERE id = $1", quiz, title)
    questions = {
        title: await conn.fetchval(
            "SELECT id FROM questions WHERE question_set_id = $1 AND order_index = 0", quiz
        )
        for title, quiz in quizzes.items()
    }
    games = {
        "GA": await make_game(conn, a, quizzes["QA"]),
        "GB": await make_game(conn, b, quizzes["QB"]),
        "GG": await make_game(conn),
    }
    await conn.execute("UPDATE games SET status = 'finished' WHERE id = $1", games["GB"])
    for code, name in GAME_CODES.items():
        await conn.execute("UPDATE games SET game_code = $2 WHERE id = $1", games[name], code)
    players = {
        "HostA": await make_player(conn, games["GA"], "dev-host-a", "HostA", is_host=True),
        "Guest": await make_player(conn, games["GA"], "dev-guest", "Guest"),
        "HostB": await make_player(conn, games["GB"], "dev-host-b", "HostB", is_host=True),
        "Bob": await make_player(conn, games["GB"], "dev-b1", "Bob"),
        "HostG": await make_player(conn, games["GG"], "dev-host-g", "HostG", is_host=True),
    }
    for game in ("GA", "GB"):
        await conn.execute(
            "INSERT INTO game_flows (game_id, total_questions) VALUES ($1, 2)", games[game]
        )
    for player, game, device in (("Guest", "GA", "dev-guest"), ("Bob", "GB", "dev-b1")):
        await conn.execute(
            "INSERT INTO game_player_data (player_id, player_device_id, game_id, score)"
            " VALUES ($1, $2, $3, 100)",
            players[player],
            device,
            games[game],
        )
    await conn.executemany(
        "INSERT INTO websocket_connections (socket_id, device_id, user_id) VALUES ($1, $2, $3)",
        [("sock-a", "dev-a", a), ("sock-guest", "dev-guest", None), ("sock-b", "dev-b1", b)],
    )
    for game in ("GA", "GB"):
        await conn.execute(
            "INSERT INTO game_owners (game_id, owner, expires_at)"
            " VALUES ($1, 'process-1', now() + interval '1 minute')",
            games[game],
        )
    for game, action in (("GA", "start"), ("GA", "next"), ("GB", "start")):
        await conn.execute(
            "SELECT log_game_event(p_game_id => $1, p_event_type => 'game', p_action => $2)",
            games[game],
            action,
        )
    await conn.executemany(
        "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
        " VALUES ($1, $2, $3, $4)",
        [
            (games["GA"], "sock-guest", "dev-guest", players["Guest"]),
            (games["GB"], "sock-b", "dev-b1", players["Bob"]),
        ],
    )
    return World(a, b, quizzes, games, players, questions)


_GAME_LABEL = "(SELECT g.game_code FROM public.games g WHERE g.id = t.game_id)"
_PLAYER_LABEL = "(SELECT p.player_name FROM public.players p WHERE p.id = t.player_id)"

# How each table's rows are named in the tables above (None: counted instead).
LABELS: dict[str, str | None] = {
    "quiz_sets": "t.title",
    "questions": None,
    "answers": None,
    "games": "t.game_code",
    "players": "t.player_name",
    "game_flows": _GAME_LABEL,
    "game_player_data": _PLAYER_LABEL,
    "game_event_counters": _GAME_LABEL,
    "game_owners": _GAME_LABEL,
    "websocket_connections": "t.socket_id",
    "device_sessions": "t.device_id",
    "game_events": f"{_GAME_LABEL} || '#' || t.sequence_number",
    "room_participants": _PLAYER_LABEL,
    "profiles": "t.username",
    "user_credentials": None,
    "refresh_tokens": None,
}

# A no-op assignment each table accepts (games: a host column).
UPDATES: dict[str, str] = {
    "quiz_sets": "title = title",
    "questions": "question_text = question_text",
    "answers": "answer_text = answer_text",
    "games": "locked = locked",
    "players": "player_name = player_name",
    "game_flows": "total_questions = total_questions",
    "game_player_data": "score = score",
    "game_event_counters": "last_seq = last_seq",
    "game_owners": "owner = owner",
    "websocket_connections": "last_heartbeat = last_heartbeat",
    "device_sessions": "last_seen = last_seen",
    "game_events": "payload = payload",
    "room_participants": "metadata = metadata",
    "profiles": "display_name = display_name",
    "user_credentials": "password_hash = password_hash",
    "refresh_tokens": "revoked_at = revoked_at",
}

InsertSpec = Callable[[World, str], tuple[str, list[Any]]]

# A valid new row, made as much "the principal's own" as the table allows.
INSERTS: dict[str, InsertSpec] = {
    "quiz_sets": lambda w, p: (
        "INSERT INTO quiz_sets (user_id, title) VALUES ($1, 'new')",
        [w.me(p)],
    ),
    "questions": lambda w, p: (
        "INSERT INTO questions (question_set_id, question_text, order_index) VALUES ($1, 'q', 9)",
        [w.quizzes[w.my_quiz(p)]],
    ),
    "answers": lambda w, p: (
        "INSERT INTO answers (question_id, answer_text, order_index) VALUES ($1, 'a', 9)",
        [w.questions[w.my_quiz(p)]],
    ),
    "games": lambda w, p: (
        "INSERT INTO games (user_id, game_code) VALUES ($1, '999999')",
        [w.me(p)],
    ),
    "players": lambda w, p: (
        "INSERT INTO players (game_id, device_id, player_name, is_host)"
        " VALUES ($1, 'dev-guest', 'Sneaky', false)",
        [w.games["GB"]],
    ),
    "game_flows": lambda w, p: (
        "INSERT INTO game_flows (game_id) VALUES ($1)",
        [w.games["GG"]],
    ),
    "game_player_data": lambda w, p: (
        "INSERT INTO game_player_data (player_id, player_device_id, game_id, score)"
        " VALUES ($1, 'dev-host-g', $2, 9999)",
        [w.players["HostG"], w.games["GG"]],
    ),
    "game_event_counters": lambda w, p: (
        "INSERT INTO game_event_counters (game_id, last_seq) VALUES ($1, 0)",
        [w.games["GG"]],
    ),
    "game_owners": lambda w, p: (
        "INSERT INTO game_owners (game_id, owner, expires_at) VALUES ($1, 'forged', now())",
        [w.games["GG"]],
    ),
    "websocket_connections": lambda w, p: (
        "INSERT INTO websocket_connections (socket_id, device_id) VALUES ('sock-new', 'dev-guest')",
        [],
    ),
    "device_sessions": lambda w, p: (
        "INSERT INTO device_sessions (device_id) VALUES ('dev-new')",
        [],
    ),
    "game_events": lambda w, p: (
        "INSERT INTO game_events (game_id, event_type, action, sequence_number)"
        " VALUES ($1, 'forged', 'forged', 99)",
        [w.games["GA"]],
    ),
    "room_participants": lambda w, p: (
        "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
        " VALUES ($1, 'sock-g', 'dev-host-g', $2)",
        [w.games["GG"], w.players["HostG"]],
    ),
    "profiles": lambda w, p: (
        f"INSERT INTO profiles (id, display_name) VALUES ({_SPARE}, 'Spare')",
        [],
    ),
    "user_credentials": lambda w, p: (
        "INSERT INTO user_credentials (user_id, password_hash)"
        f" VALUES ({_SPARE}, '$argon2id$v=19$m=65536,t=3,p=4$eA$eA')",
        [],
    ),
    "refresh_tokens": lambda w, p: (
        "INSERT INTO refresh_tokens (user_id, token_digest, expires_at)"
        f" VALUES ({_SPARE}, sha256('new'::bytea), now())",
        [],
    ),
}


def _name(label: str) -> str:
    """'100001#2' -> 'GA#2': game codes read back as the world's game names."""
    code, sep, rest = label.partition("#")
    return GAME_CODES.get(code, code) + sep + rest


async def _outcome(conn: asyncpg.Connection, sql: str, *args: Any) -> Outcome:
    """Labels (or a count) seen, OK for an insert, rows changed, or DENIED (privilege/RLS)."""
    try:
        if sql.startswith("SELECT count"):
            return await conn.fetchval(sql, *args)
        if sql.startswith("SELECT"):
            return {_name(r[0]) for r in await conn.fetch(sql, *args)}
        status = await conn.execute(sql, *args)
    except asyncpg.InsufficientPrivilegeError:
        return DENIED
    if status.startswith("INSERT"):
        return OK
    return int(status.rsplit(" ", 1)[1])


async def _observe(conn: asyncpg.Connection, world: World, table: str, op: str) -> Outcome:
    results = []
    for principal in PRINCIPALS:
        async with acting_as(conn, **world.principal(principal)):
            if op == "select":
                label = LABELS[table]
                what = "count(*)" if label is None else label
                sql = f"SELECT {what} FROM public.{table} t"
                results.append(await _outcome(conn, sql))
            elif op == "insert":
                sql, args = INSERTS[table](world, principal)
                results.append(await _outcome(conn, sql, *args))
            elif op == "update":
                sql = f"UPDATE public.{table} SET {UPDATES[table]}"
                results.append(await _outcome(conn, sql))
            else:
                results.append(await _outcome(conn, f"DELETE FROM public.{table}"))
    return tuple(results)


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    return await build_world(conn)


def test_matrix_covers_every_table_in_public() -> None:
    """A table added later must be added to the matrix too."""
    assert set(SELECT) == set(INSERT) == set(UPDATE) == set(DELETE) == set(LABELS)


async def test_matrix_lists_every_public_table(conn: asyncpg.Connection) -> None:
    tables = {
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables == set(SELECT)


@pytest.mark.parametrize("table", sorted(SELECT))
async def test_table_access(conn: asyncpg.Connection, world: World, table: str) -> None:
    """select/insert/update/delete on one table, for every principal, against the matrix."""
    expected = {
        "select": SELECT[table],
        "insert": INSERT[table],
        "update": UPDATE[table],
        "delete": DELETE[table],
    }
    observed = {op: await _observe(conn, world, table, op) for op in expected}
    assert observed == expected


async def test_execute_privileges(conn: asyncpg.Connection) -> None:
    """Every function in public, with exactly the roles that may call it."""
    rows = await conn.fetch(
        """
        SELECT p.oid::regprocedure::text AS sig,
               has_function_privilege('anon', p.oid, 'EXECUTE') AS anon,
               has_function_privilege('authenticated', p.oid, 'EXECUTE') AS authenticated,
               has_function_privilege('service_role', p.oid, 'EXECUTE') AS service_role,
               EXISTS (
                 SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'
               ) AS "PUBLIC"
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
        """
    )
    observed = {
        r["sig"]: {role for role in ("PUBLIC", "anon", "authenticated", "service_role") if r[role]}
        for r in rows
    }
    assert observed == EXECUTE


async def test_client_calls_follow_execute_privileges(
    conn: asyncpg.Connection, world: World
) -> None:
    """A denied EXECUTE is a real error for the caller, not a silent empty result."""
    async with acting_as(conn, "anon", device="dev-guest"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT log_game_event(p_game_id => $1)", world.games["GA"])
    async with acting_as(conn, "authenticated", user=world.user_a):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT mark_stale_connections(timeout_minutes => 0)")
    async with acting_as(conn, "anon", device="dev-guest"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(
                "SELECT sequence_number FROM get_game_event_sequence(p_game_id => $1)",
                world.games["GA"],
            )
    async with acting_as(conn, "service_role"):
        rows = await conn.fetch(
            "SELECT sequence_number FROM get_game_event_sequence(p_game_id => $1)",
            world.games["GA"],
        )
        assert [r[0] for r in rows] == [1, 2]
