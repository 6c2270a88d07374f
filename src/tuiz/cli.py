"""`tuiz` command line: serve, database migrations, maintenance and quiz content."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from tuiz.config import DEV_JWT_SECRET, MIN_JWT_SECRET_CHARS, Settings, is_loopback
from tuiz.logs import configure as configure_logs
from tuiz.store import migrations
from tuiz.store.embedded import EmbeddedPostgres, ensure_database

T = TypeVar("T")

app = typer.Typer(help="tuiz: realtime server for live quiz games.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations (supabase/migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="DATABASE_URL", help="PostgreSQL URL; embedded if unset."
    ),
]


@asynccontextmanager
async def _database(url: str | None) -> AsyncIterator[str]:
    """The given URL, or the embedded server's (started for the command, stopped after)."""
    if url:
        yield url
        return
    embedded = EmbeddedPostgres(Settings().data_dir / "pgdata")
    server_url = await asyncio.to_thread(embedded.start)
    try:
        yield await ensure_database(server_url, "tuiz")
    finally:
        await asyncio.to_thread(embedded.stop)


def _run_db(url: str | None, action: Callable[[str], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _database(url) as dsn:
            return await action(dsn)

    try:
        return asyncio.run(main())
    except migrations.MigrationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc


jobs_app = typer.Typer(help="Maintenance jobs (for cron).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("run-once")
def jobs_run_once(
    job: Annotated[
        list[str] | None, typer.Option("--job", help="stale-sweep or retention (default: all)")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the maintenance jobs once; a job already running elsewhere is skipped."""
    from tuiz.jobs import maintenance
    from tuiz.store.db import create_pool

    names = job or list(maintenance.JOBS)
    unknown = [n for n in names if n not in maintenance.JOBS]
    if unknown:
        typer.secho(f"error: unknown job {unknown[0]!r}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    settings = Settings()

    async def run(dsn: str) -> list[maintenance.JobResult]:
        pool = await create_pool(dsn, max_size=2)
        try:
            return [await maintenance.run_job(maintenance.JOBS[n], pool, settings) for n in names]
        finally:
            await pool.close()

    for result in _run_db(database_url, run):
        detail = " ".join(f"{k}={v}" for k, v in result.affected.items())
        typer.echo(
            f"{result.job}: {'ran ' + detail if result.ran else 'skipped (running elsewhere)'}"
        )


@app.command()
def replay(
    game_id: Annotated[str, typer.Argument(help="the game's id")],
    database_url: DatabaseUrl = None,
) -> None:
    """Rebuild a game from its event log alone and print its final state as JSON."""
    import json
    import uuid as uuid_mod

    from tuiz.errors import TuizError
    from tuiz.live.hub import replay as replay_game
    from tuiz.store.db import create_pool
    from tuiz.store.events import EventLog

    try:
        gid = uuid_mod.UUID(game_id)
    except ValueError:
        typer.secho(f"error: {game_id!r} is not a game id", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None

    async def run(dsn: str) -> dict[str, object]:
        pool = await create_pool(dsn, max_size=2)
        try:
            game, last_seq = await replay_game(EventLog(pool), gid)
        finally:
            await pool.close()
        return {
            "game_id": game_id,
            "last_seq": last_seq,
            "status": game.status.value,
            "phase": game.phase.value,
            "question_index": game.question_index,
            "leaderboard": game.leaderboard(),
        }

    try:
        result = _run_db(database_url, run)
    except TuizError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="TUIZ_HOST")] = None,
    port: Annotated[int | None, typer.Option(envvar="TUIZ_PORT")] = None,
    database_url: DatabaseUrl = None,
    ws: Annotated[str, typer.Option(help="uvicorn websocket implementation")] = "websockets-sansio",
) -> None:
    """Run the server (HTTP, Socket.IO, jobs); applies pending migrations first."""
    import uvicorn

    from tuiz.app import (
        create_app,
        drain_before_shutdown,
        http_protocol_for,
        shutdown_left,
        websocket_protocol_for,
    )

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["TUIZ_HOST"] = host
    if port is not None:
        overrides["TUIZ_PORT"] = port
    if database_url is not None:
        overrides["DATABASE_URL"] = database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logs(settings.log_level, settings.log_format)
    _refuse_public_secret(settings)
    app = create_app(settings)

    class DrainingServer(uvicorn.Server):
        """uvicorn that drains Socket.IO clients before it waits for connections to close,
        and says where it listens once it does (the addresses actually bound)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            for server in getattr(self, "servers", []):
                for bound in server.sockets:
                    typer.echo(f"tuiz serving on {_url(bound.getsockname())}  (API docs: /docs)")

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            try:
                await drain_before_shutdown(app.tuiz_ctx)
            except Exception as exc:  # never block the exit on the drain
                typer.echo(f"drain failed: {exc!r}", err=True)
            # Open connections get a third of what is left; the application's own shutdown
            # (log flush, database) the rest: the whole exit fits TUIZ_DRAIN_TIMEOUT_MS.
            left = shutdown_left(app.tuiz_ctx)
            self.config.timeout_graceful_shutdown = max(int(left / 3), 1)
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=http_protocol_for(app),
        ws=websocket_protocol_for(app, ws),
        # Compressing every frame costs a zlib pass per recipient of every broadcast; Node's
        # Socket.IO leaves it off by default too. Quiz messages are small.
        ws_per_message_deflate=False,
        # Engine.IO pings every socket already; a second keep-alive timer per socket is waste.
        ws_ping_interval=None,
        ws_max_size=settings.max_http_buffer_bytes,
        log_config=None,
        # Client addresses (logs, connection rows, failed-sign-in limits) follow
        # TUIZ_TRUSTED_PROXIES alone; uvicorn would otherwise believe X-Forwarded-For from
        # any loopback peer.
        proxy_headers=False,
        timeout_graceful_shutdown=max(settings.drain_timeout_ms // 3000, 1),
        lifespan="on",
    )
    DrainingServer(config).run()


def _refuse_public_secret(settings: Settings) -> None:
    """Exit (status 2, before anything binds) when others could reach a server whose JWT
    secret is public or weak: with it anyone signs service_role tokens and forges host and
    resume tokens. On loopback the development default is allowed, with a warning."""
    problem = settings.jwt_secret_problem()
    if problem is None:
        return
    if is_loopback(settings.host):
        if settings.jwt_secret == DEV_JWT_SECRET:
            typer.secho(
                "warning: using the development JWT secret; fine on this machine only",
                fg=typer.colors.YELLOW,
                err=True,
            )
        return
    typer.secho(
        f"error: refusing to serve on {settings.host}: {problem}.\n"
        "Anyone who can reach the server could sign their own service_role tokens with it.\n"
        "Set TUIZ_JWT_SECRET to your Supabase project's JWT secret, or a random one of at"
        f" least {MIN_JWT_SECRET_CHARS} characters (e.g. `openssl rand -base64 48`),"
        " or listen on 127.0.0.1 only.",
        fg=typer.colors.RED,
        err=True,
    )
    raise typer.Exit(2)


def _url(sockname: Any) -> str:
    """http://host:port for a bound socket's address (IPv6 in brackets)."""
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@db_app.command("upgrade")
def db_upgrade(
    to: Annotated[str | None, typer.Option(help="stop at this version")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Apply pending migrations."""
    applied = _run_db(database_url, lambda dsn: migrations.upgrade(dsn, to=to))
    for m in applied:
        typer.echo(f"applied {m.version}_{m.name}")
    if not applied:
        typer.echo("nothing to apply")


@db_app.command("downgrade")
def db_downgrade(
    to: Annotated[str | None, typer.Option(help="revert down to this version (0: all)")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revert the last migration, or every one newer than --to."""
    reverted = _run_db(database_url, lambda dsn: migrations.downgrade(dsn, to=to))
    for m in reverted:
        typer.echo(f"reverted {m.version}_{m.name}")
    if not reverted:
        typer.echo("nothing to revert")


@db_app.command("status")
def db_status(database_url: DatabaseUrl = None) -> None:
    """List migrations: applied, pending, edited (refused) or missing on disk."""
    for s in _run_db(database_url, migrations.status):
        typer.echo(f"{s.version}  {s.state:<8} {s.name}")


quiz_app = typer.Typer(help="Quiz content: import, export, list.", no_args_is_help=True)
app.add_typer(quiz_app, name="quiz")


def _quiz_db(url: str | None, action: Callable[[Any], Awaitable[T]]) -> T:
    """Run `action(conn)` on one connection; embedded databases are migrated first."""
    from tuiz.errors import TuizError
    from tuiz.store.db import connect

    async def run(dsn: str) -> T:
        if not url:  # the private server of a newcomer: make sure the tables exist
            await migrations.upgrade(dsn)
        conn = await connect(dsn)
        try:
            return await action(conn)
        finally:
            await conn.close()

    try:
        return _run_db(url, run)
    except TuizError as exc:
        _quiz_error(exc)


def _quiz_error(exc: Exception) -> NoReturn:
    """Print a TuizError (every invalid field of a validation error) and exit 1."""
    from tuiz.errors import ErrorCode, TuizError

    if not isinstance(exc, TuizError):
        raise exc
    typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
    if exc.code is ErrorCode.VALIDATION_ERROR:
        for e in exc.details.get("errors", [])[1:]:
            where = ".".join(str(p) for p in e["loc"])
            typer.secho(f"       {where}: {e['msg']}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1) from exc


@quiz_app.command("import")
def quiz_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="quiz JSON (v1)")],
    owner_email: Annotated[
        str,
        typer.Option(help="owner (auth.users); created on vanilla PostgreSQL when missing"),
    ] = "demo@tuiz.local",
    database_url: DatabaseUrl = None,
) -> None:
    """Import a quiz document (the format `tuiz quiz export` writes); prints the new id."""
    import json

    from tuiz.errors import TuizError
    from tuiz.store import quizzes

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.secho(f"error: {file} is not valid JSON: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    try:
        content = quizzes.parse_content(data)  # before touching the database
    except TuizError as exc:
        _quiz_error(exc)

    async def run(conn: Any) -> Any:
        async with conn.transaction():  # the owner is created only if the import succeeds
            owner = await quizzes.ensure_owner(conn, owner_email)
            return await quizzes.import_quiz(conn, owner, data)

    quiz_id = _quiz_db(database_url, run)
    count = len(content.questions)
    typer.echo(f"imported {count} question(s) for {owner_email} as {quiz_id}")


@quiz_app.command("export")
def quiz_export(
    quiz_id: Annotated[uuid.UUID, typer.Argument(help="quiz set id")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file to write (default: stdout)")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write a quiz as a version-1 JSON document (what `tuiz quiz import` reads)."""
    import json

    from tuiz.store import quizzes

    data = _quiz_db(database_url, lambda conn: quizzes.export_quiz(conn, quiz_id))
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@quiz_app.command("list")
def quiz_list(
    owner_email: Annotated[str | None, typer.Option(help="only this owner's quizzes")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Quizzes (not deleted): id, status, public, questions, owner, title."""

    async def run(conn: Any) -> list[Any]:
        rows: list[Any] = await conn.fetch(
            """
            SELECT q.id, q.status::text AS status, q.is_public, q.total_questions, u.email,
                   q.title
              FROM public.quiz_sets q LEFT JOIN auth.users u ON u.id = q.user_id
             WHERE q.deleted_at IS NULL
               AND ($1::text IS NULL OR lower(u.email) = lower($1))
             ORDER BY q.created_at, q.id
            """,
            owner_email,
        )
        return rows

    rows = _quiz_db(database_url, run)
    typer.echo(f"{'id':<36}  {'status':<9}  public  questions  {'owner':<24}  title")
    for r in rows:
        typer.echo(
            f"{r['id']!s:<36}  {r['status']:<9}  {'yes' if r['is_public'] else 'no':<6}"
            f"  {r['total_questions']:>9}  {r['email'] or '-':<24}  {r['title']}"
        )


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
