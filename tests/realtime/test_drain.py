"""SIGTERM: the server stops accepting, records every socket as disconnected and exits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from tests.factories import make_game, make_player
from tests.servers import run_server
from tests.sioclient import Recorder


async def test_sigterm_drains_sockets_and_flushes_the_log(db_url: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        game = await make_game(conn)
        for i in range(3):
            await make_player(conn, game, f"dev-{i}", f"P{i}")
        with run_server(db_url, tmp_path) as server:
            clients = [await Recorder(server.url).connect() for _ in range(3)]
            polling = await Recorder(server.url, transports=["polling"]).connect()
            for i, client in enumerate(clients):
                await client.register(f"dev-{i}")
                await client.emit("room:join", {"roomId": str(game)})
                await client.expect("room:joined")
            await polling.register("dev-polling")
            code = await asyncio.to_thread(server.terminate)
            assert code in (0, -15), server.log()
            assert "Application shutdown complete" in server.log()
            for client in clients:
                await client.close()
            await polling.close()

        statuses = await conn.fetch("SELECT status::text FROM websocket_connections")
        assert [r[0] for r in statuses] == ["disconnected"] * 4
        assert (
            await conn.fetchval("SELECT count(*) FROM room_participants WHERE status = 'active'")
            == 0
        )
        seqs = await conn.fetch(
            "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY 1", game
        )
        # three joins and three disconnects, all written before exit, gapless
        assert [r[0] for r in seqs] == [1, 2, 3, 4, 5, 6]
    finally:
        await conn.close()
