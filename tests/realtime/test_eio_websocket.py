"""The native Engine.IO WebSocket transport (`realtime/eio_websocket.py`) over real sockets.

Raw WebSocket clients (the `websockets` library) speak Engine.IO and Socket.IO by hand here, so
the tests see the frames themselves: handshake, pings, close codes, fragments, a client that
stops reading. Everything python-socketio does over the same transport is in the other tests.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from tests.factories import make_game, make_player
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually

QUERY = "/socket.io/?EIO=4&transport=websocket"


class RawSocket:
    """Socket.IO spoken by hand over one WebSocket: every frame is visible to the test."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.open: dict[str, Any] = {}

    @classmethod
    async def connect(cls, server: ServerProcess, **kwargs: Any) -> RawSocket:
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}{QUERY}", **kwargs)
        raw = cls(ws)
        first = await raw.recv()
        assert first.startswith("0")
        raw.open = json.loads(first[1:])
        return raw

    async def recv(self, timeout: float = 10) -> str:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str)
        return frame

    async def socketio_connect(self) -> str:
        await self.ws.send("40")
        reply = await self.recv()
        assert reply.startswith("40")
        sid: str = json.loads(reply[2:])["sid"]
        return sid

    async def emit(self, event: str, data: Any) -> None:
        await self.ws.send("42" + json.dumps([event, data]))

    async def expect(self, event: str, timeout: float = 10) -> Any:
        """The next Socket.IO event of that name; pings are answered, other events skipped."""
        while True:
            frame = await self.recv(timeout)
            if frame == "2":
                await self.ws.send("3")
            elif frame.startswith("42"):
                name, *args = json.loads(frame[2:])
                if name == event:
                    return args[0] if args else None

    async def register(self, device_id: str) -> None:
        await self.socketio_connect()
        await self.emit("ws:connect", {"deviceId": device_id})
        await self.expect("ws:connected")


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(
        db_url,
        tmp_path,
        TUIZ_HEARTBEAT_FLUSH_MS="100",
        TUIZ_PING_INTERVAL_MS="1000",
        TUIZ_PING_TIMEOUT_MS="300",
        TUIZ_CORS_ORIGINS="http://good.example",
    ) as s:
        yield s


async def _status(conn: asyncpg.Connection, device: str) -> str | None:
    status: str | None = await conn.fetchval(
        "SELECT status::text FROM websocket_connections WHERE device_id = $1", device
    )
    return status


async def _metric(server: ServerProcess, name: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{server.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def _is(conn: asyncpg.Connection, device: str, status: str) -> bool:
    return await _status(conn, device) == status


async def test_open_packet_pings_and_events(server: ServerProcess) -> None:
    raw = await RawSocket.connect(server, origin=Origin("http://good.example"))
    try:
        assert raw.open["upgrades"] == []
        assert raw.open["pingInterval"] == 1000 and raw.open["pingTimeout"] == 300
        assert raw.open["maxPayload"] == 100_000
        await raw.register("raw-1")
        assert await _metric(server, "tuiz_native_websockets") == 1
        for _ in range(2):  # the timer is armed again after each pong
            assert await raw.recv() == "2"
            await raw.ws.send("3")
        await raw.emit("ws:heartbeat", None)
        assert await raw.expect("ws:pong") is not None
    finally:
        await raw.ws.close()


async def test_client_without_pongs_is_closed_and_recorded(
    server: ServerProcess, conn: asyncpg.Connection
) -> None:
    raw = await RawSocket.connect(server)
    await raw.register("raw-silent")
    assert await raw.recv() == "2"
    assert await raw.recv() == "1"  # Engine.IO CLOSE after pingTimeout without a pong
    with pytest.raises(ConnectionClosed):
        await raw.recv()
    assert raw.ws.close_code == 1000
    assert await eventually(lambda: _is(conn, "raw-silent", "disconnected"))


async def test_fragmented_message_is_reassembled(server: ServerProcess) -> None:
    raw = await RawSocket.connect(server)
    try:
        await raw.socketio_connect()
        message = "42" + json.dumps(["ws:connect", {"deviceId": "raw-fragments"}])
        await raw.ws.send([message[:5], message[5:20], message[20:]])
        assert (await raw.expect("ws:connected"))["deviceId"] == "raw-fragments"
    finally:
        await raw.ws.close()


async def _close_code_after(server: ServerProcess, device: str, frame: str | bytes) -> int | None:
    """Register, send one text frame, and return the close code the server answered with."""
    raw = await RawSocket.connect(server)
    await raw.register(device)
    await raw.ws.send(frame, text=True)
    with pytest.raises(ConnectionClosed):
        await raw.expect("ws:pong")
    return raw.ws.close_code


async def test_oversized_frame_and_bad_utf8_close_the_socket(
    server: ServerProcess, conn: asyncpg.Connection
) -> None:
    too_big = "42" + json.dumps(["ws:heartbeat", "x" * 200_000])
    assert await _close_code_after(server, "raw-big", too_big) == 1009  # nothing handled
    bad_utf8 = b'42["ws:heartbeat", "\xff\xfe"]'
    assert await _close_code_after(server, "raw-bad-utf8", bad_utf8) == 1007
    for device in ("raw-big", "raw-bad-utf8"):
        assert await eventually(lambda d=device: _is(conn, d, "disconnected"))  # type: ignore[misc]


async def _refusals(server: ServerProcess) -> list[int]:
    """Status codes of WebSocket handshakes python-engineio or the app refuse."""
    base = f"ws://127.0.0.1:{server.port}"
    codes = []
    for url, origin in (
        (f"{base}/socket.io/?EIO=3&transport=websocket", None),  # unsupported version
        (f"{base}{QUERY}", Origin("http://evil.example")),  # not an accepted origin
        (f"{base}/not-socket-io", None),  # no WebSocket route there
    ):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url, origin=origin)
        codes.append(refused.value.response.status_code)
    return codes


async def test_other_websocket_requests_get_the_answers_they_got_before(
    server: ServerProcess,
) -> None:
    assert await _refusals(server) == [403, 403, 403]  # as with TUIZ_NATIVE_WEBSOCKET=false


async def test_polling_upgrade_still_works(server: ServerProcess) -> None:
    client = Recorder(server.url, transports=["polling", "websocket"])
    await client.connect(headers={"Origin": "http://good.example"})
    try:
        await client.register("dev-upgrade")
        await eventually(lambda: _upgraded(client))
        await client.emit("ws:heartbeat")
        await client.expect("ws:pong")
        assert await _metric(server, "tuiz_native_websockets") == 0  # upgrades stay on engineio
    finally:
        await client.close()


async def _upgraded(client: Recorder) -> bool:
    return bool(client.sio.transport() == "websocket")


async def test_a_client_that_stops_reading_is_dropped_alone(
    db_url: str, tmp_path: Path, conn: asyncpg.Connection
) -> None:
    """Past TUIZ_SEND_BUFFER_LIMIT_BYTES of unsent broadcasts the server closes that socket
    instead of holding every message for it; the room goes on."""
    game = await make_game(conn)
    await make_player(conn, game, "dev-host", "host", is_host=True)
    await make_player(conn, game, "dev-stuck", "stuck")
    room = str(game)
    with run_server(
        db_url,
        tmp_path,
        TUIZ_SEND_BUFFER_LIMIT_BYTES="65536",
        TUIZ_RATE_LIMIT_PER_SEC="1000",
        TUIZ_RATE_LIMIT_BURST="1000",
    ) as server:
        host = await Recorder(server.url).connect()
        stuck_sock = socket.create_connection(("127.0.0.1", server.port))
        stuck_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # max_queue=1: the client library stops reading the socket once a frame waits unread.
        stuck = RawSocket(
            await websockets.connect(
                f"ws://127.0.0.1:{server.port}{QUERY}", sock=stuck_sock, max_queue=1
            )
        )
        try:
            await stuck.recv()
            await stuck.register("dev-stuck")
            await stuck.emit("room:join", {"roomId": room})
            await stuck.expect("room:joined")
            await host.register("dev-host")
            await host.emit("room:join", {"roomId": room})
            await host.expect("room:joined")

            # Broadcasts the stuck client reads none of, until the kernel's buffers are full
            # and the server's own passes the limit (bounded: at most 8 MB).
            text = "x" * 16_000
            sent = 0
            while await _status(conn, "dev-stuck") == "active" and sent < 500:
                for _ in range(10):
                    message = {"i": sent, "t": text}
                    await host.emit("room:message", {"roomId": room, "message": message})
                    assert (await host.expect("room:message"))["message"]["i"] == sent
                    sent += 1
            assert await _status(conn, "dev-stuck") == "disconnected"
            assert await _metric(server, "tuiz_slow_consumers_dropped_total") == 1
            await host.emit("ws:heartbeat")
            await host.expect("ws:pong")
            assert await _status(conn, "dev-host") == "active"
        finally:
            await host.close()
            await stuck.ws.close()


async def test_asgi_websockets_when_native_is_off(db_url: str, tmp_path: Path) -> None:
    with run_server(
        db_url, tmp_path, TUIZ_NATIVE_WEBSOCKET="false", TUIZ_CORS_ORIGINS="http://good.example"
    ) as server:
        assert await _refusals(server) == [403, 403, 403]
        client = await Recorder(server.url).connect()
        try:
            await client.register("dev-asgi")
            await client.emit("ws:heartbeat")
            await client.expect("ws:pong")
            with pytest.raises(AssertionError, match="not exported"):
                await _metric(server, "tuiz_native_websockets")
        finally:
            await client.close()
