"""The TUIZ client's socket flow with the official Node.js `socket.io-client` 4.x.

`tests/js/tuiz_client_flow.mjs` plays two TUIZ clients (a host and a player) against a real
`tuiz serve`, over WebSocket and over long-polling; afterwards the database must hold what the
seed's data flows describe: connection rows closed, device sessions counted, participations
ended, and the joins and disconnects in the game's event log with a gapless `seq`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.factories import make_game, make_player
from tests.servers import ServerProcess, run_server
from tests.sioclient import eventually

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "js" / "tuiz_client_flow.mjs"
CLIENT_PACKAGE = ROOT / "node_modules" / "socket.io-client" / "package.json"
NODE_TIMEOUT_S = 90


def node_with_client() -> str:
    """The `node` binary, failing (never skipping) when it or socket.io-client is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: install Node.js 20+, then run `make test`")
    if not CLIENT_PACKAGE.is_file():
        pytest.fail(
            f"{CLIENT_PACKAGE.relative_to(ROOT)} is missing: run `make test` (or `npm ci`),"
            " which installs socket.io-client from package-lock.json"
        )
    version = json.loads(CLIENT_PACKAGE.read_text())["version"]
    assert version.startswith("4."), f"socket.io-client {version} is not the 4.x the client uses"
    return node


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


async def run_flow(
    node: str, server: ServerProcess, transport: str, game: UUID, devices: tuple[str, str]
) -> dict[str, Any]:
    """Run the Node script to completion; its JSON summary, or a failure with its output."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        server.url,
        transport,
        str(game),
        *devices,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the Node client flow did not finish within {NODE_TIMEOUT_S}s")
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    assert process.returncode == 0, (
        f"the Node client flow failed (exit {process.returncode}):\n{stderr}\n{stdout}\n"
        f"--- server log (tail) ---\n{server.log()[-4000:]}"
    )
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return summary


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_tuiz_client_flow_with_node_socketio_client(
    transport: str, db_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    node = node_with_client()
    # Device ids as the client makes them: crypto.randomUUID().
    host_device, player_device = str(uuid.uuid4()), str(uuid.uuid4())
    game = await make_game(db)
    host = await make_player(db, game, host_device, "Host", is_host=True)
    player = await make_player(db, game, player_device, "Player")

    with run_server(db_url, tmp_path) as server:
        summary = await run_flow(node, server, transport, game, (host_device, player_device))
        a_sid, b_sid = summary["a"]["socketId"], summary["b"]["socketId"]
        assert a_sid and b_sid and a_sid != b_sid
        assert summary["transport"] == transport

        # A's disconnect is seen by nobody, so its rows may land just after the script ends.
        async def connection_rows() -> list[asyncpg.Record]:
            return await db.fetch(
                "SELECT socket_id, device_id, status::text, disconnected_at, connected_at,"
                " reconnect_count, ip_address, metadata"
                " FROM websocket_connections ORDER BY connected_at, socket_id"
            )

        async def event_rows() -> list[asyncpg.Record]:
            return await db.fetch(
                "SELECT sequence_number, event_type, action, socket_id, device_id, player_id,"
                " payload FROM game_events WHERE game_id = $1 ORDER BY sequence_number",
                game,
            )

        async def settled() -> bool:
            closed = all(r["status"] != "active" for r in await connection_rows())
            return closed and len(await event_rows()) >= 4

        await eventually(settled)
        connections, events = await connection_rows(), await event_rows()
        server_log = server.log()[-4000:]

    context = f"\n--- server log (tail) ---\n{server_log}"

    # Connection established: one websocket_connections row per socket, closed on disconnect.
    by_sid = {r["socket_id"]: r for r in connections}
    assert set(by_sid) == {a_sid, b_sid}, context
    for sid, device in ((a_sid, host_device), (b_sid, player_device)):
        row = by_sid[sid]
        assert row["device_id"] == device
        assert row["status"] == "disconnected", f"{dict(row)}{context}"
        assert row["disconnected_at"] is not None
        assert row["disconnected_at"] >= row["connected_at"]
        assert row["reconnect_count"] == 0
        assert row["ip_address"] == "127.0.0.1"
        metadata = row["metadata"]
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        assert "socket.io-client/4." in metadata["userAgent"]
        assert isinstance(metadata["connectedAt"], str)

    # ...and the trigger counted it in the device's session; the bad ws:connect counted nothing.
    sessions = await db.fetch(
        "SELECT device_id, total_connections, total_reconnections FROM device_sessions"
        " ORDER BY device_id"
    )
    counters = {
        s["device_id"]: (s["total_connections"], s["total_reconnections"]) for s in sessions
    }
    assert counters == {host_device: (1, 0), player_device: (1, 0)}

    # Game join: one participation per device, active while connected, ended on disconnect.
    participants = await db.fetch(
        "SELECT socket_id, device_id, player_id, role, status::text, joined_at, left_at"
        " FROM room_participants WHERE game_id = $1 ORDER BY joined_at",
        game,
    )
    assert [
        (r["socket_id"], r["device_id"], r["player_id"], r["role"], r["status"])
        for r in participants
    ] == [
        (a_sid, host_device, host, "host", "disconnected"),
        (b_sid, player_device, player, "player", "disconnected"),
    ]
    for row in participants:
        assert row["left_at"] is not None and row["left_at"] >= row["joined_at"]
    assert await db.fetchval("SELECT count(*) FROM room_participants") == 2

    # The event log: both joins, then both disconnects, seq 1..n without gaps; the bad
    # payloads logged nothing. The seqs the client saw are the logged ones.
    assert [e["sequence_number"] for e in events] == list(range(1, len(events) + 1))
    got = [(e["event_type"], e["action"], e["socket_id"], e["player_id"]) for e in events]
    assert got == [
        ("room:user-joined", "join", a_sid, host),
        ("room:user-joined", "join", b_sid, player),
        ("room:user-left", "disconnect", b_sid, player),
        ("room:user-left", "disconnect", a_sid, host),
    ], context
    assert [e["device_id"] for e in events] == [
        host_device,
        player_device,
        player_device,
        host_device,
    ]
    assert summary["joinedSeq"] == 2
    assert summary["leftSeq"] == 3
