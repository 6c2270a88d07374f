"""Hostile clients against a real `tuiz serve`: what one client can make the server hold.

Each test plays one attack from issue 11 over loopback, bounded in count and time, and checks
the server's own view: its resident memory (/proc), its log, its metrics, its sockets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import jwt
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.factories import make_user
from tests.servers import ServerProcess, run_server
from tuiz.realtime.socketio_server import MAX_ATTACHMENTS, MAX_MALFORMED
from tuiz.store.quizzes import MAX_ANSWERS, MAX_QUESTIONS

MAX_PAYLOAD = 100_000  # TUIZ_MAX_HTTP_BUFFER_BYTES' default: Engine.IO's maxPayload
SECRET = "test-jwt-secret-with-enough-length-0123456789"
POLLING = "/socket.io/?EIO=4&transport=polling"
MB = 1024 * 1024


def rss(server: ServerProcess) -> int:
    """The server process's resident memory, in bytes."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def log_lines(server: ServerProcess, event: str) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("event") == event:
                lines.append(record)
    return lines


@pytest.fixture(params=["native", "asgi-websocket", "polling"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(db_url: str, tmp_path: Path, transport: str) -> Iterator[ServerProcess]:
    native = "false" if transport == "asgi-websocket" else "true"
    with run_server(db_url, tmp_path, TUIZ_NATIVE_WEBSOCKET=native) as s:
        yield s


# -- Socket.IO over the three transports, spoken by hand ---------------------------------


class Hostile:
    """One Engine.IO socket: raw Engine.IO packets, Socket.IO packets, binary attachments."""

    async def send_raw(self, eio_packet: str) -> None:
        raise NotImplementedError

    async def send(self, packet: str) -> None:
        await self.send_raw("4" + packet)

    async def send_binary(self, data: bytes) -> None:
        raise NotImplementedError

    async def closed(self, timeout: float = 20) -> bool:
        """Whether the server ended this socket within `timeout`."""
        raise NotImplementedError

    async def next_event(self, timeout: float = 10) -> list[Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class WebSocketClient(Hostile):
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, server: ServerProcess) -> WebSocketClient:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        ws = await websockets.connect(url, max_size=None, ping_interval=None)
        assert str(await ws.recv()).startswith("0")
        await ws.send("40")
        assert str(await ws.recv()).startswith("40")
        return cls(ws)

    async def send_raw(self, eio_packet: str) -> None:
        await self.ws.send(eio_packet)

    async def send_binary(self, data: bytes) -> None:
        await self.ws.send(data)

    async def closed(self, timeout: float = 20) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False

    async def next_event(self, timeout: float = 10) -> list[Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = str(await self.ws.recv())
                if frame.startswith("42"):
                    event: list[Any] = json.loads(frame[2:])
                    return event

    async def aclose(self) -> None:
        await self.ws.close()


class PollingClient(Hostile):
    def __init__(self, http: httpx.AsyncClient, sid: str) -> None:
        self.http = http
        self.sid = sid
        self.url = f"{POLLING}&sid={sid}"

    @classmethod
    async def open(cls, server: ServerProcess) -> PollingClient:
        http = httpx.AsyncClient(base_url=server.url, timeout=30)
        opened = (await http.get(POLLING)).text
        client = cls(http, json.loads(opened[1:])["sid"])
        assert (await http.post(client.url, content="40")).status_code == 200
        assert (await http.get(client.url)).text.startswith("40")
        return client

    async def post(self, body: str) -> httpx.Response:
        return await self.http.post(self.url, content=body)

    async def send_raw(self, eio_packet: str) -> None:
        await self.post(eio_packet)

    async def send_binary(self, data: bytes) -> None:
        await self.post("b" + base64.b64encode(data).decode())

    async def closed(self, timeout: float = 20) -> bool:
        """Ended: a poll gets the CLOSE packet, or the session is unknown (400)."""
        async with asyncio.timeout(timeout):
            while True:
                response = await self.http.get(self.url)
                if response.status_code == 400 or "1" in response.text.split("\x1e"):
                    return True

    async def next_event(self, timeout: float = 10) -> list[Any]:
        async with asyncio.timeout(timeout):
            while True:
                for packet in (await self.http.get(self.url)).text.split("\x1e"):
                    if packet.startswith("42"):
                        event: list[Any] = json.loads(packet[2:])
                        return event

    async def aclose(self) -> None:
        await self.http.aclose()


async def connect(server: ServerProcess, transport: str) -> Hostile:
    if transport == "polling":
        return await PollingClient.open(server)
    return await WebSocketClient.open(server)


def placeholders(n: int) -> str:
    return json.dumps(["ws:heartbeat", *({"_placeholder": True, "num": i} for i in range(n))])


async def test_attachment_flood_is_refused_and_memory_stays_bounded(
    server: ServerProcess, transport: str
) -> None:
    # A binary packet within the limits is handled (here: refused as unregistered).
    fine = await connect(server, transport)
    await fine.send(f"51-{placeholders(1)}")
    await fine.send_binary(b"\x00" * 1000)
    assert await fine.next_event() == [
        "ws:error",
        {"error": "NOT_CONNECTED", "message": "send ws:connect with a deviceId first"},
    ]
    await fine.aclose()
    before = rss(server)

    # 9,999,999,999 declared attachments, then as many 60 KB frames as the server takes.
    flood = await connect(server, transport)
    await flood.send(f"59999999999-{placeholders(1)}")
    chunk = os.urandom(60_000)
    with contextlib.suppress(ConnectionClosed, httpx.HTTPError):
        for _ in range(2500 if transport != "polling" else 50):  # up to 150 MB
            await flood.send_binary(chunk)
    assert await flood.closed()

    # Within the count, attachments adding up to more than maxPayload bytes.
    heavy = await connect(server, transport)
    await heavy.send(f"5{MAX_ATTACHMENTS}-{placeholders(MAX_ATTACHMENTS)}")
    with contextlib.suppress(ConnectionClosed, httpx.HTTPError):
        for _ in range(MAX_ATTACHMENTS):
            await heavy.send_binary(chunk)
    assert await heavy.closed()
    for client in (flood, heavy):
        await client.aclose()

    grown = rss(server) - before
    assert grown < 40 * MB, f"server RSS grew by {grown / MB:.1f} MB"
    assert metric(server, "tuiz_socketio_packets_refused_total") == 2
    assert len(log_lines(server, "socketio_packet_refused")) == 2


GARBAGE = ["xx", '2{"a":1}', "2[1]", "2[]", "9", '4"x"', "5999999999999-[]", "2[", "3[]"]


async def test_malformed_packets_logged_once_per_socket_and_socket_closed(
    server: ServerProcess, transport: str
) -> None:
    sockets = [await connect(server, transport) for _ in range(4)]
    for n, client in enumerate(sockets):
        # Three sockets send Socket.IO garbage, the fourth Engine.IO packets of no known type.
        garbage = ["4" + packet for packet in GARBAGE] if n < 3 else ["9abc"]
        if isinstance(client, PollingClient):
            # 5,000 packets in one payload (Engine.IO takes 16), then payloads of garbage.
            await client.post("\x1e".join(garbage[i % len(garbage)] for i in range(5000)))
            for _ in range(MAX_MALFORMED):
                await client.post("\x1e".join(garbage))
        else:
            with contextlib.suppress(ConnectionClosed):
                for i in range(5000):
                    await client.send_raw(garbage[i % len(garbage)])
        assert await client.closed()
        await client.aclose()

    assert len(log_lines(server, "socketio_malformed_packet")) == len(sockets)
    text = server.log()
    assert "Traceback" not in text and "handler error" not in text
    # Each socket was closed at its MAX_MALFORMED-th packet; the rest were never handled.
    assert metric(server, "tuiz_socketio_malformed_packets_total") == MAX_MALFORMED * 4
    # The server still serves a well-behaved client.
    client = await connect(server, transport)
    await client.send('2["client:hello",{}]')
    await client.send('2["ws:heartbeat"]')
    assert (await client.next_event())[1]["error"] == "NOT_CONNECTED"
    await client.aclose()


# -- HTTP --------------------------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def declare_only(port: int, request_line: str, length: int) -> tuple[int, dict[str, Any]]:
    """Send only the headers of a request with a `length`-byte body; the server's answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"{request_line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        status, _, body = await asyncio.wait_for(read_response(reader), 10)
        return status, json.loads(body)
    finally:
        writer.close()


@pytest.fixture
def plain_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(db_url, tmp_path, TUIZ_JWT_SECRET=SECRET) as s:
        yield s


async def test_oversized_long_poll_posts_get_413_at_once_and_leave_nothing(
    plain_server: ServerProcess,
) -> None:
    server = plain_server
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        opened = [(await http.get(POLLING)).text for _ in range(20)]  # warm-up
        before = rss(server)
        for _ in range(200):
            sid = json.loads((await http.get(POLLING)).text[1:])["sid"]
            status, body = await declare_only(
                server.port, f"POST {POLLING}&sid={sid}", MAX_PAYLOAD + 1
            )
            assert status == 413
            assert body["error"] == "PAYLOAD_TOO_LARGE"
            # The session ended with it: the next poll is refused as unknown.
            assert (await http.get(f"{POLLING}&sid={sid}")).status_code == 400
        grown = rss(server) - before
    assert grown < 10 * MB, f"server RSS grew by {grown / MB:.1f} MB"
    assert metric(server, "tuiz_http_bodies_refused_total") == 200
    assert opened


def chunked_post(port: int, path: str, chunk: bytes, count: int) -> bytes:
    """POST `count` chunks (no end), then the server's whole answer (it closes after)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for _ in range(count):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while more := sock.recv(65536):
                answer += more
        return answer


def token(user: UUID) -> str:
    claims = {"sub": str(user), "role": "authenticated", "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def largest_quiz() -> dict[str, Any]:
    """A quiz at every limit of the schema, its text in Japanese (3 bytes a character)."""

    def text(i: int, n: int) -> str:
        return str(i) + "あ" * (n - len(str(i)))

    def url(i: int) -> str:
        return f"https://x/{i}".ljust(2048, "a")

    return {
        "title": text(0, 200),
        "description": text(0, 2000),
        "thumbnail_url": url(0),
        "category": text(0, 100),
        "tags": [text(k, 50) for k in range(20)],
        "play_settings": {"note": "a" * 4000},
        "questions": [
            {
                "question_text": text(i, 500),
                "question_type": "multi_select",
                "image_url": url(i),
                "explanation_title": text(i, 200),
                "explanation_text": text(i, 2000),
                "explanation_image_url": url(i),
                "answers": [
                    {"answer_text": text(j, 200), "is_correct": True, "image_url": url(j)}
                    for j in range(MAX_ANSWERS)
                ],
            }
            for i in range(MAX_QUESTIONS)
        ],
    }


async def test_rest_body_limit_413_for_declared_and_chunked_bodies(
    plain_server: ServerProcess, db_url: str
) -> None:
    server = plain_server
    conn = await asyncpg.connect(db_url)
    try:
        user = await make_user(conn)
    finally:
        await conn.close()
    headers = {"authorization": f"Bearer {token(user)}", "content-type": "application/json"}

    # The largest valid quiz, JSON with \u escapes (4.0 MB), fits the default limit.
    document = json.dumps(largest_quiz()).encode()
    assert 4_000_000 < len(document) < 8 * MB
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        created = await http.post("/quiz-sets", content=document, headers=headers)
    assert created.status_code == 201, created.text[:500]

    # 100 MB declared: refused from the headers alone, nothing of the body sent.
    status, body = await declare_only(server.port, "POST /quiz-sets", 100_000_000)
    assert status == 413
    assert body["error"] == "PAYLOAD_TOO_LARGE" and "message" in body

    # Chunked, no length declared: refused once the body passes the limit (8 MiB).
    before = rss(server)
    chunk = b"[" * 256_000
    answer = await asyncio.to_thread(
        chunked_post, server.port, "/quiz-sets", chunk, 8 * MB // len(chunk) + 1
    )
    status_line, _, raw = answer.partition(b"\r\n\r\n")
    status = int(status_line.split()[1])
    assert status == 413
    assert json.loads(raw)["error"] == "PAYLOAD_TOO_LARGE"
    grown = rss(server) - before
    assert grown < 40 * MB, f"server RSS grew by {grown / MB:.1f} MB"
    assert metric(server, "tuiz_http_bodies_refused_total") == 2


def open_fds(server: ServerProcess) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


@pytest.fixture
def impatient_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(
        db_url,
        tmp_path,
        TUIZ_HEADER_TIMEOUT_MS="1000",
        TUIZ_BODY_TIMEOUT_MS="1000",
        TUIZ_PING_INTERVAL_MS="2500",
    ) as s:
        yield s


async def test_read_deadlines_spare_long_polls_and_websockets(
    impatient_server: ServerProcess,
) -> None:
    """A long-poll waiting for its answer and an open WebSocket outlast the 1 s deadlines."""
    server = impatient_server
    ws = await WebSocketClient.open(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        sid = json.loads((await http.get(POLLING)).text[1:])["sid"]
        # Its answer is the first ping, sent 2.5 s after the handshake.
        assert (await http.get(f"{POLLING}&sid={sid}")).text == "2"
    assert await asyncio.wait_for(ws.ws.recv(), 10) == "2"
    await ws.aclose()


async def test_slowloris_connections_are_closed_and_new_clients_served(
    impatient_server: ServerProcess,
) -> None:
    server = impatient_server
    # As on a host with few descriptors: room for 40 more connections than the server holds.
    limit = open_fds(server) + 40
    resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE, (limit, limit))
    starts = [
        b"",  # connects and says nothing
        b"GET /health HTTP/1.1\r\nHost: x\r\n",  # half its headers
        b"POST /quiz-sets HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",  # some body
    ]
    slow = []
    for i in range(60):  # more than the descriptors left: the last ones wait to be accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(starts[i % 3])
        slow.append((reader, writer))

    async def closed_by_server(reader: asyncio.StreamReader) -> bool:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        return True

    async with asyncio.timeout(30):
        assert all(await asyncio.gather(*(closed_by_server(r) for r, _ in slow)))
    for _, writer in slow:
        writer.close()
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{server.url}/health")).status_code == 200
    assert metric(server, "tuiz_http_read_timeouts_total") >= 40
