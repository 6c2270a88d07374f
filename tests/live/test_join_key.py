"""A join whose reply was lost, asked again with its join key, gets the seat it took: no new
seat, no second join event; any other key, or none, is refused as before; the key keeps
working on a game rebuilt from its log, which holds only the key's hash."""

from __future__ import annotations

import asyncpg
import pytest

from tests.live.conftest import Recorded, answering_game, two_questions
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import Kick
from tuiz.live.hub import GameHub, hash_join_key
from tuiz.live.runner import GameRunner
from tuiz.store.events import EventLog

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans

KEY = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"


async def _refused(hub: GameHub, runner: GameRunner, join_key: str | None) -> None:
    with pytest.raises(TuizError) as refused:
        await hub.join(runner, "dev-alice", "Alice", join_key=join_key)
    assert refused.value.code is ErrorCode.CONFLICT


async def _joined_payloads(pool: asyncpg.Pool, runner: GameRunner) -> list[str]:
    rows = await pool.fetch(
        "SELECT payload::text AS p FROM public.game_events"
        " WHERE game_id = $1 AND event_type = 'game:player-joined'",
        runner.record.id,
    )
    return [r["p"] for r in rows]


async def test_a_join_asked_again_with_its_key_gets_its_seat(pool: asyncpg.Pool) -> None:
    published = Recorded()
    async with EventLog(pool) as events:
        hub, runner = await answering_game(pool, events, published, two_questions())
        alice = await hub.join(runner, "dev-alice", "Alice", join_key=KEY)  # reply lost
        sent = len(published.sent)

        assert await hub.join(runner, "dev-alice", "Alice", join_key=KEY) == alice
        assert await hub.join(runner, "dev-alice", "Al", join_key=KEY) == alice  # name aside
        assert len(published.sent) == sent  # no second player-joined, no presence
        assert runner.game.seated_count == 1
        await _refused(hub, runner, None)
        await _refused(hub, runner, "another-key-0123456789")
        # Another device with the same key is just another player.
        bob = await hub.join(runner, "dev-bob", "Bob", join_key=KEY)
        assert bob != alice and runner.game.seated_count == 2

        logged = await _joined_payloads(pool, runner)
        assert len(logged) == 2
        assert all(KEY not in p for p in logged)
        assert sum(hash_join_key(KEY) in p for p in logged) == 2

        # Rebuilt from the log (a restart, or another process taking the game over).
        runner.broken = True
        hub.evict(runner)
        rebuilt = await hub.get(runner.game_id)
        assert rebuilt is not runner
        assert await hub.join(rebuilt, "dev-alice", "Alice", join_key=KEY) == alice
        await _refused(hub, rebuilt, "another-key-0123456789")
        await _refused(hub, rebuilt, None)
        assert len(await _joined_payloads(pool, rebuilt)) == 2


async def test_a_seat_taken_without_a_key_has_none(pool: asyncpg.Pool) -> None:
    async with EventLog(pool) as events:
        hub, runner = await answering_game(pool, events, Recorded(), two_questions())
        await hub.join(runner, "dev-alice", "Alice")
        await _refused(hub, runner, KEY)


async def test_a_kicked_seat_is_not_given_back_by_its_key(pool: asyncpg.Pool) -> None:
    async with EventLog(pool) as events:
        hub, runner = await answering_game(pool, events, Recorded(), two_questions())
        alice = await hub.join(runner, "dev-alice", "Alice", join_key=KEY)
        await runner.execute(Kick(actor=runner.game.host_id, player_id=alice, ban=True))
        with pytest.raises(TuizError) as refused:
            await hub.join(runner, "dev-alice", "Alice", join_key=KEY)
        assert refused.value.code is ErrorCode.FORBIDDEN  # banned, as without a key
