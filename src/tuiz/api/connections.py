"""REST reads of the WebSocket system, in the reference backend's paths, under the caller's RLS.

Who reads what (issue 10): connection rows and device sessions (IP address, user agent) need
the owner's JWT (their own rows) or the service key, never just a claimed `x-device-id`; the
raw event log is the service role's (players get their events, as their audience sees them,
from the live game); participants are listed without device ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tuiz.api.deps import CallerDep, ContextDep, DeviceDep
from tuiz.auth import Caller
from tuiz.errors import ErrorCode, TuizError
from tuiz.store.scoped import as_caller

router = APIRouter(tags=["websocket"])

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
SEQ_MAX = 2**31 - 1  # game_events.sequence_number is a PostgreSQL integer


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


class Connection(BaseModel):
    id: UUID
    socket_id: str
    device_id: str
    user_id: UUID | None
    connected_at: datetime
    disconnected_at: datetime | None
    last_heartbeat: datetime
    reconnect_count: int
    ip_address: str | None
    user_agent: str | None
    metadata: dict[str, Any]
    status: str


class DeviceSession(BaseModel):
    id: UUID
    device_id: str
    user_id: UUID | None
    first_seen: datetime
    last_seen: datetime
    total_connections: int
    total_reconnections: int
    browser_fingerprint: str | None
    metadata: dict[str, Any]


class GameEvent(BaseModel):
    id: UUID
    game_id: UUID
    seq: int
    event_type: str
    action: str
    payload: dict[str, Any]
    socket_id: str | None
    device_id: str | None
    player_id: UUID | None
    user_id: UUID | None
    timestamp: datetime


class Participant(BaseModel):
    """A room membership; never a device id (device ids are not disclosed to other clients)."""

    id: UUID
    game_id: UUID
    socket_id: str
    player_id: UUID
    user_id: UUID | None
    joined_at: datetime
    left_at: datetime | None
    role: str
    status: str


class ConnectionStats(BaseModel):
    active_connections: int
    daily: list[dict[str, Any]]


def _page(rows: list[Any], model: type[T], limit: int, offset: int) -> Page[T]:
    items = [model(**dict(r)) for r in rows[:limit]]
    more = len(rows) > limit
    return Page[model](  # type: ignore[valid-type]
        items=items, limit=limit, offset=offset, next_offset=offset + limit if more else None
    )


def _require_signed_in(who: Caller) -> None:
    """Connection rows hold IP addresses and user agents: a claimed device id is not enough."""
    if who.role == "anon":
        raise TuizError(
            ErrorCode.UNAUTHORIZED,
            "connection rows need a signed-in user's token (your own rows) or the service key",
        )


_CONNECTION_COLUMNS = """id, socket_id, device_id, user_id, connected_at, disconnected_at,
    last_heartbeat, reconnect_count, ip_address, user_agent, metadata, status::text AS status"""


@router.get("/websocket-connections", response_model=Page[Connection])
async def list_connections(
    ctx: ContextDep,
    who: CallerDep,
    device: DeviceDep,
    status: Literal["active", "disconnected", "timeout"] | None = None,
    device_id: Annotated[str | None, Query(max_length=255)] = None,
    user_id: UUID | None = None,
    since: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[Connection]:
    """The caller's own connections (the service role: all), newest first; filters AND."""
    _require_signed_in(who)
    async with as_caller(ctx.require_pool(), who, device) as conn:
        rows = await conn.fetch(
            f"""
            SELECT {_CONNECTION_COLUMNS} FROM public.websocket_connections
             WHERE ($1::text IS NULL OR status = $1::public.connection_status)
               AND ($2::text IS NULL OR device_id = $2)
               AND ($3::uuid IS NULL OR user_id = $3)
               AND ($4::timestamptz IS NULL OR connected_at >= $4)
             ORDER BY connected_at DESC, id
             LIMIT $5 OFFSET $6
            """,
            status,
            device_id,
            user_id,
            since,
            limit + 1,
            offset,
        )
    return _page(rows, Connection, limit, offset)


@router.get("/websocket-connections/active", response_model=Page[Connection])
async def active_connections(
    ctx: ContextDep, who: CallerDep, device: DeviceDep, limit: Limit = 100, offset: Offset = 0
) -> Page[Connection]:
    _require_signed_in(who)
    async with as_caller(ctx.require_pool(), who, device) as conn:
        rows = await conn.fetch(
            f"SELECT {_CONNECTION_COLUMNS} FROM public.websocket_connections"
            " WHERE status = 'active' ORDER BY connected_at DESC, id LIMIT $1 OFFSET $2",
            limit + 1,
            offset,
        )
    return _page(rows, Connection, limit, offset)


@router.get("/websocket-connections/stats", response_model=ConnectionStats)
async def connection_stats(
    ctx: ContextDep, who: CallerDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> ConnectionStats:
    """Active count and daily (UTC) figures; the analytics functions are the service role's."""
    if not who.is_service:
        raise TuizError(ErrorCode.FORBIDDEN, "connection statistics need the service key")
    async with as_caller(ctx.require_pool(), who) as conn:
        active = await conn.fetchval("SELECT public.get_active_connections_count()")
        daily = await conn.fetch(
            "SELECT * FROM public.get_daily_connection_stats(days_back => $1)", days
        )
    return ConnectionStats(
        active_connections=active,
        daily=[{**dict(r), "date": r["date"].isoformat()} for r in daily],
    )


@router.get("/device-sessions/{device_id}", response_model=DeviceSession)
async def device_session(
    ctx: ContextDep, who: CallerDep, device: DeviceDep, device_id: str
) -> DeviceSession:
    _require_signed_in(who)
    async with as_caller(ctx.require_pool(), who, device) as conn:
        row = await conn.fetchrow(
            "SELECT id, device_id, user_id, first_seen, last_seen, total_connections,"
            " total_reconnections, browser_fingerprint, metadata"
            " FROM public.device_sessions WHERE device_id = $1",
            device_id,
        )
    if row is None:
        raise TuizError(ErrorCode.NOT_FOUND, f"no device session {device_id!r} visible to you")
    return DeviceSession(**dict(row))


@router.get("/games/{game_id}/events", response_model=Page[GameEvent])
async def game_events(
    ctx: ContextDep,
    who: CallerDep,
    device: DeviceDep,
    game_id: UUID,
    after_seq: Annotated[int, Query(ge=0, le=SEQ_MAX)] = 0,
    limit: Limit = 100,
) -> Page[GameEvent]:
    """A game's raw log in sequence order after `after_seq`: the service role's only.

    The log holds what no client may see (the quiz with its answer key, device ids); players
    and hosts get their events from the live game, shaped for their audience.
    """
    if not who.is_service:
        raise TuizError(
            ErrorCode.FORBIDDEN,
            "the raw event log needs the service key; players get their events from the game",
        )
    async with as_caller(ctx.require_pool(), who, device) as conn:
        rows = await conn.fetch(
            """
            SELECT id, game_id, sequence_number AS seq, event_type, action, payload, socket_id,
                   device_id, player_id, user_id, "timestamp"
              FROM public.game_events WHERE game_id = $1 AND sequence_number > $2
             ORDER BY sequence_number LIMIT $3
            """,
            game_id,
            after_seq,
            limit + 1,
        )
    page = _page(rows, GameEvent, limit, 0)
    page.next_offset = page.items[-1].seq if page.next_offset is not None else None
    return page


@router.get("/games/{game_id}/participants", response_model=Page[Participant])
async def game_participants(
    ctx: ContextDep,
    who: CallerDep,
    device: DeviceDep,
    game_id: UUID,
    status: Literal["active", "disconnected", "timeout"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[Participant]:
    async with as_caller(ctx.require_pool(), who, device) as conn:
        rows = await conn.fetch(
            """
            SELECT id, game_id, socket_id, player_id, user_id, joined_at, left_at,
                   role, status::text AS status
              FROM public.room_participants
             WHERE game_id = $1 AND ($2::text IS NULL OR status = $2::public.connection_status)
             ORDER BY joined_at, id LIMIT $3 OFFSET $4
            """,
            game_id,
            status,
            limit + 1,
            offset,
        )
    return _page(rows, Participant, limit, offset)
