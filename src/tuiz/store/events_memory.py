"""The in-memory game event log (`TUIZ_STORE=memory`): same sequence rules, nothing durable."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, datetime

from tuiz.store.events import NewEvent, StoredEvent, stored_event, validate


class MemoryEventLog:
    def __init__(self) -> None:
        self._events: dict[uuid.UUID, list[StoredEvent]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def close(self, timeout: float | None = None) -> None:
        return None

    async def append(self, event: NewEvent) -> StoredEvent:
        return await self.submit(event)

    def submit(self, event: NewEvent) -> asyncio.Future[StoredEvent]:
        validate(event)
        log = self._events[event.game_id]
        stored = stored_event(event, uuid.uuid4(), len(log) + 1, datetime.now(UTC))
        log.append(stored)
        done: asyncio.Future[StoredEvent] = asyncio.get_running_loop().create_future()
        done.set_result(stored)
        return done

    async def read(
        self, game_id: uuid.UUID, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        return self._events[game_id][after_seq : after_seq + limit]
