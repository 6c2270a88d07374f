"""The seed's "Migration Rollback" SQL runs as written against our schema, and down files work."""

from __future__ import annotations

import asyncpg

from tests.factories import make_game, make_player
from tuiz.store import migrations

# Verbatim from websocket-system-migration-summary.md, "Migration Rollback".
SEED_ROLLBACK = """
-- Drop new tables (cascades to foreign keys)
DROP TABLE IF EXISTS public.room_participants CASCADE;
DROP TABLE IF EXISTS public.game_events CASCADE;
DROP TABLE IF EXISTS public.device_sessions CASCADE;
DROP TABLE IF EXISTS public.websocket_connections CASCADE;

-- Drop custom type
DROP TYPE IF EXISTS connection_status CASCADE;

-- Drop helper functions
DROP FUNCTION IF EXISTS public.get_device_reconnect_count CASCADE;
DROP FUNCTION IF EXISTS public.get_active_connections_count CASCADE;
DROP FUNCTION IF EXISTS public.update_device_session CASCADE;
DROP FUNCTION IF EXISTS public.record_reconnection CASCADE;
DROP FUNCTION IF EXISTS public.log_game_event CASCADE;
DROP FUNCTION IF EXISTS public.get_game_event_sequence CASCADE;
DROP FUNCTION IF EXISTS public.get_daily_connection_stats CASCADE;
DROP FUNCTION IF EXISTS public.get_game_completion_stats CASCADE;
DROP FUNCTION IF EXISTS public.cleanup_old_websocket_connections CASCADE;
DROP FUNCTION IF EXISTS public.mark_stale_connections CASCADE;
DROP FUNCTION IF EXISTS public.auto_update_device_session CASCADE;
DROP FUNCTION IF EXISTS public.auto_record_reconnection CASCADE;
"""

SEED_FUNCTIONS = (
    "get_device_reconnect_count",
    "get_active_connections_count",
    "update_device_session",
    "record_reconnection",
    "log_game_event",
    "get_game_event_sequence",
    "get_daily_connection_stats",
    "get_game_completion_stats",
    "cleanup_old_websocket_connections",
    "mark_stale_connections",
    "auto_update_device_session",
    "auto_record_reconnection",
)


async def test_seed_rollback_runs_cleanly_on_live_data(conn: asyncpg.Connection) -> None:
    """With data in every table, the seed's rollback removes the WebSocket system, nothing more."""
    game = await make_game(conn)
    player = await make_player(conn, game, "dev-1", "P1")
    await conn.execute(
        "INSERT INTO websocket_connections (socket_id, device_id) VALUES ('s', 'dev-1')"
    )
    await conn.execute("SELECT log_game_event(p_game_id => $1, p_player_id => $2)", game, player)
    await conn.execute(
        "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
        " VALUES ($1, 's', 'dev-1', $2)",
        game,
        player,
    )

    async with conn.transaction():
        await conn.execute(SEED_ROLLBACK)

    left = await conn.fetch(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        " AND proname = ANY ($1::text[])",
        list(SEED_FUNCTIONS),
    )
    assert left == []
    for table in ("room_participants", "game_events", "device_sessions", "websocket_connections"):
        assert await conn.fetchval("SELECT to_regclass($1)", f"public.{table}") is None
    assert await conn.fetchval("SELECT to_regtype('public.connection_status')") is None
    # The game system it hangs on is untouched.
    assert await conn.fetchval("SELECT count(*) FROM players WHERE game_id = $1", game) == 1


async def test_down_files_complete_after_seed_rollback(db_url: str) -> None:
    """Our own down files still run after the seed's rollback, then everything applies again."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(SEED_ROLLBACK)
    finally:
        await conn.close()
    reverted = await migrations.downgrade(db_url, to="0")
    assert len(reverted) == len(migrations.discover())
    await migrations.upgrade(db_url)
    assert await migrations.is_current(db_url)
