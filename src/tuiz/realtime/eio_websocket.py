"""Engine.IO over WebSocket with no task, queue or ASGI adapter per idle socket.

python-engineio serves a WebSocket through uvicorn's ASGI adapter: per socket a receive queue,
a packet queue, a writer task, a ping task and a task per received message; about 40 KB and
five tasks each, most of the memory and CPU of a quiz room (bench/README.md). Here a uvicorn
WebSocket protocol answers the Socket.IO client's direct WebSocket connection
(`/socket.io/?EIO=4&transport=websocket`, what the TUIZ client opens first) itself. Frames are
parsed and built by the `websockets` sans-I/O protocol on the transport's own callbacks, pings
are timers, a socket's messages run in a task only while it has some (in order, as python-
engineio does), a room broadcast is one pre-built frame for every socket, and what a turn of
the event loop produces for a socket leaves in one write.

python-engineio still owns the session table (`eio.sockets`): this socket registers there and
offers what the server calls on its sockets (`send`, `close`, `check_ping_timeout`, the state
flags), so python-socketio works over it unchanged. Any other WebSocket request (an upgrade
from long-polling, another path, a bad or cross-origin handshake) is handed with its bytes to
uvicorn's own protocol, so it gets exactly the answer it got before.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any, ClassVar, Final, cast
from urllib.parse import parse_qs, unquote

import engineio
from engineio import packet as eio_packet
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from tuiz.logs import get_logger

log = get_logger(__name__)
# The sans-I/O protocol logs "connection open/closed" at INFO for every socket: thousands of
# lines a minute in a big game (5 % of the CPU of a connect storm, measured with py-spy), while
# each connection is in `websocket_connections` and the metrics anyway. Its warnings stay.
_protocol_log = logging.getLogger("tuiz.realtime.websocket_protocol")
_protocol_log.setLevel(logging.WARNING)

# Received messages waiting for the socket's handler before the transport stops reading.
MAX_PENDING: Final = 32

# What a socket's runner does next, in arrival order.
_OPEN: Final = 0
_MESSAGE: Final = 1
_CLOSE: Final = 2
_MALFORMED: Final = 3

# Engine.IO v4 packet types as they start a text frame.
_PING: Final = "2"
_PONG: Final = "3"
_CLOSE_PACKET: Final = "1"
_MESSAGE_PACKET: Final = "4"
_IGNORED_PACKETS: Final = ("5", "6")  # UPGRADE and NOOP, ignored as python-engineio does


def text_frame(payload: bytes) -> bytes:
    """One unmasked text frame; a server's frame is the same bytes for every recipient."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


_PING_FRAME: Final = text_frame(_PING.encode())
_CLOSE_FRAME: Final = text_frame(_CLOSE_PACKET.encode())


def message_frame(socketio_packet: str) -> bytes:
    """The WebSocket frame of an Engine.IO MESSAGE carrying an encoded Socket.IO packet."""
    return text_frame((_MESSAGE_PACKET + socketio_packet).encode())


def handshake_environ(request: Request, transport: asyncio.BaseTransport) -> dict[str, Any]:
    """The WSGI-style environ python-engineio builds for a request, from the handshake.

    Only what a WebSocket handshake has: method, path, query, peer, and the headers as
    `HTTP_*` (repeated headers joined with commas, as python-engineio does).
    """
    path, _, query = request.path.partition("?")
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple):  # a Unix socket's peer has no address
        peer = ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": unquote(path),
        "QUERY_STRING": query,
        "RAW_URI": request.path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https" if transport.get_extra_info("sslcontext") else "http",
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": str(peer[1]),
    }
    for name, value in request.headers.raw_items():
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class EngineIOWebSocket(asyncio.Protocol):
    """One WebSocket connection: an Engine.IO socket in `eio.sockets`, or a pass-through.

    Bound to a server by `websocket_protocol()`; uvicorn makes one per upgraded request.
    """

    eio: ClassVar[engineio.AsyncServer]
    fallback: ClassVar[type[asyncio.Protocol]]
    path: ClassVar[str]
    send_buffer_limit: ClassVar[int]
    dropped: ClassVar[int] = 0  # slow consumers closed for their send buffer (a metric)
    _unflushed: ClassVar[list[EngineIOWebSocket]]  # sockets with frames for this loop turn

    __slots__ = (
        "__weakref__",
        "_app_state",
        "_config",
        "_fragments",
        "_outbox",
        "_pending",
        "_read_paused",
        "_runner",
        "_server_state",
        "_timer",
        "closed",
        "closing",
        "conn",
        "connected",
        "delegate",
        "handshake",
        "session",
        "sid",
        "transport",
        "upgraded",
    )

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any]
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self.transport: asyncio.Transport | None = None
        self.conn: ServerProtocol | None = ServerProtocol(
            max_size=config.ws_max_size, logger=_protocol_log
        )
        self.delegate: asyncio.Protocol | None = None
        self.handshake: bytearray | None = bytearray()
        self.sid = ""
        self.session: dict[str, Any] = {}
        self.connected = False
        self.upgraded = True  # never long-polling: HTTP requests naming this sid are refused
        self.closing = False
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._pending: collections.deque[tuple[int, Any]] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._fragments: tuple[bool, list[bytes]] | None = None
        self._outbox: bytes | list[bytes] | None = None
        self._read_paused = False

    # -- transport callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.delegate is not None:
            self.delegate.data_received(data)
            return
        conn = self.conn
        if conn is None:
            return
        if self.handshake is not None:
            self.handshake += data
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Request):
                self._on_request(event)
                if self.delegate is not None:
                    return
            elif isinstance(event, Frame):
                self._on_frame(event)
        if self.handshake is not None and conn.handshake_exc is not None:
            self._hand_over()  # not a handshake we take: uvicorn answers it as before
            return
        if conn.close_rcvd is not None or conn.close_sent is not None:
            self._close_transport(None)  # closing handshake, protocol error or bad UTF-8
        else:
            self._flush_protocol()  # pongs to the client's pings

    def eof_received(self) -> bool | None:
        if self.delegate is not None:
            return self.delegate.eof_received()
        return None

    def pause_writing(self) -> None:
        if self.delegate is not None:
            self.delegate.pause_writing()

    def resume_writing(self) -> None:
        if self.delegate is not None:
            self.delegate.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.delegate is not None:
            self.delegate.connection_lost(exc)
            return
        self._server_state.connections.discard(self)
        self._cancel_timer()
        if self.sid and not self.closing:
            self._enqueue(_CLOSE, (self.eio.reason.TRANSPORT_CLOSE, True))

    def shutdown(self) -> None:
        """uvicorn's exit: going away (1001); clients reconnect to the next server."""
        self._close_transport(1001)

    # -- handshake -----------------------------------------------------------------------

    def _on_request(self, request: Request) -> None:
        assert self.conn is not None and self.transport is not None
        path, _, query = request.path.partition("?")
        path = unquote(path)
        args = parse_qs(query)
        if (
            not (path if path.endswith("/") else path + "/").startswith(self.path)
            or args.get("EIO") != ["4"]
            or args.get("transport") != ["websocket"]
            or "sid" in args
        ):
            self._hand_over()
            return
        environ = handshake_environ(request, self.transport)
        origin = environ.get("HTTP_ORIGIN")
        if origin and self.eio.cors_allowed_origins != []:
            allowed = self.eio._cors_allowed_origins(environ)
            if allowed is not None and origin not in allowed:
                self._hand_over()  # python-engineio refuses it, and logs why
                return
        response = self.conn.accept(request)
        if response.status_code != 101:
            self._hand_over()
            return
        self.handshake = None
        # websockets' parser keeps the request for the connection's life (a local of its
        # generator); its headers are in `environ` now: 1.6 KB less per idle connection.
        request.headers.clear()
        self.transport.pause_reading()  # nothing is read before the socket is accepted
        self._read_paused = True
        self.sid = self.eio.generate_id()
        self.eio.sockets[self.sid] = self
        self._server_state.connections.add(self)  # type: ignore[arg-type]
        self._enqueue(_OPEN, (environ, response))

    def _hand_over(self) -> None:
        """Give the connection, and the bytes read so far, to uvicorn's own protocol."""
        assert self.transport is not None and self.handshake is not None
        raw, self.handshake, self.conn = bytes(self.handshake), None, None
        delegate = self.fallback(  # type: ignore[call-arg]
            config=self._config, server_state=self._server_state, app_state=self._app_state
        )
        self.delegate = delegate
        delegate.connection_made(self.transport)
        delegate.data_received(raw)

    async def _open(self, environ: dict[str, Any], response: Response) -> None:
        """The connect event first, as python-engineio runs it: a refusal is an HTTP 401."""
        assert self.conn is not None and self.transport is not None
        accepted = await self.eio._trigger_event("connect", self.sid, environ, run_async=False)
        if self.transport.is_closing():
            return  # gone meanwhile: connection_lost queued the disconnect
        if accepted is not None and accepted is not True:
            self.eio.sockets.pop(self.sid, None)
            self.closing = self.closed = True
            self.conn.send_response(self.conn.reject(401, "Unauthorized"))
            self._close_transport(None)
            return
        self.conn.send_response(response)
        self.connected = True
        opened = eio_packet.Packet(
            eio_packet.OPEN,
            {
                "sid": self.sid,
                "upgrades": [],
                "pingTimeout": int(self.eio.ping_timeout * 1000),
                "pingInterval": int(
                    (self.eio.ping_interval + self.eio.ping_interval_grace_period) * 1000
                ),
                "maxPayload": self.eio.max_http_buffer_size,
            },
        )
        # The handshake's response and the open packet leave in one write, now: one system
        # call and one wake-up of the client instead of two, and nothing written straight to
        # the transport later (a pong) can go ahead of the response.
        self.transport.write(
            b"".join([*self.conn.data_to_send(), text_frame(opened.encode().encode())])
        )
        self._schedule_ping()

    # -- receiving -----------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._on_message(bytes(frame.data), opcode is Opcode.TEXT)
            else:
                self._fragments = (opcode is Opcode.TEXT, [bytes(frame.data)])
        elif opcode is Opcode.CONT and self._fragments is not None:
            text, parts = self._fragments
            parts.append(bytes(frame.data))
            if frame.fin:  # the protocol already bounded the whole message by max_size
                self._fragments = None
                self._on_message(b"".join(parts), text)
        # PING is answered by the protocol (flushed after the read); PONG needs nothing;
        # CLOSE ends the read in data_received.

    def _on_message(self, data: bytes, text: bool) -> None:
        if self.closing or not self.connected:
            return
        if not text:  # a binary attachment of a Socket.IO packet
            self._enqueue(_MESSAGE, data)
            return
        try:
            message = data.decode()
        except UnicodeDecodeError:
            assert self.conn is not None
            self.conn.fail(1007, "invalid UTF-8")
            return
        kind = message[:1]
        if kind == _MESSAGE_PACKET:
            self._enqueue(_MESSAGE, message[1:])
        elif kind == _PONG:
            self._cancel_timer()
            self._schedule_ping()
        elif kind == _CLOSE_PACKET:
            self._enqueue(_CLOSE, (self.eio.reason.CLIENT_DISCONNECT, True))
        elif kind == _PING:  # only an upgrade probe pings the server; answer as engineio does
            self._write(text_frame((_PONG + message[1:]).encode()))
        elif kind not in _IGNORED_PACKETS:  # counted as python-engineio's paths count them
            self._enqueue(_MALFORMED, f"engine.io packet type {kind!r}")

    def _enqueue(self, kind: int, item: Any) -> None:
        """Run the socket's handlers one at a time, in arrival order, in a task that lives
        only while there is something to run."""
        pending = self._pending
        if pending is None:
            pending = self._pending = collections.deque()
        pending.append((kind, item))
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(pending))
        if len(pending) >= MAX_PENDING and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    async def _run(self, pending: collections.deque[tuple[int, Any]]) -> None:
        try:
            while pending:
                kind, item = pending.popleft()
                if kind == _MESSAGE:
                    if not self.closing:
                        await self.eio._trigger_event("message", self.sid, item, run_async=False)
                elif kind == _OPEN:
                    await self._open(*item)
                elif kind == _MALFORMED:
                    report = getattr(self.eio, "on_malformed", None)
                    if report is not None and not self.closing:
                        await report(self.sid, item)
                else:
                    reason, abort = item
                    await self.close(wait=False, abort=abort, reason=reason)
        finally:
            self._runner = None
            self._pending = None
            if self._read_paused and not self.closing and self.transport is not None:
                self._read_paused = False
                self.transport.resume_reading()

    # -- pings ---------------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.eio.ping_interval, self._ping)

    def _ping(self) -> None:
        self._timer = None
        if self.closing:
            return
        self._write(_PING_FRAME)
        self._timer = asyncio.get_running_loop().call_later(
            self.eio.ping_timeout, self._ping_timed_out
        )

    def _ping_timed_out(self) -> None:
        self._timer = None
        if not self.closing:
            log.info("engineio_ping_timeout", sid=self.sid)
            self._enqueue(_CLOSE, (self.eio.reason.PING_TIMEOUT, False))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- sending -------------------------------------------------------------------------

    def write_frame(self, frame: bytes) -> None:
        """Send a pre-built frame (a room broadcast), unless the socket is closing."""
        if not self.closing:
            self._write(frame)

    def _write(self, frame: bytes) -> None:
        """Queue a frame for this turn of the event loop's single write to the socket.

        What one turn produces for a socket (a game's phase change and question, a burst of
        room messages, an ack and a result) leaves in one write: half the system calls of a
        write per frame, and the client reads them together.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        outbox = self._outbox
        if isinstance(outbox, list):
            outbox.append(frame)
            return
        if outbox is not None:
            self._outbox = [outbox, frame]
            return
        self._outbox = frame  # one frame, the usual case: no list for the collector to track
        cls = type(self)
        if not cls._unflushed:
            asyncio.get_running_loop().call_soon(cls._flush_all)
        cls._unflushed.append(self)

    @classmethod
    def _flush_all(cls) -> None:
        sockets, cls._unflushed = cls._unflushed, []
        for socket in sockets:
            socket._flush()

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, None
        transport = self.transport
        if not outbox or transport is None or transport.is_closing():
            return
        transport.write(outbox if isinstance(outbox, bytes) else b"".join(outbox))
        if transport.get_write_buffer_size() > self.send_buffer_limit:
            # A client that stops reading must not make the server hold every broadcast for
            # it; it reconnects and catches up by seq.
            type(self).dropped += 1
            log.warning(
                "engineio_slow_consumer_dropped",
                sid=self.sid,
                buffered=transport.get_write_buffer_size(),
            )
            transport.abort()

    def _flush_protocol(self) -> None:
        """Write what the sans-I/O protocol has queued (handshake, pongs, close frames).

        Control frames may go ahead of queued messages; a close frame never does (see
        `_close_transport`)."""
        if self.conn is None or self.transport is None or self.transport.is_closing():
            return
        out = self.conn.data_to_send()
        if out:
            self.transport.write(b"".join(out))

    def _close_transport(self, code: int | None) -> None:
        """Send a close frame (`code`, unless the protocol already queued one) and close."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._flush()  # messages first: nothing may follow the close frame
        conn = self.conn
        if code is not None and conn is not None and conn.close_sent is None:
            with contextlib.suppress(InvalidState):  # not open yet: just close the TCP side
                conn.send_close(code)
        self._flush_protocol()
        transport.close()

    # -- the Engine.IO socket interface python-engineio and python-socketio call -----------

    async def send(self, pkt: eio_packet.Packet) -> None:
        if self.closed:
            return
        encoded = pkt.encode()
        if isinstance(encoded, str):
            self._write(text_frame(encoded.encode()))
        else:
            self._write(Frame(Opcode.BINARY, encoded).serialize(mask=False))

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """python-engineio's close: the disconnect event, a CLOSE packet unless aborted, then
        the WebSocket closing handshake."""
        if self.closed or self.closing:
            return
        self.closing = True
        self._cancel_timer()
        await self.eio._trigger_event(
            "disconnect", self.sid, reason or self.eio.reason.SERVER_DISCONNECT, run_async=False
        )
        if not abort:
            self._write(_CLOSE_FRAME)
        self.closed = True
        if self.eio.sockets.get(self.sid) is self:
            del self.eio.sockets[self.sid]
        self._close_transport(1000)

    async def check_ping_timeout(self) -> bool:
        """Pings are this socket's own timers; python-engineio's sweep has nothing to do."""
        return not self.closed


def websocket_protocol(
    eio: engineio.AsyncServer,
    *,
    fallback: type[asyncio.Protocol],
    path: str,
    send_buffer_limit: int,
) -> type[EngineIOWebSocket]:
    """The uvicorn `ws` protocol class for one Engine.IO server."""

    class TuizWebSocket(EngineIOWebSocket):
        __slots__ = ()

    TuizWebSocket.eio = eio
    TuizWebSocket.fallback = fallback
    TuizWebSocket.path = path
    TuizWebSocket.send_buffer_limit = send_buffer_limit
    TuizWebSocket._unflushed = []
    return TuizWebSocket
