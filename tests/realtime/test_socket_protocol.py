"""The Socket.IO protocol with real python-socketio clients against a real `tuiz serve`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from tests.factories import make_game, make_player
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(db_url, tmp_path, TUIZ_HEARTBEAT_FLUSH_MS="100") as s:
        yield s


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def clients(server: ServerProcess) -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    await asyncio.gather(*(c.close() for c in made))


async def _client(server: ServerProcess, made: list[Recorder], **kw: object) -> Recorder:
    client = Recorder(server.url, **kw)  # type: ignore[arg-type]
    made.append(client)
    return await client.connect()


async def test_ws_connect_persists_and_counts_reconnects(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    first = await _client(server, clients)
    hello = await first.register("device-a", metadata={"userAgent": "pytest"})
    assert hello["socketId"] == first.sid
    assert hello["deviceId"] == "device-a"
    assert hello["reconnectCount"] == 0
    assert hello["serverTime"].endswith("Z")
    row = await db.fetchrow(
        "SELECT device_id, status::text, ip_address, metadata FROM websocket_connections"
        " WHERE socket_id = $1",
        first.sid,
    )
    assert row is not None
    assert (row["device_id"], row["status"], row["ip_address"]) == (
        "device-a",
        "active",
        "127.0.0.1",
    )
    await first.close()

    second = await _client(server, clients)
    again = await second.register("device-a")
    assert again["reconnectCount"] == 1
    session = await db.fetchrow(
        "SELECT total_connections, total_reconnections FROM device_sessions WHERE device_id = $1",
        "device-a",
    )
    assert session is not None and tuple(session) == (2, 1)


async def test_heartbeat_pong_and_coalesced_write(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    client = await _client(server, clients)
    await client.register("device-hb")
    before = await db.fetchval(
        "SELECT last_heartbeat FROM websocket_connections WHERE socket_id = $1", client.sid
    )
    await client.emit("ws:heartbeat")
    assert "serverTime" in await client.expect("ws:pong")

    async def refreshed() -> bool:
        after = await db.fetchval(
            "SELECT last_heartbeat FROM websocket_connections WHERE socket_id = $1", client.sid
        )
        return bool(after > before)

    assert await eventually(refreshed)  # the batched write lands within one flush (100 ms)


async def test_events_before_ws_connect_are_refused(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    client = await _client(server, clients)
    await client.emit("ws:heartbeat")
    error = await client.expect("ws:error")
    assert error["error"] == "NOT_CONNECTED"
    assert await db.fetchval("SELECT count(*) FROM websocket_connections") == 0


async def test_room_join_before_ws_connect_runs_once_registered(
    server: ServerProcess, clients: list[Recorder]
) -> None:
    """The TUIZ client's hooks may send room:join before ws:connect: it waits, then runs."""
    client = await _client(server, clients)
    for n in range(5):
        await client.emit("room:join", {"roomId": f"not-a-game-{n}"})
    assert (await client.expect("ws:error"))["error"] == "NOT_CONNECTED"  # the 5th: too many
    await client.register("early-device")
    for _ in range(4):  # the first four, answered once registered
        assert (await client.expect("ws:error"))["error"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (None, "JSON object"),
        ("device-x", "JSON object"),
        ([1, 2], "JSON object"),
        ({}, "deviceId"),
        ({"deviceId": ""}, "deviceId"),
        ({"deviceId": "   "}, "deviceId"),
        ({"deviceId": "a b"}, "deviceId"),
        ({"deviceId": "x" * 10_000}, "deviceId"),
        ({"deviceId": 42}, "deviceId"),
        ({"deviceId": "ok-device", "metadata": "not-an-object"}, "metadata"),
    ],
)
async def test_bad_ws_connect_payloads(
    server: ServerProcess,
    clients: list[Recorder],
    db: asyncpg.Connection,
    payload: object,
    fragment: str,
) -> None:
    client = await _client(server, clients)
    await client.emit("ws:connect", payload)
    error = await client.expect("ws:error")
    assert error["error"] == "VALIDATION_ERROR"
    assert fragment in error["message"]
    assert await db.fetchval("SELECT count(*) FROM websocket_connections") == 0
    assert await db.fetchval("SELECT count(*) FROM device_sessions") == 0


async def test_oversized_metadata_refused(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    client = await _client(server, clients)
    await client.emit("ws:connect", {"deviceId": "dev-big", "metadata": {"x": "y" * 5000}})
    assert (await client.expect("ws:error"))["error"] == "PAYLOAD_TOO_LARGE"
    assert await db.fetchval("SELECT count(*) FROM websocket_connections") == 0


async def test_unknown_event(server: ServerProcess, clients: list[Recorder]) -> None:
    client = await _client(server, clients)
    await client.register("dev-u")
    await client.emit("no:such:event", {"a": 1})
    error = await client.expect("ws:error")
    assert error["error"] == "UNKNOWN_EVENT"


async def _game_with_players(db: asyncpg.Connection, *devices: str) -> tuple[UUID, list[UUID]]:
    """The first device is the host: hosts (and spectators) hear who joins and leaves."""
    game = await make_game(db)
    players = [
        await make_player(db, game, d, f"name-{d}", is_host=i == 0) for i, d in enumerate(devices)
    ]
    return game, players


async def test_rooms_join_message_leave_with_seq(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    game, (p1, _p2) = await _game_with_players(db, "dev-1", "dev-2")
    room = str(game)
    alice = await _client(server, clients)
    bob = await _client(server, clients)
    await alice.register("dev-1")
    await bob.register("dev-2")

    await alice.emit("room:join", {"roomId": room})
    joined = await alice.expect("room:joined")
    assert joined["roomId"] == room and joined["clients"] == 1 and joined["role"] == "host"
    await bob.emit("room:join", {"roomId": room})
    assert (await bob.expect("room:joined"))["clients"] == 2
    seen = await alice.expect("room:user-joined")
    assert seen["socketId"] == bob.sid
    assert seen["seq"] == 2  # alice's join was 1

    await alice.emit("room:message", {"roomId": room, "message": {"text": "hi"}})
    got = await bob.expect("room:message")
    assert got["from"] == alice.sid and got["message"] == {"text": "hi"} and got["seq"] == 3
    assert (await alice.expect("room:message"))["seq"] == 3  # the sender sees it too

    participants = await db.fetch(
        "SELECT device_id, player_id, status::text FROM room_participants WHERE game_id = $1"
        " ORDER BY joined_at",
        game,
    )
    assert [(r["device_id"], r["status"]) for r in participants] == [
        ("dev-1", "active"),
        ("dev-2", "active"),
    ]
    assert participants[0]["player_id"] == p1

    assert bob.pending("room:user-joined") == 0  # players are not told of each other

    await bob.emit("room:leave", {"roomId": room})
    assert (await bob.expect("room:left"))["roomId"] == room
    left = await alice.expect("room:user-left")
    assert left["socketId"] == bob.sid and left["seq"] == 4
    status = await db.fetchval(
        "SELECT status::text FROM room_participants WHERE device_id = 'dev-2'"
    )
    assert status == "disconnected"

    events = await db.fetch(
        "SELECT sequence_number, event_type, device_id FROM game_events WHERE game_id = $1"
        " ORDER BY sequence_number",
        game,
    )
    assert [(e["sequence_number"], e["event_type"]) for e in events] == [
        (1, "room:user-joined"),
        (2, "room:user-joined"),
        (3, "room:message"),
        (4, "room:user-left"),
    ]


async def test_room_errors(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    game, _ = await _game_with_players(db, "dev-1")
    client = await _client(server, clients)
    await client.register("dev-1")
    await client.emit("room:join", {"roomId": "not-a-game"})
    assert (await client.expect("ws:error"))["error"] == "NOT_FOUND"
    await client.emit("room:join", {"roomId": "00000000-0000-0000-0000-000000000000"})
    assert (await client.expect("ws:error"))["error"] == "NOT_FOUND"
    await client.emit("room:message", {"roomId": str(game), "message": "x"})
    assert (await client.expect("ws:error"))["error"] == "FORBIDDEN"
    await client.emit("room:leave", {"roomId": str(game)})
    assert (await client.expect("ws:error"))["error"] == "NOT_FOUND"
    await client.emit("room:join", {"roomId": str(game)})
    await client.expect("room:joined")
    await client.emit("room:message", {"roomId": str(game), "message": "x" * 20_000})
    assert (await client.expect("ws:error"))["error"] == "PAYLOAD_TOO_LARGE"
    assert (
        await db.fetchval("SELECT count(*) FROM game_events WHERE event_type = 'room:message'") == 0
    )


async def test_disconnect_marks_rows_and_tells_the_room(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    game, _ = await _game_with_players(db, "dev-1", "dev-2")
    alice = await _client(server, clients)
    bob = await _client(server, clients)
    await alice.register("dev-1")
    await bob.register("dev-2")
    for c in (alice, bob):
        await c.emit("room:join", {"roomId": str(game)})
        await c.expect("room:joined")
    bob_sid = bob.sid
    await bob.close()
    left = await alice.expect("room:user-left")
    assert left["socketId"] == bob_sid  # sent after the rows below were written
    row = await db.fetchrow(
        "SELECT status::text, disconnected_at FROM websocket_connections WHERE socket_id = $1",
        bob_sid,
    )
    assert row is not None and row["status"] == "disconnected" and row["disconnected_at"]
    assert (
        await db.fetchval(
            "SELECT status::text FROM room_participants WHERE socket_id = $1", bob_sid
        )
        == "disconnected"
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM game_events WHERE action = 'disconnect' AND socket_id = $1",
            bob_sid,
        )
        == 1
    )


async def test_flood_is_rate_limited_then_disconnected(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    flooder = await _client(server, clients)
    bystander = await _client(server, clients)
    await flooder.register("dev-flood")
    await bystander.register("dev-calm")
    for _ in range(400):
        await flooder.emit("ws:heartbeat")
    error = await flooder.expect("ws:error")
    assert error["error"] == "RATE_LIMITED"
    await asyncio.wait_for(flooder.disconnected.wait(), 10)
    await bystander.emit("ws:heartbeat")
    await bystander.expect("ws:pong")

    async def flooder_closed() -> bool:
        status = await db.fetchval(
            "SELECT status::text FROM websocket_connections WHERE device_id = 'dev-flood'"
        )
        return bool(status == "disconnected")

    assert await eventually(flooder_closed)


async def test_tuiz_client_quirks(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    """client:hello is ignored; room:join right after ws:connect works; `gameId` is accepted;
    re-joining the same room on one socket changes nothing."""
    game, _ = await _game_with_players(db, "dev-q")
    client = await _client(server, clients)
    await client.emit("client:hello", {"version": "x"})
    await client.emit("ws:connect", {"deviceId": "dev-q"})
    await client.emit("room:join", {"gameId": str(game)})  # not waiting for ws:connected
    await client.expect("ws:connected")
    assert (await client.expect("room:joined"))["clients"] == 1
    await client.emit("room:join", {"roomId": str(game)})
    assert (await client.expect("room:joined"))["clients"] == 1
    await client.emit("ws:heartbeat")
    await client.expect("ws:pong")
    assert client.pending("ws:error") == 0
    rows = await db.fetch("SELECT status::text FROM room_participants WHERE game_id = $1", game)
    assert [r[0] for r in rows] == ["active"]
    assert await db.fetchval("SELECT count(*) FROM game_events WHERE game_id = $1", game) == 1


async def test_room_messages_keep_their_order(
    server: ServerProcess, clients: list[Recorder], db: asyncpg.Connection
) -> None:
    """A burst from one socket is committed in the background, yet arrives in order."""
    game, _ = await _game_with_players(db, "dev-host", "dev-talker")
    host = await _client(server, clients)
    talker = await _client(server, clients)
    await host.register("dev-host")
    await talker.register("dev-talker")
    for c in (host, talker):
        await c.emit("room:join", {"roomId": str(game)})
        await c.expect("room:joined")
    for i in range(30):
        await talker.emit("room:message", {"roomId": str(game), "message": i})
    got = [await host.expect("room:message") for _ in range(30)]
    assert [m["message"] for m in got] == list(range(30))
    seqs = [m["seq"] for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 30
