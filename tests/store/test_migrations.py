"""The migration runner: up, down, up again; history and checksums; concurrent runners."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from tests.factories import make_game, make_player
from tuiz.store import migrations


async def _user_objects(url: str) -> set[str]:
    """Tables, views, types and functions in public (what `down to empty` must remove)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """
            SELECT 'table:' || c.relname AS name FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
            UNION ALL
            SELECT 'type:' || t.typname FROM pg_type t
              JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')
               AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)
            UNION ALL
            SELECT 'function:' || p.proname FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname IN ('public', 'auth')
            """
        )
    finally:
        await conn.close()
    return {r["name"] for r in rows}


async def test_up_down_up(empty_db_url: str) -> None:
    on_disk = migrations.discover()
    assert on_disk, "no migration files found"
    applied = await migrations.upgrade(empty_db_url)
    assert [m.version for m in applied] == [m.version for m in on_disk]
    full = await _user_objects(empty_db_url)
    assert full

    reverted = await migrations.downgrade(empty_db_url, to="0")
    assert [m.version for m in reverted] == [m.version for m in reversed(on_disk)]
    assert await _user_objects(empty_db_url) == set()
    assert all(s.state == "pending" for s in await migrations.status(empty_db_url))

    await migrations.upgrade(empty_db_url)
    assert await _user_objects(empty_db_url) == full
    assert await migrations.is_current(empty_db_url)


async def test_upgrade_is_idempotent(db_url: str) -> None:
    assert await migrations.upgrade(db_url) == []
    states = await migrations.status(db_url)
    assert {s.state for s in states} == {"applied"}


async def test_downgrade_one_step_then_upgrade(db_url: str) -> None:
    last = migrations.discover()[-1]
    reverted = await migrations.downgrade(db_url)
    assert [m.version for m in reverted] == [last.version]
    assert not await migrations.is_current(db_url)
    assert [m.version for m in await migrations.upgrade(db_url)] == [last.version]


async def test_edited_applied_file_is_refused(db_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations.default_migrations_dir(), copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(migrations.MigrationError, match="edited after it was applied"):
        await migrations.upgrade(db_url, directory=copy)
    states = {s.version: s.state for s in await migrations.status(db_url, directory=copy)}
    assert states[first.name[:14]] == "edited"


async def test_concurrent_runners_apply_each_file_once(empty_db_url: str) -> None:
    results = await asyncio.gather(*(migrations.upgrade(empty_db_url) for _ in range(3)))
    applied = [m.version for batch in results for m in batch]
    assert sorted(applied) == [m.version for m in migrations.discover()]
    conn = await asyncpg.connect(empty_db_url)
    try:
        count = await conn.fetchval("SELECT count(*) FROM tuiz_meta.schema_migrations")
    finally:
        await conn.close()
    assert count == len(migrations.discover())


async def test_failed_file_leaves_nothing_behind(empty_db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "migrations"
    bad.mkdir()
    (bad / "20990101000000_ok.sql").write_text("CREATE TABLE public.ok_table (id int);")
    (bad / "20990101000001_bad.sql").write_text(
        "CREATE TABLE public.half_done (id int); SELECT * FROM no_such_table;"
    )
    with pytest.raises(migrations.MigrationError, match=r"20990101000001_bad\.sql failed"):
        await migrations.upgrade(empty_db_url, directory=bad)
    objects = await _user_objects(empty_db_url)
    assert "table:ok_table" in objects
    assert "table:half_done" not in objects
    states = {s.version: s.state for s in await migrations.status(empty_db_url, directory=bad)}
    assert states == {"20990101000000": "applied", "20990101000001": "pending"}


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "create_things.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="not a migration file name"):
        migrations.discover(tmp_path)


async def test_statistics_that_cannot_be_cleared_are_not_frozen(db_url: str) -> None:
    """20251208000000 turns statistics off on four live-table columns and clears the old ones
    where its role may. Where it may not (no superuser, PostgreSQL < 18), ANALYZE would never
    refresh them again; 20251208000200 hands such a column back to ANALYZE. Played here as a
    superuser: statistics kept on one column as a non-superuser's migration would have."""
    target = "SELECT attstattarget FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2"
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval(target, "public.room_participants", "status") == 0
        game = await make_game(conn)
        player = await make_player(conn, game, "dev-1", "P1")
        await conn.execute(
            "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
            " VALUES ($1, 's-1', 'dev-1', $2)",
            game,
            player,
        )
        await conn.execute("ALTER TABLE room_participants ALTER COLUMN status SET STATISTICS -1")
        await conn.execute("ANALYZE room_participants")
        await conn.execute("ALTER TABLE room_participants ALTER COLUMN status SET STATISTICS 0")
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'room_participants'"
            " AND attname = 'status'"
        )
        sql = next(m for m in migrations.discover() if m.version == "20251208000200").path
        await conn.execute(sql.read_text())
        assert await conn.fetchval(target, "public.room_participants", "status") in (-1, None)
        assert await conn.fetchval(target, "public.room_participants", "game_id") == 0
        assert await conn.fetchval(target, "public.players", "game_id") == 0
    finally:
        await conn.close()
