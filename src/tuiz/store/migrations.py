"""Apply `supabase/migrations/*.sql` to any PostgreSQL >= 14, the way `supabase db push` would.

History lives in `tuiz_meta.schema_migrations` with a checksum per file, so an applied file that
was edited afterwards is refused instead of silently diverging. A session advisory lock makes
concurrent runners queue; each file runs in its own transaction.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tuiz.store.db import Conn

_LOCK_KEY = 0x7475697A  # "tuiz"
_FILE_RE = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_]+)\.sql$")

_HISTORY_DDL = """
CREATE SCHEMA IF NOT EXISTS tuiz_meta;
CREATE TABLE IF NOT EXISTS tuiz_meta.schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL
);
"""


class MigrationError(Exception):
    """A migration cannot be applied or reverted as asked; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    down_path: Path | None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    version: str
    name: str
    state: str  # applied | pending | edited | missing


def default_migrations_dir() -> Path:
    """The repo's `supabase/migrations`, or the copy bundled in an installed wheel."""
    here = Path(__file__).resolve()
    repo = here.parents[3] / "supabase" / "migrations"
    if repo.is_dir():
        return repo
    return here.parents[1] / "_migrations"


def discover(directory: Path | None = None) -> list[Migration]:
    """Up files in version order, each with its `down/<version>_<name>.down.sql` when present."""
    directory = directory or default_migrations_dir()
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: not a migration file name (<14 digits>_<name>.sql)")
        down = directory / "down" / f"{path.stem}.down.sql"
        found.append(
            Migration(match["version"], match["name"], path, down if down.is_file() else None)
        )
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError("two migration files share one version")
    return found


async def _applied(conn: Conn) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT version, name, checksum FROM tuiz_meta.schema_migrations ORDER BY version"
    )
    return {r["version"]: r for r in rows}


def _check_unedited(migrations: list[Migration], applied: dict[str, asyncpg.Record]) -> None:
    for m in migrations:
        row = applied.get(m.version)
        if row is not None and row["checksum"] != m.checksum:
            raise MigrationError(
                f"migration {m.path.name} was edited after it was applied "
                f"(checksum {row['checksum'][:12]} applied, {m.checksum[:12]} on disk); "
                "restore it and add a new migration instead"
            )


class _Locked:
    """One connection holding the runner's advisory lock for the whole run."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self._dsn)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
            await conn.execute(_HISTORY_DDL)
        except BaseException:
            await conn.close()
            raise
        self.conn = conn
        return conn

    async def __aexit__(self, *exc: object) -> None:
        assert self.conn is not None
        try:
            await self.conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        finally:
            await self.conn.close()


async def upgrade(
    dsn: str, *, to: str | None = None, directory: Path | None = None
) -> list[Migration]:
    """Apply pending migrations up to `to` (all when None); returns what was applied."""
    migrations = discover(directory)
    done: list[Migration] = []
    async with _Locked(dsn) as conn:
        applied = await _applied(conn)
        _check_unedited(migrations, applied)
        for m in migrations:
            if m.version in applied:
                continue
            if to is not None and m.version > to:
                break
            started = time.perf_counter()
            try:
                async with conn.transaction():
                    await conn.execute(m.path.read_text(encoding="utf-8"))
                    await conn.execute(
                        "INSERT INTO tuiz_meta.schema_migrations"
                        " (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
                        m.version,
                        m.name,
                        m.checksum,
                        int((time.perf_counter() - started) * 1000),
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.path.name} failed: {exc}") from exc
            done.append(m)
    return done


async def downgrade(
    dsn: str, *, to: str | None = None, directory: Path | None = None
) -> list[Migration]:
    """Revert applied migrations newer than `to` (`"0"` reverts all; None reverts the last one)."""
    migrations = {m.version: m for m in discover(directory)}
    done: list[Migration] = []
    async with _Locked(dsn) as conn:
        applied = await _applied(conn)
        _check_unedited(list(migrations.values()), applied)
        versions = sorted(applied, reverse=True)
        targets = versions[:1] if to is None else [v for v in versions if v > to]
        for version in targets:
            m = migrations.get(version)
            if m is None or m.down_path is None:
                raise MigrationError(f"no down file for applied migration {version}")
            try:
                async with conn.transaction():
                    await conn.execute(m.down_path.read_text(encoding="utf-8"))
                    await conn.execute(
                        "DELETE FROM tuiz_meta.schema_migrations WHERE version = $1", version
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.down_path.name} failed: {exc}") from exc
            done.append(m)
    return done


async def status(dsn: str, *, directory: Path | None = None) -> list[MigrationStatus]:
    """Every known migration with its state; `edited` means the file changed after applying."""
    migrations = discover(directory)
    async with _Locked(dsn) as conn:
        applied = await _applied(conn)
    out: list[MigrationStatus] = []
    on_disk = {m.version for m in migrations}
    for m in migrations:
        row = applied.get(m.version)
        if row is None:
            state = "pending"
        elif row["checksum"] != m.checksum:
            state = "edited"
        else:
            state = "applied"
        out.append(MigrationStatus(m.version, m.name, state))
    for version, row in applied.items():
        if version not in on_disk:
            out.append(MigrationStatus(version, row["name"], "missing"))
    return sorted(out, key=lambda s: s.version)


async def is_current(
    dsn_or_conn: str | Conn,
    directory: Path | None = None,
) -> bool:
    """True when every migration on disk is applied unedited (what `/ready` checks)."""
    migrations = discover(directory)
    conn = await asyncpg.connect(dsn_or_conn) if isinstance(dsn_or_conn, str) else dsn_or_conn
    try:
        exists = await conn.fetchval("SELECT to_regclass('tuiz_meta.schema_migrations')")
        if exists is None:
            return not migrations
        applied = await _applied(conn)
    finally:
        if isinstance(dsn_or_conn, str):
            await conn.close()
    return all(
        m.version in applied and applied[m.version]["checksum"] == m.checksum for m in migrations
    )
