"""Maintenance jobs on real PostgreSQL: sweep, retention, one runner at a time, CLI, server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.factories import make_game, make_player
from tests.servers import run_server
from tests.sioclient import Recorder, eventually
from tuiz.config import Settings
from tuiz.jobs import maintenance
from tuiz.store.db import create_pool


async def _connection(
    conn: asyncpg.Connection, socket_id: str, device_id: str, *, silent: str, status: str = "active"
) -> None:
    await conn.execute(
        """
        INSERT INTO websocket_connections (socket_id, device_id, status, last_heartbeat,
                                           connected_at)
        VALUES ($1, $2, $3::connection_status, now() - $4::text::interval,
                now() - $4::text::interval)
        """,
        socket_id,
        device_id,
        status,
        silent,
    )


async def test_stale_sweep_times_out_silent_connections_and_their_rooms(
    conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    game = await make_game(conn)
    player = await make_player(conn, game, "dev-stale", "Stale")
    await _connection(conn, "s-stale", "dev-stale", silent="2 minutes")
    await _connection(conn, "s-live", "dev-live", silent="1 second")
    await conn.execute(
        "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
        " VALUES ($1, 's-stale', 'dev-stale', $2)",
        game,
        player,
    )
    settings = Settings(TUIZ_HEARTBEAT_TIMEOUT_MS=60_000)  # type: ignore[call-arg]
    result = await maintenance.run_job(maintenance.JOBS["stale-sweep"], pool, settings)
    assert result.ran and result.affected == {"connections": 1}
    rows = await conn.fetch("SELECT socket_id, status::text FROM websocket_connections ORDER BY 1")
    assert [tuple(r) for r in rows] == [("s-live", "active"), ("s-stale", "timeout")]
    assert await conn.fetchval("SELECT status::text FROM room_participants") == "timeout"


async def test_retention_deletes_only_old_ended_connections(
    conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    await _connection(conn, "old-ended", "dev-1", silent="40 days", status="disconnected")
    await _connection(conn, "old-timeout", "dev-2", silent="40 days", status="timeout")
    await _connection(conn, "old-active", "dev-3", silent="40 days")
    await _connection(conn, "recent-ended", "dev-4", silent="1 day", status="disconnected")
    settings = Settings(TUIZ_RETENTION_DAYS=30)  # type: ignore[call-arg]
    result = await maintenance.run_job(maintenance.JOBS["retention"], pool, settings)
    assert result.affected == {"connections": 2, "events": 0}
    left = await conn.fetch("SELECT socket_id FROM websocket_connections ORDER BY 1")
    assert [r[0] for r in left] == ["old-active", "recent-ended"]


async def test_a_job_running_elsewhere_is_skipped(
    conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    job = maintenance.JOBS["stale-sweep"]
    await _connection(conn, "s-stale", "dev-stale", silent="2 hours")
    await conn.execute("SELECT pg_advisory_lock($1)", job.lock_key)  # another leader holds it
    try:
        result = await maintenance.run_job(job, pool, Settings())
        assert not result.ran
        assert await conn.fetchval("SELECT status::text FROM websocket_connections") == "active"
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", job.lock_key)
    assert (await maintenance.run_job(job, pool, Settings())).ran


async def test_concurrent_runners_never_overlap(db_url: str, pool: asyncpg.Pool) -> None:
    """Many simultaneous runs: each either ran alone or skipped; at least one ran."""
    job = maintenance.JOBS["retention"]
    pools = [await create_pool(db_url, max_size=2) for _ in range(4)]
    try:
        results = await asyncio.gather(*(maintenance.run_job(job, p, Settings()) for p in pools))
    finally:
        await asyncio.gather(*(p.close() for p in pools))
    assert any(r.ran for r in results)
    assert await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuiz.cli", "jobs", "run-once", *args],
        env={**os.environ, "DATABASE_URL": db_url, "TUIZ_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_run_once(conn: asyncpg.Connection, db_url: str) -> None:
    await _connection(conn, "s-stale", "dev-stale", silent="2 hours")
    done = await asyncio.to_thread(_cli, db_url)
    assert done.returncode == 0, done.stderr
    assert "stale-sweep: ran connections=1" in done.stdout
    assert "retention: ran" in done.stdout
    assert await conn.fetchval("SELECT status::text FROM websocket_connections") == "timeout"

    bad = await asyncio.to_thread(_cli, db_url, "--job", "nope")
    assert bad.returncode == 2 and "unknown job" in bad.stderr

    await conn.execute("SELECT pg_advisory_lock($1)", maintenance.JOBS["retention"].lock_key)
    try:
        held = await asyncio.to_thread(_cli, db_url, "--job", "retention")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", maintenance.JOBS["retention"].lock_key)
    assert "retention: skipped (running elsewhere)" in held.stdout


async def test_server_drops_silent_sockets_and_sweeps_dead_rows(
    conn: asyncpg.Connection, db_url: str, tmp_path: Path
) -> None:
    """A socket that stops heartbeating is timed out; so is a row left by a crashed process."""
    await _connection(conn, "from-a-dead-process", "dev-ghost", silent="1 hour")
    with run_server(
        db_url, tmp_path, TUIZ_HEARTBEAT_TIMEOUT_MS="1500", TUIZ_HEARTBEAT_FLUSH_MS="200"
    ) as server:
        client = Recorder(server.url)
        await client.connect()
        try:
            await client.register("dev-quiet")
            await asyncio.wait_for(client.disconnected.wait(), 15)
        finally:
            await client.close()

        async def both_timed_out() -> bool:
            rows = await conn.fetch(
                "SELECT status::text FROM websocket_connections"
                " WHERE device_id IN ('dev-quiet', 'dev-ghost')"
            )
            return [r[0] for r in rows] == ["timeout", "timeout"]

        assert await eventually(both_timed_out)
