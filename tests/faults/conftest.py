"""Fixtures of the fault tests: a PostgreSQL of the test's own, to stop and freeze."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.pgproc import PostgresProcess
from tuiz.store import migrations
from tuiz.store.embedded import ensure_database


@pytest.fixture
async def own_postgres() -> AsyncIterator[tuple[PostgresProcess, str]]:
    """A private PostgreSQL (never the shared test server) with a migrated `tuiz` database.

    Its data lives outside pytest's tmp_path: PostgreSQL runs as another user when we are root,
    and every pytest session (other worktrees' too) resets pytest-of-<user> to mode 0700.
    """
    with tempfile.TemporaryDirectory(prefix="tuiz-pgfault-") as workdir:
        pg = PostgresProcess(Path(workdir))
        await asyncio.to_thread(pg.start)
        try:
            url = await ensure_database(pg.url, "tuiz")
            await migrations.upgrade(url)
            yield pg, url
        finally:
            await asyncio.to_thread(pg.destroy)
