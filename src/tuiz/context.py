"""What one running tuiz process holds; built by `app.py`, read by the API and realtime layers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from tuiz.authlimit import AuthFailures, AuthGate
from tuiz.config import Settings
from tuiz.limits import AbuseLimits
from tuiz.metrics import Metrics

if TYPE_CHECKING:
    from tuiz.live.hub import GameHub
    from tuiz.realtime.server import Realtime
    from tuiz.store.embedded import EmbeddedPostgres
    from tuiz.store.events import EventLog
    from tuiz.store.events_memory import MemoryEventLog


@dataclass
class AppContext:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    database_url: str | None = None
    pool: asyncpg.Pool | None = None  # REST API, jobs
    live_pool: asyncpg.Pool | None = None  # sockets, rooms, games, event log: generic plans
    embedded: EmbeddedPostgres | None = None
    sio: Any = None
    realtime: Realtime | None = None
    hub: GameHub | None = None
    events: EventLog | MemoryEventLog | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    auth_failures: AuthGate = field(init=False)
    limits: AbuseLimits = field(init=False)

    def __post_init__(self) -> None:
        # One count shared by REST and Socket.IO (and by every process once Redis is set).
        self.auth_failures = AuthGate(
            AuthFailures(self.settings.auth_fail_limit, self.settings.auth_fail_window_ms / 1000)
        )
        self.limits = AbuseLimits(self.settings)

    def require_pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("database pool used before startup")
        return self.pool

    def require_live_pool(self) -> asyncpg.Pool:
        if self.live_pool is None:
            raise RuntimeError("database pool used before startup")
        return self.live_pool
