"""The 17 defects of the reference design (DESIGN §2), one test each, plus bad input.

Each test states the behaviour the reference got wrong, so it fails there and passes here.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from uuid import UUID, uuid4

import asyncpg
import pytest

from tests.factories import acting_as, make_game, make_player, make_user
from tuiz.store.db import connect

# ---------------------------------------------------------------------------------------------
# 1. SECURITY DEFINER functions executable by PUBLIC/anon
# ---------------------------------------------------------------------------------------------

# Definer functions clients may call: they only ever answer for the caller's own identity.
CALLER_SCOPED_DEFINERS = {"is_game_member", "is_game_host", "get_quiz_answer_key"}


async def test_defect_01_definer_functions_are_not_public(conn: asyncpg.Connection) -> None:
    """No client can forge events, sweep connections or rewrite sessions through a definer."""
    rows = await conn.fetch(
        """
        SELECT p.proname, p.proconfig,
               has_function_privilege('anon', p.oid, 'EXECUTE') AS anon,
               has_function_privilege('authenticated', p.oid, 'EXECUTE') AS authenticated,
               EXISTS (
                 SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  WHERE a.grantee = 0
               ) AS public
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.prosecdef
        """
    )
    assert {r["proname"] for r in rows} >= {"log_game_event", "mark_stale_connections"}
    for r in rows:
        assert not r["public"], r["proname"]
        assert any(c.startswith("search_path=") for c in r["proconfig"] or []), r["proname"]
        if r["proname"] not in CALLER_SCOPED_DEFINERS:
            assert not (r["anon"] or r["authenticated"]), r["proname"]

    game = await make_game(conn)
    for role in ("anon", "authenticated"):
        for call in (
            "SELECT log_game_event(p_game_id => $1::uuid, p_payload => '{}')",
            "SELECT cleanup_old_websocket_connections(days_old => 0) WHERE $1::uuid IS NOT NULL",
            "SELECT update_device_session('victim-device') WHERE $1::uuid IS NOT NULL",
        ):
            async with acting_as(conn, role, user=uuid4()):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(call, game)
    assert await conn.fetchval("SELECT count(*) FROM game_events") == 0


# ---------------------------------------------------------------------------------------------
# 2. FOR ALL USING (true) on room_participants
# ---------------------------------------------------------------------------------------------


async def _participant(conn: asyncpg.Connection) -> tuple[UUID, UUID]:
    game = await make_game(conn)
    player = await make_player(conn, game, "dev-p1", "P1")
    row: UUID = await conn.fetchval(
        "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
        " VALUES ($1, 's1', 'dev-p1', $2) RETURNING id",
        game,
        player,
    )
    return game, row


async def test_defect_02_nobody_rewrites_room_participants(conn: asyncpg.Connection) -> None:
    """Neither the participant nor anyone else may update or delete membership rows."""
    await _participant(conn)
    for role, device in (("anon", None), ("anon", "dev-p1"), ("authenticated", "dev-p1")):
        for sql in (
            "UPDATE room_participants SET status = 'disconnected'",
            "DELETE FROM room_participants",
            "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
            " SELECT game_id, 's2', 'dev-p1', player_id FROM room_participants",
        ):
            async with acting_as(conn, role, user=uuid4(), device=device):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
    assert await conn.fetchval("SELECT status::text FROM room_participants") == "active"
    # And no table anywhere has an always-true write policy.
    permissive_writes = await conn.fetch(
        """
        SELECT tablename, policyname FROM pg_policies
         WHERE schemaname = 'public' AND cmd <> 'SELECT'
           AND (coalesce(qual, 'true') = 'true' OR coalesce(with_check, 'true') = 'true')
        """
    )
    assert permissive_writes == []


# ---------------------------------------------------------------------------------------------
# 3. Game events altered or deleted by participants
# ---------------------------------------------------------------------------------------------


async def test_defect_03_game_events_are_append_only(conn: asyncpg.Connection) -> None:
    """Participants cannot touch the log; not even the owner may UPDATE it; cleanup may DELETE."""
    game = await make_game(conn)
    await make_player(conn, game, "dev-p1", "P1")
    await conn.execute("SELECT log_game_event(p_game_id => $1, p_payload => '{\"a\": 1}')", game)

    for sql in (
        "SELECT count(*) FROM game_events",  # the raw log is the server's (issue 10)
        "UPDATE game_events SET payload = '{}'",
        "DELETE FROM game_events",
    ):
        async with acting_as(conn, "anon", device="dev-p1"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        async with acting_as(conn, "service_role"):
            if sql.startswith("UPDATE"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
    # The superuser/owner is stopped by the trigger, not just by missing grants.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("UPDATE game_events SET payload = '{\"a\": 2}'")
    assert await conn.fetchval("SELECT payload->>'a' FROM game_events") == "1"

    # Retention cleanup (service_role) may delete the events of long-finished games.
    await conn.execute(
        "UPDATE games SET status = 'finished', ended_at = now() - interval '40 days' WHERE id = $1",
        game,
    )
    async with acting_as(conn, "service_role"):
        assert await conn.fetchval("SELECT cleanup_old_game_events(days_old => 30)") == 1
        assert await conn.fetchval("SELECT count(*) FROM game_events") == 0


# ---------------------------------------------------------------------------------------------
# 4. Inserting oneself as host; editing another game's flow; "any logged-in user" clauses
# ---------------------------------------------------------------------------------------------


async def test_defect_04_no_self_made_hosts_or_foreign_flows(conn: asyncpg.Connection) -> None:
    """A signed-in user or a guest can neither seat itself as host nor edit any flow."""
    owner, stranger = await make_user(conn), await make_user(conn)
    game = await make_game(conn, owner)
    await make_player(conn, game, "dev-host", "Host", is_host=True)
    await conn.execute("INSERT INTO game_flows (game_id) VALUES ($1)", game)

    for role, user, device in (
        ("authenticated", stranger, "dev-stranger"),
        ("anon", None, "dev-stranger"),
        ("authenticated", owner, "dev-host"),  # even the host writes flows through the server
    ):
        for sql in (
            "INSERT INTO players (game_id, device_id, player_name, is_host)"
            " VALUES ($1, 'dev-stranger', 'Me', true)",
            "UPDATE game_flows SET current_question_index = 5 WHERE game_id = $1",
            "DELETE FROM game_flows WHERE game_id = $1",
            "INSERT INTO game_flows (game_id) SELECT $1 WHERE false",
        ):
            async with acting_as(conn, role, user=user, device=device):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql, game)
        # The stranger cannot even reach the game row through the host path.
        if user != owner:
            async with acting_as(conn, role, user=user, device=device):
                assert await conn.execute("UPDATE games SET locked = true") == "UPDATE 0"
    assert await conn.fetchval("SELECT count(*) FROM players WHERE is_host") == 1
    assert await conn.fetchval("SELECT current_question_index FROM game_flows") == 0
    assert not await conn.fetchval("SELECT locked FROM games")
    # No policy grants anything merely for being signed in.
    loose = await conn.fetch(
        """
        SELECT tablename, policyname FROM pg_policies
         WHERE schemaname = 'public'
           AND (coalesce(qual, '') ILIKE '%uid() IS NOT NULL%'
                OR coalesce(with_check, '') ILIKE '%uid() IS NOT NULL%'
                OR coalesce(qual, '') ILIKE '%role() = %')
        """
    )
    assert loose == []


# ---------------------------------------------------------------------------------------------
# 5. MAX(sequence_number)+1 under concurrency
# ---------------------------------------------------------------------------------------------

WRITERS = 8
EVENTS_PER_WRITER = 1_000


async def test_defect_05_concurrent_log_game_event_is_gapless(
    conn: asyncpg.Connection, db_url: str
) -> None:
    """8 connections x 1,000 calls on one game: sequence 1..8,000, no duplicate, no gap."""
    game = await make_game(conn)
    writers = [await connect(db_url) for _ in range(WRITERS)]
    try:
        await asyncio.gather(*(w.execute("SET ROLE service_role") for w in writers))

        async def write(w: asyncpg.Connection, n: int) -> None:
            for i in range(EVENTS_PER_WRITER):
                await w.fetchval(
                    "SELECT log_game_event(p_game_id => $1, p_event_type => 'load',"
                    " p_action => 'append', p_payload => $2::jsonb)",
                    game,
                    {"writer": n, "i": i},
                )

        await asyncio.gather(*(write(w, n) for n, w in enumerate(writers)))
    finally:
        await asyncio.gather(*(w.close() for w in writers))

    seqs = [
        r[0]
        for r in await conn.fetch(
            "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY 1", game
        )
    ]
    assert seqs == list(range(1, WRITERS * EVENTS_PER_WRITER + 1))
    assert await conn.fetchval(
        "SELECT last_seq FROM game_event_counters WHERE game_id = $1", game
    ) == len(seqs)
    # Per writer, the log keeps each writer's own order.
    for n in range(WRITERS):
        order = [
            r[0]
            for r in await conn.fetch(
                "SELECT (payload->>'i')::int FROM game_events"
                " WHERE payload->>'writer' = $1 ORDER BY sequence_number",
                str(n),
            )
        ]
        assert order == list(range(EVENTS_PER_WRITER))


async def test_defect_05_sequence_uniqueness_is_a_constraint(conn: asyncpg.Connection) -> None:
    """Even a writer bypassing the counter cannot store a duplicate number."""
    game = await make_game(conn)
    await conn.execute("SELECT log_game_event(p_game_id => $1)", game)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO game_events (game_id, event_type, action, sequence_number)"
            " VALUES ($1, 'x', 'x', 1)",
            game,
        )


async def test_defect_05_rollback_leaves_no_gap(conn: asyncpg.Connection) -> None:
    """A logged event whose transaction rolls back gives its number back."""
    game = await make_game(conn)
    await conn.execute("SELECT log_game_event(p_game_id => $1)", game)
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute("SELECT log_game_event(p_game_id => $1)", game)
    await transaction.rollback()
    await conn.execute("SELECT log_game_event(p_game_id => $1)", game)
    seqs = await conn.fetch("SELECT sequence_number FROM game_events ORDER BY 1")
    assert [r[0] for r in seqs] == [1, 2]


# ---------------------------------------------------------------------------------------------
# 6. Player count kept in two places; trigger unable to write under RLS
# ---------------------------------------------------------------------------------------------


async def test_defect_06_player_count_has_one_writer(conn: asyncpg.Connection) -> None:
    """Only the players trigger changes current_players, as definer, and it counts once."""
    writers = await conn.fetch(
        """
        SELECT p.proname, p.prosecdef FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.prosrc ILIKE '%current_players%'
        """
    )
    assert [(r["proname"], r["prosecdef"]) for r in writers] == [("update_game_player_count", True)]
    game = await make_game(conn)
    host = await make_player(conn, game, "dev-host", "Host", is_host=True)
    players = [await make_player(conn, game, f"dev-{i}", f"P{i}") for i in range(3)]
    assert await conn.fetchval("SELECT current_players FROM games") == 3
    async with acting_as(conn, "service_role"):
        await conn.execute("DELETE FROM players WHERE id = $1", players[0])
        await conn.execute("UPDATE players SET is_host = false WHERE id = $1", host)
        await conn.execute("UPDATE players SET player_name = 'Renamed' WHERE id = $1", players[1])
        assert await conn.fetchval("SELECT current_players FROM games") == 3
    # A writer subject to RLS, who cannot see (let alone update) games, still gets its
    # players counted: the trigger runs as the definer. Role and policy vanish with the rollback.
    writer = f"tuiz_test_writer_{secrets.token_hex(4)}"
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f"CREATE ROLE {writer} NOLOGIN NOBYPASSRLS")
        await conn.execute(f"GRANT INSERT ON players TO {writer}")
        await conn.execute(
            f"CREATE POLICY test_writer ON players FOR INSERT TO {writer} WITH CHECK (true)"
        )
        await conn.execute(f"SET LOCAL ROLE {writer}")
        await conn.execute(
            "INSERT INTO players (game_id, device_id, player_name) VALUES ($1, 'dev-9', 'P9')",
            game,
        )
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT current_players FROM games") == 4
    finally:
        await transaction.rollback()


async def test_player_count_is_one_update_of_the_game_per_statement(
    conn: asyncpg.Connection,
) -> None:
    """A batch of joins counts its seats with one UPDATE of each game's row, not one per seat
    (a 500-seat batch wrote 500 versions of the hot row); deletes likewise."""
    games = [await make_game(conn), await make_game(conn)]

    async def game_row_updates() -> int:
        count: int = await conn.fetchval(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'games'"
        )
        return count

    transaction = conn.transaction()
    await transaction.start()
    try:
        before = await game_row_updates()
        await conn.execute(
            """
            INSERT INTO players (game_id, device_id, player_name, is_host)
            SELECT g, 'dev-' || i || '-' || n, 'P' || i, i = 0
              FROM unnest($1::uuid[]) WITH ORDINALITY AS u(g, n), generate_series(0, 29) AS i
            """,
            games,
        )
        assert await game_row_updates() - before == 2  # one per game, not 58
        counts = "SELECT current_players FROM games WHERE id = $1"
        assert [await conn.fetchval(counts, g) for g in games] == [29, 29]
        await conn.execute(
            "DELETE FROM players WHERE game_id = $1 AND (is_host OR player_name < 'P2')",
            games[0],
        )  # the host, P1, P10..P19
        assert await game_row_updates() - before == 3
        assert [await conn.fetchval(counts, g) for g in games] == [18, 29]
    finally:
        await transaction.rollback()


# ---------------------------------------------------------------------------------------------
# 7. current_setting('request.headers')::json raising on pooled connections
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", ["", "not json", "[1, 2]", '{"x-device-id": ""}', '{"x-device-id": " "}', "{}"]
)
async def test_defect_07_missing_or_bad_headers_mean_nobody(
    conn: asyncpg.Connection, headers: str
) -> None:
    """Every client-readable table answers (with nothing) instead of raising."""
    game = await make_game(conn)
    await make_player(conn, game, "dev-p1", "P1")
    await conn.execute("SELECT log_game_event(p_game_id => $1)", game)
    tables = (
        "games",
        "players",
        "game_flows",
        "game_player_data",
        "game_events",
        "room_participants",
        "websocket_connections",
        "device_sessions",
    )
    # Tables a role may not read at all refuse instead (the raw log; connection rows for anon).
    unreadable = {
        "anon": {"game_events", "websocket_connections", "device_sessions"},
        "authenticated": {"game_events"},
    }
    for role in ("anon", "authenticated"):
        async with acting_as(conn, role, headers=headers):
            assert await conn.fetchval("SELECT public.request_device_id()") is None
            for table in tables:
                if table in unreadable[role]:
                    assert not await conn.fetchval(
                        "SELECT has_table_privilege($1, $2, 'SELECT')", role, f"public.{table}"
                    )
                    continue
                assert await conn.fetchval(f"SELECT count(*) FROM public.{table}") == 0
    # A plain connection without any PostgREST settings is fine too.
    assert await conn.fetchval("SELECT public.request_device_id()") is None
    assert await conn.fetchval("SELECT auth.uid()") is None


# ---------------------------------------------------------------------------------------------
# 8. Device ids: empty, whitespace, unlimited, any characters
# ---------------------------------------------------------------------------------------------

BAD_DEVICE_IDS = ["", " ", "   \t", "a" * 256, "x" * 10_240, "dev id", "dev/1", "ünï", "--", "a\n"]
GOOD_DEVICE_IDS = [
    "8b7f2c1e-3d4a-4b5c-9e8f-0a1b2c3d4e5f",
    "device_1700000000000_k3j4h5",
    "tuiz_device_8b7f2c1e-3d4a-4b5c-9e8f-0a1b2c3d4e5f",
    "a" * 255,
]

DEVICE_ID_COLUMNS = {
    "players": "device_id",
    "game_player_data": "player_device_id",
    "websocket_connections": "device_id",
    "device_sessions": "device_id",
    "game_events": "device_id",
    "room_participants": "device_id",
}


async def test_defect_08_every_device_id_column_is_validated(conn: asyncpg.Connection) -> None:
    """Every column holding a device id has the validity CHECK, and no other such column exists."""
    columns = await conn.fetch(
        """
        SELECT table_name, column_name FROM information_schema.columns
         WHERE table_schema = 'public' AND column_name LIKE '%device_id'
        """
    )
    assert {(r[0], r[1]) for r in columns} == set(DEVICE_ID_COLUMNS.items())
    for table, column in DEVICE_ID_COLUMNS.items():
        checks = await conn.fetch(
            """
            SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
             WHERE c.conrelid = $1::regclass AND c.contype = 'c'
            """,
            f"public.{table}",
        )
        assert any(f"is_valid_device_id({column})" in r[0] for r in checks), table


@pytest.mark.parametrize("device_id", BAD_DEVICE_IDS, ids=lambda d: f"len{len(d)}:{d[:8]!r}")
async def test_defect_08_bad_device_ids_rejected(conn: asyncpg.Connection, device_id: str) -> None:
    """Direct inserts hit a named CHECK; functions raise 22023 naming the parameter."""
    game = await make_game(conn)
    with pytest.raises(asyncpg.CheckViolationError, match="players_device_id_valid"):
        await make_player(conn, game, device_id, "P")
    with pytest.raises(
        asyncpg.InvalidParameterValueError, match=r"websocket_connections\.device_id"
    ):
        await conn.execute(
            "INSERT INTO websocket_connections (socket_id, device_id) VALUES ('s', $1)", device_id
        )
    for call in (
        "SELECT update_device_session(p_device_id => $1)",
        "SELECT record_reconnection(p_device_id => $1)",
        "SELECT get_device_reconnect_count(p_device_id => $1)",
    ):
        with pytest.raises(asyncpg.InvalidParameterValueError, match="p_device_id"):
            await conn.execute(call, device_id)
    with pytest.raises(asyncpg.InvalidParameterValueError, match="p_device_id"):
        await conn.execute(
            "SELECT log_game_event(p_game_id => $1, p_device_id => $2)", game, device_id
        )
    for table in ("players", "websocket_connections", "device_sessions", "game_events"):
        assert await conn.fetchval(f"SELECT count(*) FROM public.{table}") == 0, table


@pytest.mark.parametrize("device_id", GOOD_DEVICE_IDS, ids=lambda d: d[:24])
async def test_defect_08_real_client_device_ids_accepted(
    conn: asyncpg.Connection, device_id: str
) -> None:
    game = await make_game(conn)
    await make_player(conn, game, device_id, "P")
    await conn.execute(
        "INSERT INTO websocket_connections (socket_id, device_id) VALUES ('s', $1)", device_id
    )
    await conn.execute("SELECT log_game_event(p_game_id => $1, p_device_id => $2)", game, device_id)
    assert await conn.fetchval("SELECT get_device_reconnect_count($1)", device_id) == 0


# ---------------------------------------------------------------------------------------------
# 9. Players writing their own scores
# ---------------------------------------------------------------------------------------------


async def test_defect_09_players_cannot_write_scores(conn: asyncpg.Connection) -> None:
    """The player's own device header grants reading its score (once the game is finished),
    never writing it."""
    game = await make_game(conn, status="finished")
    player = await make_player(conn, game, "dev-p1", "P1")
    await conn.execute(
        "INSERT INTO game_player_data (player_id, player_device_id, game_id, score)"
        " VALUES ($1, 'dev-p1', $2, 10)",
        player,
        game,
    )
    for role in ("anon", "authenticated"):
        for sql in (
            "UPDATE game_player_data SET score = 99999",
            "INSERT INTO game_player_data (player_id, player_device_id, game_id, score)"
            " SELECT player_id, 'dev-p1', game_id, 99999 FROM game_player_data",
            "DELETE FROM game_player_data",
        ):
            async with acting_as(conn, role, user=uuid4(), device="dev-p1"):
                assert await conn.fetchval("SELECT score FROM game_player_data") == 10
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
    assert await conn.fetchval("SELECT score FROM game_player_data") == 10


# ---------------------------------------------------------------------------------------------
# 10. Deleting a user turning their private games public
# ---------------------------------------------------------------------------------------------


async def test_defect_10_deleted_users_games_do_not_become_public(
    conn: asyncpg.Connection,
) -> None:
    """The owner's games go with the owner; an ownerless (guest) game is never public."""
    owner = await make_user(conn)
    game = await make_game(conn, owner)
    await make_player(conn, game, "dev-p1", "P1")
    await conn.execute("SELECT log_game_event(p_game_id => $1)", game)
    guest_game = await make_game(conn)
    await make_player(conn, guest_game, "dev-host", "Host", is_host=True)

    await conn.execute("DELETE FROM auth.users WHERE id = $1", owner)
    assert await conn.fetchval("SELECT count(*) FROM games WHERE id = $1", game) == 0
    assert await conn.fetchval("SELECT count(*) FROM game_events") == 0

    for role, user in (("anon", None), ("authenticated", await make_user(conn))):
        async with acting_as(conn, role, user=user, device="dev-p1"):
            assert await conn.fetchval("SELECT count(*) FROM games") == 0
            assert await conn.fetchval("SELECT count(*) FROM players") == 0
    fk = await conn.fetchval(
        "SELECT confdeltype::text FROM pg_constraint WHERE conrelid = 'public.games'::regclass"
        " AND contype = 'f' AND confrelid = 'auth.users'::regclass"
    )
    assert fk == "c"  # ON DELETE CASCADE


# ---------------------------------------------------------------------------------------------
# 11. Host device update path that can never match
# ---------------------------------------------------------------------------------------------


async def test_defect_11_host_device_can_update_its_game(conn: asyncpg.Connection) -> None:
    """The guest host (by device) and the owning user can lock their room; nobody else can."""
    owner, other = await make_user(conn), await make_user(conn)
    owned = await make_game(conn, owner)
    guest_hosted = await make_game(conn)
    await make_player(conn, guest_hosted, "dev-host", "Host", is_host=True)
    await make_player(conn, guest_hosted, "dev-p1", "P1")

    async def lock(game: UUID, role: str, user: UUID | None, device: str | None) -> str:
        async with acting_as(conn, role, user=user, device=device):
            status: str = await conn.execute(
                "UPDATE games SET locked = true, game_settings = '{\"k\": 1}' WHERE id = $1", game
            )
            if status == "UPDATE 1":
                assert await conn.fetchval("SELECT locked FROM games WHERE id = $1", game)
            return status

    assert await lock(guest_hosted, "anon", None, "dev-host") == "UPDATE 1"
    assert await lock(guest_hosted, "anon", None, "dev-p1") == "UPDATE 0"
    assert await lock(guest_hosted, "authenticated", other, None) == "UPDATE 0"
    assert await lock(owned, "authenticated", owner, None) == "UPDATE 1"
    assert await lock(owned, "authenticated", other, "dev-host") == "UPDATE 0"
    # The host controls the room, not the game's status, owner or counters.
    for column in ("status = 'finished'", "user_id = NULL", "current_players = 0"):
        async with acting_as(conn, "anon", device="dev-host"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"UPDATE games SET {column} WHERE id = $1", guest_hosted)


# ---------------------------------------------------------------------------------------------
# 12. get_device_reconnect_count counting disconnected rows
# ---------------------------------------------------------------------------------------------


async def _connect(conn: asyncpg.Connection, device: str, socket: str, **extra: object) -> int:
    columns = ["socket_id", "device_id", *extra]
    values = ", ".join(f"${i + 1}" for i in range(len(columns)))
    count: int = await conn.fetchval(
        f"INSERT INTO websocket_connections ({', '.join(columns)}) VALUES ({values})"
        " RETURNING reconnect_count",
        socket,
        device,
        *extra.values(),
    )
    return count


async def test_defect_12_reconnect_count_counts_reconnections(conn: asyncpg.Connection) -> None:
    """One connection that ended is not a reconnection; a second connection is."""
    assert await _connect(conn, "dev-1", "s1") == 0
    await conn.execute("UPDATE websocket_connections SET status = 'disconnected'")
    assert await conn.fetchval("SELECT get_device_reconnect_count('dev-1')") == 0
    assert await _connect(conn, "dev-1", "s2") == 1
    assert await conn.fetchval("SELECT get_device_reconnect_count('dev-1')") == 1
    # Still active (no disconnect recorded yet): a third connection is the second reconnection.
    assert await _connect(conn, "dev-1", "s3") == 2
    assert await conn.fetchval("SELECT get_device_reconnect_count('dev-1')") == 2
    assert await conn.fetchval("SELECT get_device_reconnect_count('never-seen')") == 0


# ---------------------------------------------------------------------------------------------
# 13. device_sessions counters: trigger order, double counting, metadata overwritten
# ---------------------------------------------------------------------------------------------


async def _session(conn: asyncpg.Connection, device: str) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "SELECT total_connections, total_reconnections, metadata, user_id"
        " FROM device_sessions WHERE device_id = $1",
        device,
    )
    return row


async def test_defect_13_session_counters(conn: asyncpg.Connection) -> None:
    """total_connections +1 per connection row; total_reconnections +1 per later connection."""
    user = await make_user(conn)
    await _connect(conn, "dev-1", "s1", metadata={"browser": "firefox", "screen": "1080p"})
    s = await _session(conn, "dev-1")
    assert (s[0], s[1]) == (1, 0)
    await _connect(conn, "dev-1", "s2", user_id=user, metadata={"browser": "chrome"})
    s = await _session(conn, "dev-1")
    assert (s[0], s[1], s["user_id"]) == (2, 1, user)
    assert s["metadata"] == {"browser": "chrome", "screen": "1080p"}

    # update_device_session links and merges; it never counts (no double counting).
    await conn.execute(
        "SELECT update_device_session(p_device_id => 'dev-1', p_user_id => NULL,"
        " p_browser_fingerprint => 'fp', p_metadata => '{\"lang\": \"ja\"}')"
    )
    s = await _session(conn, "dev-1")
    assert (s[0], s[1], s["user_id"]) == (2, 1, user)
    assert s["metadata"] == {"browser": "chrome", "screen": "1080p", "lang": "ja"}

    # Order independence: a reconnection recorded before the device's first row is kept.
    await conn.execute("SELECT record_reconnection(p_device_id => 'dev-2')")
    await _connect(conn, "dev-2", "s3")
    s = await _session(conn, "dev-2")
    assert (s[0], s[1]) == (1, 1)

    # A session created by update_device_session alone has had no connection yet.
    await conn.execute("SELECT update_device_session('dev-3')")
    assert await _connect(conn, "dev-3", "s4") == 0
    s = await _session(conn, "dev-3")
    assert (s[0], s[1]) == (1, 0)

    # Clients claiming a reconnect count do not inflate the counters.
    assert await _connect(conn, "dev-4", "s5", reconnect_count=7) == 0
    s = await _session(conn, "dev-4")
    assert (s[0], s[1]) == (1, 0)


async def _waits_for_lock(conn: asyncpg.Connection, pid: int) -> bool:
    """True while the backend `pid` waits for a lock (pg_locks is live, not a snapshot)."""
    waiting: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", pid
    )
    return waiting


async def test_defect_13_concurrent_first_connections(
    conn: asyncpg.Connection, db_url: str
) -> None:
    """Two simultaneous first connections of one device: exactly one of them is the first."""
    others = [await connect(db_url) for _ in range(2)]
    try:
        transactions = [c.transaction() for c in others]
        for t in transactions:
            await t.start()
        first = await _connect(others[0], "dev-race", "s1")
        second = asyncio.ensure_future(_connect(others[1], "dev-race", "s2"))
        # Let the second insert run into the first's uncommitted session row, then commit.
        for _ in range(500):
            if second.done() or await _waits_for_lock(conn, others[1].get_server_pid()):
                break
            await asyncio.sleep(0.01)
        assert not second.done(), "the second first-connection did not wait for the first"
        await transactions[0].commit()
        counts = sorted([first, await second])
        await transactions[1].commit()
    finally:
        for c in others:
            await c.close()
    assert counts == [0, 1]
    s = await _session(conn, "dev-race")
    assert (s[0], s[1]) == (2, 1)


async def test_defect_13_metadata_must_be_an_object(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InvalidParameterValueError, match="p_metadata"):
        await conn.execute("SELECT update_device_session('dev-1', NULL, NULL, '[1]')")
    assert await conn.fetchval("SELECT count(*) FROM device_sessions") == 0


# ---------------------------------------------------------------------------------------------
# 14. Daily statistics depending on the session time zone
# ---------------------------------------------------------------------------------------------


async def test_defect_14_daily_stats_use_utc_days(conn: asyncpg.Connection) -> None:
    """Connections either side of UTC midnight land on the same UTC days in every TimeZone."""
    await conn.execute(
        """
        INSERT INTO websocket_connections (socket_id, device_id, connected_at)
        SELECT 's' || i, 'dev-' || i, midnight + offset_
          FROM (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS midnight)
               m,
               LATERAL (VALUES (1, interval '-30 minutes'), (2, interval '-1 minute'),
                               (3, interval '1 minute'), (4, interval '8 hours')) v(i, offset_)
        """
    )
    results = {}
    for zone in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
        await conn.execute(f"SET TimeZone = '{zone}'")
        rows = await conn.fetch(
            "SELECT date, total_connections, unique_devices"
            " FROM get_daily_connection_stats(days_back => 2)"
        )
        results[zone] = [tuple(r) for r in rows]
    await conn.execute("RESET TimeZone")
    today = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    yesterday = today.fromordinal(today.toordinal() - 1)
    expected = [(today, 2, 2), (yesterday, 2, 2)]
    assert results == {"UTC": expected, "Asia/Tokyo": expected, "America/Los_Angeles": expected}


# ---------------------------------------------------------------------------------------------
# 15. Missing uniqueness; leaderboard ties ranked arbitrarily
# ---------------------------------------------------------------------------------------------


async def test_defect_15_one_row_where_one_row_belongs(conn: asyncpg.Connection) -> None:
    """(game, device) seat, player data per player, flow per game, active participant."""
    game = await make_game(conn)
    player = await make_player(conn, game, "dev-1", "Ann")
    with pytest.raises(asyncpg.UniqueViolationError):
        await make_player(conn, game, "dev-1", "Other name")
    with pytest.raises(asyncpg.UniqueViolationError):
        await make_player(conn, game, "dev-2", "ANN")  # nicknames: case-insensitive
    insert_data = (
        "INSERT INTO game_player_data (player_id, player_device_id, game_id)"
        " VALUES ($1, 'dev-1', $2)"
    )
    await conn.execute(insert_data, player, game)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert_data, player, game)
    await conn.execute("INSERT INTO game_flows (game_id) VALUES ($1)", game)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute("INSERT INTO game_flows (game_id) VALUES ($1)", game)
    join = (
        "INSERT INTO room_participants (game_id, socket_id, device_id, player_id, status)"
        " VALUES ($1, $2, 'dev-1', $3, $4)"
    )
    await conn.execute(join, game, "s1", player, "active")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(join, game, "s2", player, "active")
    await conn.execute(join, game, "s0", player, "disconnected")  # history is fine
    await make_player(conn, game, "dev-h", "Host", is_host=True)
    with pytest.raises(asyncpg.UniqueViolationError):
        await make_player(conn, game, "dev-h2", "Host2", is_host=True)


async def test_defect_15_leaderboard_uses_competition_ranking(conn: asyncpg.Connection) -> None:
    game = await make_game(conn)
    for name, score in (("A", 900), ("B", 700), ("C", 700), ("D", 500), ("E", 0)):
        player = await make_player(conn, game, f"dev-{name}", name)
        await conn.execute(
            "INSERT INTO game_player_data (player_id, player_device_id, game_id, score)"
            " VALUES ($1, $2, $3, $4)",
            player,
            f"dev-{name}",
            game,
            score,
        )
    rows = await conn.fetch(
        "SELECT player_name, score, rank FROM get_game_leaderboard(game_uuid => $1)", game
    )
    assert [(r[0], r[2]) for r in rows] == [("A", 1), ("B", 2), ("C", 2), ("D", 4), ("E", 5)]


# ---------------------------------------------------------------------------------------------
# 16. mark_stale_connections without an index, leaving participants active
# ---------------------------------------------------------------------------------------------


async def test_defect_16_stale_sweep_closes_rooms_and_uses_an_index(
    conn: asyncpg.Connection,
) -> None:
    game = await make_game(conn)
    stale_player = await make_player(conn, game, "dev-stale", "Stale")
    live_player = await make_player(conn, game, "dev-live", "Live")
    await conn.execute(
        "INSERT INTO websocket_connections (socket_id, device_id, last_heartbeat) VALUES"
        " ('s-stale', 'dev-stale', now() - interval '10 minutes'), ('s-live', 'dev-live', now())"
    )
    await conn.executemany(
        "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
        " VALUES ($1, $2, $3, $4)",
        [(game, "s-stale", "dev-stale", stale_player), (game, "s-live", "dev-live", live_player)],
    )
    assert await conn.fetchval("SELECT mark_stale_connections(timeout_minutes => 5)") == 1
    rows = await conn.fetch(
        "SELECT device_id, status::text, left_at IS NOT NULL FROM room_participants ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [
        ("dev-live", "active", False),
        ("dev-stale", "timeout", True),
    ]
    conns = await conn.fetch(
        "SELECT socket_id, status::text, disconnected_at IS NOT NULL"
        " FROM websocket_connections ORDER BY 1"
    )
    assert [tuple(r) for r in conns] == [("s-live", "active", False), ("s-stale", "timeout", True)]

    # The sweep's predicate has an index the planner can use (seq scans priced out).
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = json.dumps(
            await conn.fetchval(
                "EXPLAIN (FORMAT JSON) UPDATE websocket_connections SET status = 'timeout'"
                " WHERE status = 'active' AND last_heartbeat < now() - interval '5 minutes'"
            )
        )
        assert "websocket_connections_active_heartbeat_idx" in plan
        plan = json.dumps(
            await conn.fetchval(
                "EXPLAIN (FORMAT JSON) UPDATE room_participants SET status = 'timeout'"
                " WHERE status = 'active' AND socket_id = 's' AND device_id = 'd'"
            )
        )
        assert "room_participants_active_socket_idx" in plan or "one_active_key" in plan


# ---------------------------------------------------------------------------------------------
# 17. Redundant duplicate indexes
# ---------------------------------------------------------------------------------------------


async def test_defect_17_no_duplicate_indexes(conn: asyncpg.Connection) -> None:
    """No two indexes of a table cover the same columns, expressions and predicate."""
    duplicates = await conn.fetch(
        """
        SELECT indrelid::regclass AS tbl, array_agg(indexrelid::regclass) AS indexes
          FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public'
         GROUP BY indrelid, indkey::text, indclass::text,
                  coalesce(pg_get_expr(indexprs, indrelid), ''),
                  coalesce(pg_get_expr(indpred, indrelid), '')
        HAVING count(*) > 1
        """
    )
    assert duplicates == []
    # Nor a plain index that only repeats the leading column of a unique one on game_events.
    names = {
        r[0]
        for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'device_sessions'"
        )
    }
    assert names == {
        "device_sessions_pkey",
        "device_sessions_device_id_key",
        "device_sessions_user_id_idx",
    }


# ---------------------------------------------------------------------------------------------
# Bad input to log_game_event: a clear error and nothing written
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ({"p_game_id": "unknown"}, asyncpg.ForeignKeyViolationError, "does not exist"),
        ({"p_payload": "[1, 2]"}, asyncpg.InvalidParameterValueError, "p_payload"),
        ({"p_payload": '"text"'}, asyncpg.InvalidParameterValueError, "p_payload"),
        ({"p_payload": "42"}, asyncpg.InvalidParameterValueError, "p_payload"),
        ({"p_event_type": " "}, asyncpg.InvalidParameterValueError, "p_event_type"),
        ({"p_device_id": ""}, asyncpg.InvalidParameterValueError, "p_device_id"),
        ({"p_device_id": "  "}, asyncpg.InvalidParameterValueError, "p_device_id"),
        ({"p_device_id": "d" * 10_240}, asyncpg.InvalidParameterValueError, "p_device_id"),
        ({"p_player_id": "unknown"}, asyncpg.ForeignKeyViolationError, "p_player_id"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_log_game_event_bad_input(
    conn: asyncpg.Connection, args: dict[str, str], error: type[Exception], message: str
) -> None:
    game = await make_game(conn)
    values: dict[str, object] = {"p_game_id": game, "p_payload": "{}"} | args
    if values["p_game_id"] == "unknown":
        values["p_game_id"] = uuid4()
    if values.get("p_player_id") == "unknown":
        values["p_player_id"] = uuid4()
    casts = {"p_game_id": "uuid", "p_payload": "text", "p_player_id": "uuid"}
    named = ", ".join(
        f"{k} => ${i + 1}::{casts.get(k, 'text')}" + ("::jsonb" if k == "p_payload" else "")
        for i, k in enumerate(values)
    )
    with pytest.raises(error, match=message):
        await conn.execute(f"SELECT log_game_event({named})", *values.values())
    assert await conn.fetchval("SELECT count(*) FROM game_events") == 0
    assert await conn.fetchval("SELECT count(*) FROM game_event_counters") == 0
