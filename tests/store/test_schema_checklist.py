"""The seed's Testing Checklist (websocket-system-migration-summary.md), item by item."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from tests.factories import acting_as, make_game, make_player, make_user
from tuiz.store import migrations

SEED_TABLES = ("websocket_connections", "device_sessions", "game_events", "room_participants")

# Every column the seed (and the TUIZ client) relies on.
SEED_COLUMNS = {
    "websocket_connections": {
        "id", "socket_id", "device_id", "user_id", "connected_at", "disconnected_at",
        "last_heartbeat", "reconnect_count", "ip_address", "user_agent", "metadata", "status",
    },
    "device_sessions": {
        "id", "device_id", "user_id", "first_seen", "last_seen", "total_connections",
        "total_reconnections", "browser_fingerprint", "metadata",
    },
    "game_events": {
        "id", "game_id", "event_type", "socket_id", "device_id", "player_id", "user_id",
        "timestamp", "action", "payload", "sequence_number",
    },
    "room_participants": {
        "id", "game_id", "socket_id", "device_id", "player_id", "user_id", "joined_at",
        "left_at", "role", "status", "metadata",
    },
    "games": {
        "id", "quiz_set_id", "game_code", "current_players", "status", "current_question_index",
        "current_question_start_time", "game_settings", "locked", "created_at", "updated_at",
        "started_at", "paused_at", "resumed_at", "ended_at", "user_id",
    },
    "players": {
        "id", "device_id", "game_id", "player_name", "is_logged_in", "is_host", "created_at",
        "updated_at",
    },
    "game_flows": {
        "id", "game_id", "quiz_set_id", "total_questions", "current_question_id",
        "next_question_id", "current_question_index", "current_question_start_time",
        "current_question_end_time", "created_at", "updated_at",
    },
    "game_player_data": {
        "id", "player_id", "player_device_id", "game_id", "score", "answer_report",
        "created_at", "updated_at",
    },
    "quiz_sets": {
        "id", "user_id", "title", "description", "thumbnail_url", "is_public",
        "difficulty_level", "category", "total_questions", "times_played", "status", "tags",
        "play_settings", "cloned_from", "last_played_at", "created_at", "updated_at",
        "deleted_at",
    },
    "questions": {
        "id", "question_set_id", "question_text", "question_type", "image_url",
        "show_question_time", "answering_time", "show_explanation_time", "points",
        "difficulty", "order_index", "explanation_title", "explanation_text",
        "explanation_image_url", "accepted_answers", "created_at", "updated_at", "deleted_at",
    },
    "answers": {
        "id", "question_id", "answer_text", "image_url", "is_correct", "order_index",
        "created_at", "updated_at", "deleted_at",
    },
}  # fmt: skip

# (table, column) -> (referenced table, ON DELETE action)
SEED_FOREIGN_KEYS = {
    ("websocket_connections", "user_id"): ("auth.users", "SET NULL"),
    ("device_sessions", "user_id"): ("auth.users", "SET NULL"),
    ("game_events", "game_id"): ("games", "CASCADE"),
    ("game_events", "player_id"): ("players", "SET NULL"),
    ("room_participants", "game_id"): ("games", "CASCADE"),
    ("room_participants", "player_id"): ("players", "CASCADE"),
    ("room_participants", "user_id"): ("auth.users", "SET NULL"),
}

# index -> the query it serves (the seed's list, minus duplicates and unused ones).
SEED_INDEXES = {
    "websocket_connections_device_id_idx": "a device's connections",
    "websocket_connections_user_id_idx": "a user's connections (RLS, FK)",
    "websocket_connections_socket_id_idx": "heartbeat/disconnect by socket",
    "websocket_connections_connected_at_idx": "retention cleanup, daily stats",
    "websocket_connections_active_heartbeat_idx": "stale sweep, active count",
    "device_sessions_device_id_key": "one session per device",
    "device_sessions_user_id_idx": "a user's devices",
    "game_events_game_sequence_key": "unique gapless seq, ordered replay",
    "game_events_player_id_idx": "a player's actions, FK",
    "room_participants_one_active_key": "one active participant per device and game",
    "room_participants_game_id_idx": "room members, FK",
    "room_participants_device_id_idx": "a device's rooms",
    "room_participants_player_id_idx": "FK from players",
    "room_participants_active_socket_idx": "disconnect and stale sweep",
    "room_participants_user_id_idx": "FK from auth.users",
}


async def test_migration_applies_without_errors(db_url: str) -> None:
    states = await migrations.status(db_url)
    assert states and {s.state for s in states} == {"applied"}


async def test_all_tables_created_with_correct_schema(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
    )
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    for table, expected in SEED_COLUMNS.items():
        assert expected <= columns.get(table, set()), table
    enum = await conn.fetch("SELECT unnest(enum_range(NULL::public.connection_status))::text")
    assert [r[0] for r in enum] == ["active", "disconnected", "timeout"]


async def test_foreign_keys_established(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        """
        SELECT c.conrelid::regclass::text AS tbl, a.attname AS col,
               c.confrelid::regclass::text AS ref,
               CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'
                    WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END AS on_delete
          FROM pg_constraint c
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
         WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY ($1::text[])
        """,
        list(SEED_TABLES),
    )
    assert {(r["tbl"], r["col"]): (r["ref"], r["on_delete"]) for r in rows} == SEED_FOREIGN_KEYS


async def test_indexes_created(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
        " AND tablename = ANY ($1::text[]) AND indexname NOT LIKE '%_pkey'",
        list(SEED_TABLES),
    )
    assert {r[0] for r in rows} == set(SEED_INDEXES)


async def test_rls_policies_active(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT relname, relrowsecurity FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
    )
    assert rows and all(r["relrowsecurity"] for r in rows), [r[0] for r in rows]
    policies = await conn.fetch(
        "SELECT tablename FROM pg_policies WHERE schemaname = 'public'"
        " AND tablename = ANY ($1::text[])",
        list(SEED_TABLES),
    )
    # game_events has RLS on and no client policy: the raw log is the server's (issue 10).
    assert {r[0] for r in policies} == set(SEED_TABLES) - {"game_events"}


async def test_helper_functions_executable_by_service_role(conn: asyncpg.Connection) -> None:
    """Every seed function, called as the server calls it (named arguments), succeeds."""
    game = await make_game(conn)
    player = await make_player(conn, game, "test_device_123", "P1")
    async with acting_as(conn, "service_role"):
        assert await conn.fetchval("SELECT public.get_active_connections_count()") == 0
        session = await conn.fetchval(
            "SELECT public.update_device_session('test_device_123', NULL, NULL, '{}'::jsonb)"
        )
        assert session is not None
        await conn.execute("SELECT public.record_reconnection(p_device_id => 'test_device_123')")
        assert (
            await conn.fetchval(
                "SELECT public.get_device_reconnect_count(p_device_id => 'test_device_123')"
            )
            == 1
        )
        await conn.fetchval(
            'SELECT public.log_game_event(p_game_id => $1, p_payload => \'{"test": "data"}\')',
            game,
        )
        await conn.fetchval(
            "SELECT public.log_game_event($1, 'test_event', 'test_action',"
            ' NULL, NULL, NULL, NULL, \'{"test": "data"}\'::jsonb)',
            game,
        )
        await conn.fetchval(
            "SELECT public.log_game_event(p_game_id => $1, p_event_type => 'answer',"
            " p_action => 'submit', p_socket_id => 'sock1', p_device_id => 'test_device_123',"
            " p_player_id => $2, p_user_id => NULL, p_payload => '{}')",
            game,
            player,
        )
        replay = await conn.fetch(
            "SELECT * FROM public.get_game_event_sequence(p_game_id => $1)", game
        )
        assert [r["sequence_number"] for r in replay] == [1, 2, 3]
        assert replay[0]["payload"] == {"test": "data"}
        assert [r["event_type"] for r in replay] == ["game_event", "test_event", "answer"]
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM public.get_daily_connection_stats(days_back => 30)"
            )
            == 0
        )
        assert await conn.fetchval("SELECT count(*) FROM public.get_game_completion_stats()") == 1
        assert (
            await conn.fetchval("SELECT public.cleanup_old_websocket_connections(days_old => 30)")
            == 0
        )
        assert (
            await conn.fetchval("SELECT public.mark_stale_connections(timeout_minutes => 5)") == 0
        )


async def test_helper_functions_not_executable_by_clients(conn: asyncpg.Connection) -> None:
    for role in ("anon", "authenticated"):
        async with acting_as(conn, role):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("SELECT public.get_active_connections_count()")


async def test_triggers_working(conn: asyncpg.Connection) -> None:
    """A connection row updates its device session (trigger_auto_update_device_session et al.)."""
    triggers = await conn.fetch(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.websocket_connections'::regclass"
        " AND NOT tgisinternal"
    )
    assert {r[0] for r in triggers} == {
        "trigger_auto_update_device_session",
        "trigger_auto_record_reconnection",
    }
    user = await make_user(conn)
    async with acting_as(conn, "service_role"):
        for socket in ("s1", "s2", "s3"):
            await conn.execute(
                "INSERT INTO websocket_connections (socket_id, device_id, user_id)"
                " VALUES ($1, 'dev-1', $2)",
                socket,
                user,
            )
        row = await conn.fetchrow("SELECT * FROM device_sessions WHERE device_id = 'dev-1'")
        assert (row["total_connections"], row["total_reconnections"]) == (3, 2)
        assert row["user_id"] == user


async def test_service_role_has_full_access(conn: asyncpg.Connection) -> None:
    """Insert, read, update and delete on each seed table (the log: no update, by design)."""
    game = await make_game(conn)
    player = await make_player(conn, game, "dev-1", "P1")
    async with acting_as(conn, "service_role"):
        await conn.execute(
            "INSERT INTO websocket_connections (socket_id, device_id) VALUES ('s1', 'dev-1')"
        )
        await conn.execute("INSERT INTO device_sessions (device_id) VALUES ('dev-2')")
        await conn.execute(
            "INSERT INTO game_events (game_id, event_type, action, sequence_number)"
            " VALUES ($1, 'e', 'a', 1)",
            game,
        )
        await conn.execute(
            "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
            " VALUES ($1, 's1', 'dev-1', $2)",
            game,
            player,
        )
        for table, change in (
            ("websocket_connections", "status = 'disconnected'"),
            ("device_sessions", "last_seen = now()"),
            ("room_participants", "status = 'disconnected', left_at = now()"),
        ):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") >= 1
            assert await conn.execute(f"UPDATE {table} SET {change}") != "UPDATE 0"
        for table in (*SEED_TABLES, "games", "players", "game_flows", "game_player_data"):
            await conn.execute(f"DELETE FROM {table}")
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_user_policies_restrict(conn: asyncpg.Connection) -> None:
    """Users see their own connections and sessions, nobody else's; a guest's claimed device id
    reads none (anon holds no privilege on them)."""
    alice, bob = await make_user(conn), await make_user(conn)
    await conn.executemany(
        "INSERT INTO websocket_connections (socket_id, device_id, user_id) VALUES ($1, $2, $3)",
        [("s-alice", "dev-alice", alice), ("s-bob", "dev-bob", bob), ("s-guest", "dev-g", None)],
    )
    for who, kwargs, expected in (
        ("alice", {"role": "authenticated", "user": alice}, {"s-alice"}),
        ("bob", {"role": "authenticated", "user": bob}, {"s-bob"}),
    ):
        async with acting_as(conn, **kwargs):
            sockets = {
                r[0] for r in await conn.fetch("SELECT socket_id FROM websocket_connections")
            }
            assert sockets == expected, who
            devices = await conn.fetchval("SELECT count(*) FROM device_sessions")
            assert devices == len(expected), who
    for kwargs in ({"role": "anon", "device": "dev-g"}, {"role": "anon"}):
        for table in ("websocket_connections", "device_sessions"):
            async with acting_as(conn, **kwargs):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(f"SELECT id FROM {table}")


async def test_cleanup_functions_work(conn: asyncpg.Connection) -> None:
    """Old closed connections go; recent or active ones stay; stale ones time out."""
    await conn.execute(
        """
        INSERT INTO websocket_connections
               (socket_id, device_id, status, connected_at, last_heartbeat)
        SELECT socket, device, status::connection_status,
               now() - connected_ago::interval, now() - heartbeat_ago::interval
          FROM (VALUES ('old-closed', 'd1', 'disconnected', '40 days', '40 days'),
                       ('old-timeout', 'd2', 'timeout', '31 days', '31 days'),
                       ('new-closed', 'd3', 'disconnected', '2 days', '2 days'),
                       ('old-active', 'd4', 'active', '40 days', '10 minutes'),
                       ('fresh', 'd5', 'active', '0', '0'))
               v(socket, device, status, connected_ago, heartbeat_ago)
        """
    )  # fmt: skip
    async with acting_as(conn, "service_role"):
        assert await conn.fetchval("SELECT cleanup_old_websocket_connections(days_old => 30)") == 2
        assert await conn.fetchval("SELECT mark_stale_connections(timeout_minutes => 5)") == 1
        rows = await conn.fetch(
            "SELECT socket_id, status::text FROM websocket_connections ORDER BY socket_id"
        )
    assert [tuple(r) for r in rows] == [
        ("fresh", "active"),
        ("new-closed", "disconnected"),
        ("old-active", "timeout"),
    ]


async def test_analytics_functions_return_data(conn: asyncpg.Connection) -> None:
    user = await make_user(conn)
    await conn.execute(
        """
        INSERT INTO websocket_connections (socket_id, device_id, user_id, connected_at)
        VALUES ('a', 'd1', $1, now()), ('b', 'd1', $1, now()), ('c', 'd2', NULL, now()),
               ('d', 'd3', NULL, now() - interval '1 day')
        """,
        user,
    )
    for status in ("finished", "finished", "active", "waiting"):
        await make_game(conn, status=status)
    async with acting_as(conn, "service_role"):
        daily = await conn.fetch("SELECT * FROM get_daily_connection_stats(days_back => 7)")
        stats = await conn.fetchrow("SELECT * FROM get_game_completion_stats()")
    today = daily[0]
    assert (today["total_connections"], today["unique_devices"], today["unique_users"]) == (3, 2, 1)
    assert daily[1]["date"] == today["date"] - timedelta(days=1)
    assert sum(r["total_connections"] for r in daily) == 4
    assert (stats["game_type"], stats["total_games"], stats["completed_games"]) == ("quiz", 4, 2)
    assert stats["completion_rate"] == 50


SUPABASE_LIKE_AUTH = """
CREATE SCHEMA auth;
COMMENT ON SCHEMA auth IS 'Supabase auth (pre-existing)';
CREATE TABLE auth.users (id uuid PRIMARY KEY, email text, instance_id uuid);
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb $$;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT (auth.jwt() ->> 'sub')::uuid $$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT auth.jwt() ->> 'role' $$;
"""


async def _auth_objects(conn: asyncpg.Connection) -> set[tuple[str, str | None]]:
    rows = await conn.fetch(
        """
        SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS note FROM pg_class c
         WHERE c.relnamespace = 'auth'::regnamespace AND c.relkind = 'r'
        UNION ALL
        SELECT p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc') FROM pg_proc p
         WHERE p.pronamespace = 'auth'::regnamespace
        UNION ALL
        SELECT 'schema', obj_description('auth'::regnamespace, 'pg_namespace')
        """
    )
    return {(r["name"], r["note"]) for r in rows}


async def test_existing_auth_schema_is_left_untouched(empty_db_url: str) -> None:
    """On a Supabase-like database the shim adds nothing to auth, and down removes nothing."""
    conn = await asyncpg.connect(empty_db_url)
    try:
        await conn.execute(SUPABASE_LIKE_AUTH)
        before = await _auth_objects(conn)
        await migrations.upgrade(empty_db_url)
        assert await _auth_objects(conn) == before
        await migrations.downgrade(empty_db_url, to="0")
        assert await _auth_objects(conn) == before
    finally:
        await conn.close()


async def test_supabase_default_privileges_are_overridden(empty_db_url: str) -> None:
    """Supabase grants anon/authenticated ALL on new tables and functions; the files revoke it."""
    shim, *rest = migrations.discover()
    conn = await asyncpg.connect(empty_db_url)
    try:
        async with conn.transaction():
            await conn.execute(shim.path.read_text())
        await conn.execute(
            """
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
              GRANT ALL ON TABLES TO anon, authenticated, service_role;
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
              GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
            """
        )
        for migration in rest:
            async with conn.transaction():
                await conn.execute(migration.path.read_text())
        for role in ("anon", "authenticated"):
            for function in (
                "public.log_game_event(uuid,varchar,varchar,varchar,varchar,uuid,uuid,jsonb)",
                "public.mark_stale_connections(integer)",
                "public.update_device_session(varchar,uuid,varchar,jsonb)",
            ):
                assert not await conn.fetchval(
                    "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, function
                ), (role, function)
            for table, privilege in (
                ("game_events", "INSERT"),
                ("game_events", "DELETE"),
                ("game_player_data", "UPDATE"),
                ("room_participants", "DELETE"),
                ("game_event_counters", "SELECT"),
            ):
                assert not await conn.fetchval(
                    "SELECT has_table_privilege($1, $2, $3)", role, f"public.{table}", privilege
                ), (role, table, privilege)
    finally:
        await conn.execute(
            """
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
              REVOKE ALL ON TABLES FROM anon, authenticated, service_role;
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
              REVOKE ALL ON FUNCTIONS FROM anon, authenticated, service_role;
            """
        )
        await conn.close()
