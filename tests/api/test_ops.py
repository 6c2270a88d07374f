"""Operations endpoints against a real server process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx

from tests.servers import run_server


def test_health_ready_metrics_and_sigterm(db_url: str, tmp_path: Path) -> None:
    with run_server(db_url, tmp_path) as server:
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "database": "ok",
            "migrations": "ok",
            "live_database": "ok",
            "event_log": "ok",
        }
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "tuiz_socket_connections" in metrics
        for name in (
            "tuiz_event_loop_lag_seconds",
            "tuiz_game_events_written_total",
            "tuiz_game_events_queued",
            "tuiz_db_write_seconds_bucket",
            "tuiz_live_games",
            "tuiz_redis_up",
        ):
            assert name in metrics, name
        openapi = httpx.get(f"{server.url}/openapi.json").json()
        assert "/health" in openapi["paths"]
        # uvicorn re-raises the SIGTERM after a graceful shutdown, as a process manager expects.
        assert server.terminate() in (0, -15)
        assert "Application shutdown complete" in server.log()


async def _pretend_last_migration_edited(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE tuiz_meta.schema_migrations SET checksum = 'edited'"
            " WHERE version = (SELECT max(version) FROM tuiz_meta.schema_migrations)"
        )
    finally:
        await conn.close()


def test_ready_reports_pending_migrations(db_url: str, tmp_path: Path) -> None:
    with run_server(db_url, tmp_path) as server:
        asyncio.run(_pretend_last_migration_edited(db_url))
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["migrations"] == "pending"


def test_unknown_routes_and_methods_answer_in_our_error_shape(db_url: str, tmp_path: Path) -> None:
    """The framework's own refusals carry a stable code like every other error."""
    with run_server(db_url, tmp_path) as server:
        missing = httpx.get(f"{server.url}/no/such/route")
        assert missing.status_code == 404
        assert missing.json()["error"] == "NOT_FOUND"
        wrong = httpx.delete(f"{server.url}/health")
        assert wrong.status_code == 405
        assert wrong.json()["error"] == "METHOD_NOT_ALLOWED"
        assert "GET" in wrong.headers["allow"]
