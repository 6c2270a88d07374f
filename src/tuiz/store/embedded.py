"""A private PostgreSQL from the `pgserver` package, for when no DATABASE_URL is given.

It is a real server (PostgreSQL 16) with its data under a local folder, so every code path is
the same as against a managed database; only how we obtain the URL differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

DATABASE = "tuiz"


class EmbeddedPostgres:
    """Start (or attach to) a pgserver instance in `data_dir`, stopped again by `stop()`."""

    def __init__(self, data_dir: Path, *, cleanup: str = "stop") -> None:
        self.data_dir = data_dir.resolve()
        self._cleanup = cleanup
        self._server: Any = None

    def start(self) -> str:
        """Start the server and return a superuser URL of its maintenance database."""
        from pgserver import get_server  # type: ignore[attr-defined]  # heavy, only when needed

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode=self._cleanup)
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def database_url(server_url: str, database: str) -> str:
    """The same server URL pointing at another database (keeps `?host=` socket paths)."""
    head, sep, query = server_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


async def ensure_database(server_url: str, database: str) -> str:
    """Create `database` when missing; returns its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return database_url(server_url, database)
