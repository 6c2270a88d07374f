"""The composition root: the one place that wires settings, database, realtime and HTTP together."""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import socketio
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from uvicorn.config import WS_PROTOCOLS
from uvicorn.importer import import_from_string

from tuiz import __version__
from tuiz.api import accounts as api_accounts
from tuiz.api import connections as api_connections
from tuiz.api import editor as api_editor
from tuiz.api import errors as api_errors
from tuiz.api import games as api_games
from tuiz.api import library as api_library
from tuiz.api import ops
from tuiz.api import quizzes as api_quizzes
from tuiz.api import sheets as api_sheets
from tuiz.api import uploads as api_uploads
from tuiz.api.targets import RefuseInvalidTargets
from tuiz.body_limit import BodyLimit, PathLimit
from tuiz.cluster.fanout import RedisFanout
from tuiz.cluster.forward import ForwardGames, GameRouter
from tuiz.cluster.limits import SharedBuckets
from tuiz.cluster.node import ClusterNode, tag_session_ids
from tuiz.config import Settings
from tuiz.context import AppContext
from tuiz.http_protocol import ReadTimeoutHttpProtocol, read_timeout_protocol
from tuiz.jobs import maintenance
from tuiz.live.hub import GameHub
from tuiz.logs import get_logger, log_failure
from tuiz.realtime import jsoncodec
from tuiz.realtime.eio_websocket import EngineIOWebSocket, websocket_protocol
from tuiz.realtime.fastemit import FastEmitManager
from tuiz.realtime.game_sockets import GameSockets, SocketPublisher
from tuiz.realtime.server import Realtime
from tuiz.realtime.socketio_server import TuizSocketIOServer
from tuiz.sheets import MAX_SHEET_BYTES
from tuiz.store import migrations
from tuiz.store.connections import ConnectionStore
from tuiz.store.connections_memory import MemoryConnectionStore
from tuiz.store.connections_pg import PgConnectionStore
from tuiz.store.db import close_pool, create_pool
from tuiz.store.embedded import EmbeddedPostgres, ensure_database
from tuiz.store.events import EventLog
from tuiz.store.events_memory import MemoryEventLog
from tuiz.store.games import GameRepository
from tuiz.store.quizzes import ensure_sample_quiz
from tuiz.store.rooms import OpenRoomDirectory, PgRoomDirectory, RoomDirectory
from tuiz.web import pages

log = get_logger(__name__)

SOCKETIO_PATH = "socket.io"  # what the TUIZ client (socket.io-client's default) connects to


async def resolve_database(ctx: AppContext) -> str:
    """DATABASE_URL when set; otherwise a private PostgreSQL under TUIZ_DATA_DIR."""
    if ctx.settings.database_url:
        return ctx.settings.database_url
    embedded = EmbeddedPostgres(ctx.settings.data_dir / "pgdata")
    server_url = await asyncio.to_thread(embedded.start)
    ctx.embedded = embedded
    log.info("embedded_postgres_started", data_dir=str(embedded.data_dir))
    return await ensure_database(server_url, "tuiz")


def tune_gc(gen0_threshold: int) -> None:
    """Fewer, cheaper garbage collections for a server holding thousands of live objects.

    Measured under a 2,000-player game: full collections of 320-430 ms each, 173 of them,
    freeing nothing (`bench/results`). Objects alive after start-up are frozen out of the
    collector's view, and the young generation is collected far less often.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


async def startup(ctx: AppContext) -> None:
    ctx.database_url = await resolve_database(ctx)
    if ctx.settings.migrate_on_start:
        applied = await migrations.upgrade(ctx.database_url)
        if applied:
            log.info("migrations_applied", versions=[m.version for m in applied])
    open_pool = functools.partial(
        create_pool,
        ctx.database_url,
        max_size=ctx.settings.db_pool_max,
        acquire_timeout=ctx.settings.db_acquire_timeout_ms / 1000,
        query_timeout=ctx.settings.db_query_timeout_ms / 1000,
    )
    ctx.pool = await open_pool()
    ctx.live_pool = await open_pool(generic_plans=True)
    if ctx.settings.load_sample:  # a newcomer can play at once; never blocks the start
        try:
            await ensure_sample_quiz(ctx.pool)
        except Exception as exc:
            log.warning("sample_quiz_not_loaded", error=repr(exc))
    ctx.tasks.append(asyncio.create_task(ctx.metrics.watch_loop_lag(), name="loop-lag"))
    for job in maintenance.JOBS.values():
        ctx.tasks.append(
            asyncio.create_task(maintenance.run_forever(job, ctx.pool, ctx.settings), name=job.name)
        )


async def start_realtime(ctx: AppContext) -> None:
    """The stores behind the Socket.IO layer: PostgreSQL, or memory for database-free dev."""
    store: ConnectionStore
    rooms: RoomDirectory
    events: EventLog | MemoryEventLog
    if ctx.settings.store == "memory":
        store, rooms, events = MemoryConnectionStore(), OpenRoomDirectory(), MemoryEventLog()
    else:
        pool = ctx.require_live_pool()
        pg_store = PgConnectionStore(pool)
        store, rooms, events = pg_store, PgRoomDirectory(pool, pg_store), EventLog(pool)
    await events.start()
    ctx.events = events
    if isinstance(events, EventLog):
        log_ = events
        events.on_batch = lambda _size, seconds: ctx.metrics.db_write_seconds.observe(seconds)
        ctx.metrics.observe(
            "tuiz_game_events_written",
            "Game events durably written",
            lambda: log_.events_written,
            counter=True,
        )
        ctx.metrics.observe(
            "tuiz_game_events_queued",
            "Game events waiting for a flusher",
            lambda: log_.queued,
            counter=False,
        )
    ctx.realtime = Realtime(
        ctx.sio,
        settings=ctx.settings,
        store=store,
        rooms=rooms,
        events=events,
        metrics=ctx.metrics,
        auth_failures=ctx.auth_failures,
    )
    await ctx.realtime.start()
    if isinstance(events, EventLog):
        games = GameRepository(ctx.require_live_pool())
        ctx.hub = GameHub(
            publisher=SocketPublisher(ctx.sio), settings=ctx.settings, events=events, games=games
        )
        cluster = None
        if ctx.settings.redis_url:
            cluster = ClusterNode(ctx.settings.redis_url, ctx.hub, ctx.realtime, ctx.extras["api"])
            ctx.extras["cluster"] = cluster
            cluster.observe(ctx.metrics)
            shared_limits = SharedBuckets(ctx.settings.redis_url)
            ctx.extras["shared_limits"] = shared_limits
            ctx.limits.share(shared_limits)
            ctx.auth_failures.share(shared_limits)
            ctx.metrics.observe(
                "tuiz_shared_limit_fallbacks",
                "Abuse-limit decisions taken by this process alone (Redis did not answer)",
                lambda: shared_limits.fallbacks,
                counter=True,
            )
        route = cluster.router.route if cluster is not None else None
        GameSockets(ctx.realtime, ctx.hub, games, ctx.limits, route)
        ctx.hub.start()
        if cluster is not None:
            cluster.start()
        hub = ctx.hub
        ctx.metrics.observe(
            "tuiz_live_games",
            "Games owned by this process",
            lambda: len(hub.runners),
            counter=False,
        )
        ctx.metrics.observe(
            "tuiz_game_lease_renewals_failed",
            "Lease renewals the database did not answer (retried every 0.25 s)",
            lambda: hub.leases.renewals_failed,
            counter=True,
        )
        ctx.metrics.observe(
            "tuiz_game_leases_lost",
            "Games this process lost to another (it stalled past their lease)",
            lambda: hub.leases.leases_lost,
            counter=True,
        )
        resumed = await ctx.hub.resume_live_games()
        if resumed:
            log.info("games_resumed", count=resumed)


def shutdown_left(ctx: AppContext) -> float:
    """Seconds left of TUIZ_DRAIN_TIMEOUT_MS, counted from the first step of shutdown."""
    loop = asyncio.get_running_loop()
    deadline = ctx.extras.setdefault(
        "shutdown_deadline", loop.time() + ctx.settings.drain_timeout_ms / 1000
    )
    return max(0.0, float(deadline) - loop.time())


async def _bounded(step: str, work: Awaitable[None], timeout: float | None = None) -> None:
    """One shutdown step: a failure or overrun is logged and the next step runs anyway."""
    try:
        async with asyncio.timeout(max(timeout, 0.1) if timeout is not None else None):
            await work
    except Exception as exc:
        log_failure(log, "shutdown_step_failed", exc, step=step)


async def shutdown(ctx: AppContext) -> None:
    """Drain sockets, flush the event log, then release the database (SIGTERM path).

    Every step is bounded by what is left of the drain timeout: with PostgreSQL away they fail
    fast anyway, and a database that hangs (a lost network) cannot hold the exit. The log gets
    the larger share; what it cannot write in time fails to its callers, never acknowledged.
    """
    share = shutdown_left(ctx) / 3
    if ctx.realtime is not None:
        await _bounded("drain sockets", ctx.realtime.drain(), share / 2)
    cluster: ClusterNode | None = ctx.extras.get("cluster")
    if cluster is not None:
        await _bounded("stop failover", cluster.stop_failover(), share / 4)
    if ctx.hub is not None:
        await _bounded("close games", ctx.hub.close(), share / 2)
    if cluster is not None:
        await _bounded("close cluster link", cluster.close(), share / 4)
    shared_limits: SharedBuckets | None = ctx.extras.get("shared_limits")
    if shared_limits is not None:
        await _bounded("close shared limits", shared_limits.close(), share / 8)
    if ctx.events is not None:
        await _bounded("close event log", ctx.events.close(timeout=shutdown_left(ctx) * 0.7))
    for task in ctx.tasks:
        task.cancel()
    if ctx.tasks:
        await asyncio.wait(ctx.tasks, timeout=max(min(shutdown_left(ctx) / 2, 1.0), 0.1))
    ctx.tasks.clear()
    for name, pool in (("live", ctx.live_pool), ("rest", ctx.pool)):
        if pool is not None:
            await _bounded(f"close {name} pool", close_pool(pool, max(shutdown_left(ctx), 0.1)))
    ctx.pool = ctx.live_pool = None
    if ctx.embedded is not None:
        await asyncio.to_thread(ctx.embedded.stop)
        ctx.embedded = None


def create_app(settings: Settings | None = None) -> Any:
    """Build the ASGI app: Socket.IO at /socket.io/, everything else served by FastAPI."""
    ctx = AppContext(settings=settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if ctx.settings.store == "postgres":
                await startup(ctx)
            await start_realtime(ctx)
        except BaseException:  # what started (a pool, the embedded PostgreSQL) is released
            await shutdown(ctx)
            raise
        tune_gc(ctx.settings.gc_gen0_threshold)
        try:
            yield
        finally:
            await shutdown(ctx)

    api = FastAPI(title="tuiz", version=__version__, lifespan=lifespan)
    api.state.ctx = ctx
    ctx.extras["api"] = api  # the cluster runs forwarded REST requests through it
    api_errors.install(api)
    api.add_middleware(RefuseInvalidTargets)  # NUL or non-UTF-8 in path or query: 422
    api.include_router(ops.router)
    api.include_router(api_connections.router)
    api.include_router(api_quizzes.router)
    api.include_router(api_games.router)
    api.include_router(api_accounts.router)  # the TUIZ client's /auth/*, /profile*
    api.include_router(api_editor.router)  # its /quiz/*
    api.include_router(api_library.router)  # its /quiz-library/*, /api/quizzes/*
    api.include_router(api_uploads.router)  # its /upload/*, and /uploads/ for every image
    api.include_router(api_sheets.router)  # /quiz-sheets/*: Kahoot-layout xlsx/CSV both ways
    pages.install(api)  # /, /host, /play, /admin, /assets/, /vendor/

    redis_url = ctx.settings.redis_url
    sio = TuizSocketIOServer(
        client_manager=(
            RedisFanout(redis_url, metrics=ctx.metrics) if redis_url else FastEmitManager()
        ),
        async_mode="asgi",
        cors_allowed_origins=ctx.settings.cors_origin_list,
        logger=False,
        engineio_logger=False,
        json=jsoncodec,
        # One socket's events are handled in order (the TUIZ client sends room:join right
        # after ws:connect); other sockets are not held up by it.
        async_handlers=False,
        max_http_buffer_size=ctx.settings.max_http_buffer_bytes,
        max_packet_bytes=ctx.settings.max_http_buffer_bytes,
        ping_interval=ctx.settings.ping_interval_ms / 1000,
        ping_timeout=ctx.settings.ping_timeout_ms / 1000,
    )
    ctx.sio = sio
    if ctx.settings.node:
        tag_session_ids(sio.eio, ctx.settings.node)

    def router() -> GameRouter | None:
        cluster: ClusterNode | None = ctx.extras.get("cluster")
        return cluster.router if cluster is not None else None

    async def close_polling_session(scope: dict[str, Any]) -> None:
        """A long-polling POST refused for its size ends its session, as Node's server does."""
        sid = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("sid")
        if sid:
            await sio.eio.close_now(sid[0], sio.eio.reason.TRANSPORT_ERROR)

    upload_limit = ctx.settings.max_upload_bytes + api_uploads.MULTIPART_SLACK
    bodies = BodyLimit(
        socketio.ASGIApp(
            sio, other_asgi_app=ForwardGames(api, router), socketio_path=SOCKETIO_PATH
        ),
        limit=ctx.settings.max_body_bytes,
        paths=[
            PathLimit(
                f"/{SOCKETIO_PATH}/",
                ctx.settings.max_http_buffer_bytes,
                on_refused=close_polling_session,
            ),
            # images: TUIZ_MAX_UPLOAD_BYTES (read_image answers the same 413 itself)
            PathLimit("/upload/", upload_limit),
            PathLimit("/profile/avatar/", upload_limit),
            PathLimit("/quiz-sheets/import", MAX_SHEET_BYTES + api_uploads.MULTIPART_SLACK),
        ],
    )
    _observe_bounds(ctx, sio, bodies)
    app: Any = RestCors(bodies, ctx.settings, socketio_prefix=f"/{SOCKETIO_PATH}/")
    app.tuiz_ctx = ctx  # the CLI's server drains sockets through it before closing connections
    return app


def _observe_bounds(ctx: AppContext, sio: TuizSocketIOServer, bodies: BodyLimit) -> None:
    metrics = ctx.metrics
    metrics.observe(
        "tuiz_socketio_malformed_packets",
        "Malformed Socket.IO or Engine.IO packets received (each socket's first is logged)",
        lambda: sio.malformed_packets,
        counter=True,
    )
    metrics.observe(
        "tuiz_socketio_packets_refused",
        "Sockets closed for a packet over the attachment or size limit",
        lambda: sio.sockets_refused,
        counter=True,
    )
    metrics.observe(
        "tuiz_http_bodies_refused",
        "HTTP request bodies refused with 413 (TUIZ_MAX_BODY_BYTES, or maxPayload for polling)",
        lambda: bodies.refused,
        counter=True,
    )


def http_protocol_for(app: Any) -> type[ReadTimeoutHttpProtocol]:
    """uvicorn's `http` setting: httptools with deadlines for reading a request."""
    ctx: AppContext = app.tuiz_ctx
    protocol = read_timeout_protocol(
        header_timeout=ctx.settings.header_timeout_ms / 1000,
        body_timeout=ctx.settings.body_timeout_ms / 1000,
    )
    ctx.metrics.observe(
        "tuiz_http_read_timeouts",
        "HTTP connections closed for not sending a request's headers or body in time",
        lambda: protocol.timeouts,
        counter=True,
    )
    return protocol


class RestCors:
    """REST answers browsers from TUIZ_CORS_ORIGINS (the list Socket.IO uses) and no others.

    The outermost layer, so every REST answer carries the headers: 4xx, 500 and the body
    limit's 413 included; preflights are answered here. Socket.IO paths go past it untouched
    (python-engineio answers their CORS itself; two sets of headers would be refused).
    Credentials are bearer tokens, never cookies, so no Allow-Credentials.
    """

    def __init__(self, app: Any, settings: Settings, *, socketio_prefix: str) -> None:
        origins = settings.cors_origin_list
        self.app = app
        self.prefix = socketio_prefix
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"] if origins == "*" else list(origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            max_age=600,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or f"{path}/".startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        await self.cors(scope, receive, send)


def websocket_protocol_for(app: Any, ws: str) -> Any:
    """uvicorn's `ws` setting: Socket.IO's own WebSocket connections served without the ASGI
    adapter (`eio_websocket`), every other upgrade by uvicorn's `ws` implementation as before."""
    ctx: AppContext = app.tuiz_ctx
    if not ctx.settings.native_websocket:
        return ws
    protocol = websocket_protocol(
        ctx.sio.eio,
        fallback=import_from_string(WS_PROTOCOLS.get(ws) or ws),
        path=f"/{SOCKETIO_PATH}/",
        send_buffer_limit=ctx.settings.send_buffer_limit_bytes,
    )
    ctx.metrics.observe(
        "tuiz_native_websockets",
        "Engine.IO sockets on the native WebSocket transport",
        lambda: sum(isinstance(s, EngineIOWebSocket) for s in ctx.sio.eio.sockets.values()),
        counter=False,
    )
    ctx.metrics.observe(
        "tuiz_slow_consumers_dropped",
        "WebSockets closed because their unsent data passed TUIZ_SEND_BUFFER_LIMIT_BYTES",
        lambda: protocol.dropped,
        counter=True,
    )
    return protocol


async def drain_before_shutdown(ctx: AppContext) -> None:
    """First step of SIGTERM, while connections are still open: say goodbye to every socket.

    Long-polling clients then get their close packet at once instead of holding the server
    until the graceful-shutdown timeout. Bounded by a third of the drain timeout.
    """
    if ctx.realtime is not None:
        await _bounded("drain sockets", ctx.realtime.drain(), shutdown_left(ctx) / 3)
