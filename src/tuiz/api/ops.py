"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tuiz.context import AppContext
from tuiz.store import migrations
from tuiz.store.events import EventLog

router = APIRouter(tags=["operations"])

READY_TIMEOUT = 2.0  # seconds: a probe that cannot reach the database in this time says 503


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and its event loop answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready for traffic: the database answers, every migration is applied and the game log's
    writer runs. 503 while PostgreSQL is away; ok again by itself once it is back."""
    ctx = _ctx(request)
    checks: dict[str, str] = {}
    if isinstance(ctx.events, EventLog):
        checks["event_log"] = "ok" if ctx.events.healthy else "stopped"
    if ctx.pool is None:
        checks["database"] = "not started"
    # The REST API's pool (and the migrations through it), then the live layer's own.
    for name, pool in (("database", ctx.pool), ("live_database", ctx.live_pool)):
        if pool is None:
            continue
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                async with pool.acquire(timeout=READY_TIMEOUT) as conn:
                    await conn.fetchval("SELECT 1")
                    if pool is ctx.pool:
                        current = await migrations.is_current(conn)
                        checks["migrations"] = "ok" if current else "pending"
            checks[name] = "ok"
        except (OSError, TimeoutError, Exception) as exc:  # any failure means not ready
            checks[name] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values()) and "migrations" in checks
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(_ctx(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
