"""python-socketio's and python-engineio's servers with bounds on what one client can make
the server hold, log or wait for; the methods of theirs it overrides are checked at start-up.

Measured against the unbounded servers (issue 11): a packet declaring 9,999,999,999 binary
attachments followed by binary frames kept 198 MB; every malformed packet logged a full
traceback at ERROR (5,000 three-byte frames, 11 MB of log in 0.03 s); a long-polling POST over
`maxPayload` was never answered, because closing its session waited for a GET that drains the
queue. Here, on every transport (tuiz's native WebSocket, long-polling, python-engineio's ASGI
WebSocket, since all of them hand messages to `_handle_eio_message`):

- a packet may declare at most `MAX_ATTACHMENTS` binary attachments (tuiz's protocol uses
  none; socket.io-client sends one per binary value), and a packet with its attachments at
  most `max_packet_bytes`; a packet over either limit closes its socket at once;
- a malformed packet (Socket.IO or Engine.IO, or a long-polling payload) is logged once per
  socket, as one line without a traceback, and counted; the `MAX_MALFORMED`-th closes the
  socket (socket.io-client never sends one);
- closing one Engine.IO socket never waits for its client to poll.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import engineio
import socketio
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

from tuiz.logs import get_logger

log = get_logger(__name__)

MAX_ATTACHMENTS: Final = 4
MAX_MALFORMED: Final = 5

# What this module overrides or calls of the servers' internals (python-socketio 5.18,
# python-engineio 4.15): checked when a server is built, so an upgrade that moves one fails
# at start-up, here, rather than on a hostile client's packet.
_INTERNALS: Final = {
    socketio.AsyncServer: (
        "_handle_eio_message",
        "_handle_eio_connect",
        "_handle_eio_disconnect",
        "_handle_event",
        "_handle_ack",
        "_handle_connect",
        "_handle_disconnect",
        "_engineio_server_class",
    ),
    engineio.AsyncServer: ("_trigger_event",),  # called by tuiz's native WebSocket
    AsyncSocket: ("receive", "handle_post_request", "_websocket_handler", "close"),
}


def check_internals() -> None:
    missing = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls, names in _INTERNALS.items()
        for name in names
        if not hasattr(cls, name)
    ]
    if missing:
        raise RuntimeError(f"python-socketio/engineio internals moved: {', '.join(missing)}")


class TuizEngineIOServer(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server whose `disconnect(sid)` does not wait for the client.

    The stock one waits until the socket's queue is drained, which for a long-polling client
    means its next GET: a client that never polls again held its POST unanswered for good.
    What python-engineio's own sockets (long-polling, its ASGI WebSocket) cannot decode is
    reported to `on_malformed` instead of being logged with a traceback each time (a POST's
    payload, a packet of an unknown type) or ending the connection with one (a frame that is
    no Engine.IO packet).
    """

    on_malformed: Callable[[str, str], Awaitable[None]] | None = None

    def guard(self, socket: Any) -> None:
        """Report what `socket` (one of python-engineio's own) cannot decode; called on its
        connect event, before anything has used it."""
        sid: str = socket.sid
        receive = socket.receive
        handle_post_request = socket.handle_post_request
        websocket_handler = socket._websocket_handler

        async def report(exc: Exception) -> None:
            if self.on_malformed is not None:
                await self.on_malformed(sid, f"engine.io: {type(exc).__name__}: {exc}")

        # Errors of the handlers themselves stop in _trigger_event: what gets here is decoding.
        async def guarded_receive(pkt: Any) -> None:
            try:
                await receive(pkt)
            except _DECODE_ERRORS as exc:
                await report(exc)

        async def guarded_post(environ: dict[str, Any]) -> None:
            try:
                await handle_post_request(environ)
            except _DECODE_ERRORS as exc:
                await report(exc)

        async def guarded_websocket(ws: Any) -> None:
            try:
                await websocket_handler(ws)
            except _DECODE_ERRORS as exc:
                await report(exc)
                await self.close_now(sid, self.reason.TRANSPORT_ERROR)

        socket.receive = guarded_receive
        socket.handle_post_request = guarded_post
        socket._websocket_handler = guarded_websocket

    async def disconnect(self, sid: str | None = None) -> None:
        if sid is None:
            await super().disconnect()
            return
        await self.close_now(sid, self.reason.SERVER_DISCONNECT)

    async def close_now(self, sid: str, reason: Any) -> None:
        """Close one socket (a CLOSE packet is queued for it) and forget it, without waiting."""
        socket = self.sockets.get(sid)
        if socket is None:
            return
        await socket.close(wait=False, abort=False, reason=reason)
        queue = getattr(socket, "queue", None)  # python-engineio's own sockets (not native)
        if queue is not None:
            queue.put_nowait(None)  # wake a pending long-poll GET or the WebSocket writer
        if self.sockets.get(sid) is socket:
            del self.sockets[sid]


_DECODE_ERRORS: Final = (ValueError, TypeError, IndexError, KeyError)


def declared_attachments(encoded: str) -> int:
    """The attachment count a Socket.IO packet declares (`51-...`), read without decoding it.

    python-socketio accepts up to ten digits (9,999,999,999); this reads just as many, so
    the count is known before any attachment is taken.
    """
    if encoded[:1] not in ("5", "6"):
        return 0
    dash = encoded.find("-", 1, 12)
    digits = encoded[1:dash] if dash > 1 else ""
    return int(digits) if digits.isascii() and digits.isdigit() else 0


def shape_error(kind: int, data: Any, id_: Any) -> str | None:
    """Why a decoded packet's payload cannot be what its type says (as socket.io-parser
    checks it), or None: an event is a list starting with its name, an ack a list with an id,
    a connect's auth an object."""
    if kind in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return "event payload is not a list starting with the event name"
    elif kind in (sio_packet.ACK, sio_packet.BINARY_ACK):
        if not isinstance(data, list) or id_ is None:
            return "ack without an id or a list payload"
    elif kind == sio_packet.CONNECT and not isinstance(data, dict | None):
        return "connect payload is not an object"
    return None


class TuizSocketIOServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server with bounded binary packets and quiet malformed packets."""

    def __init__(self, *args: Any, max_packet_bytes: int, **kwargs: Any) -> None:
        check_internals()
        super().__init__(*args, **kwargs)
        self.max_packet_bytes = max_packet_bytes
        self.malformed_packets = 0  # metrics: every malformed packet received
        self.sockets_refused = 0  # metrics: sockets closed for a packet over the limits
        self._malformed: dict[str, int] = {}  # eio sid -> malformed packets so far
        self._pending_bytes: dict[str, int] = {}  # eio sid -> bytes of its binary packet
        self.eio.on_malformed = self._malformed_packet

    def _engineio_server_class(self) -> type[TuizEngineIOServer]:
        return TuizEngineIOServer

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        socket = self.eio.sockets.get(eio_sid)
        if type(socket) is AsyncSocket:  # not tuiz's native WebSocket
            self.eio.guard(socket)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        """python-socketio's dispatch (5.18), with the packet's limits checked first and its
        decoding errors kept apart from the handlers' own."""
        if eio_sid not in self.eio.sockets:
            return  # closed here, with the rest of a long-polling payload still to come
        pending = self._binary_packet.get(eio_sid)
        if pending is not None:
            if not isinstance(data, bytes):
                await self._malformed_packet(eio_sid, "text while binary attachments are due")
                return
            size = self._pending_bytes.get(eio_sid, 0) + len(data)
            if size > self.max_packet_bytes:
                await self._refuse(eio_sid, f"binary packet over {self.max_packet_bytes} bytes")
                return
            self._pending_bytes[eio_sid] = size
            try:
                if not pending.add_attachment(data):
                    return
            except (IndexError, TypeError, KeyError) as exc:  # a placeholder naming no attachment
                del self._binary_packet[eio_sid]
                await self._malformed_packet(eio_sid, f"bad attachment placeholder: {exc!r}")
                return
            del self._binary_packet[eio_sid]
            self._pending_bytes.pop(eio_sid, None)
            if pending.packet_type == sio_packet.BINARY_EVENT:
                await self._handle_event(eio_sid, pending.namespace, pending.id, pending.data)
            else:
                await self._handle_ack(eio_sid, pending.namespace, pending.id, pending.data)
            return
        if not isinstance(data, str):
            await self._malformed_packet(eio_sid, "binary data with no packet awaiting it")
            return
        attachments = declared_attachments(data)
        if attachments > MAX_ATTACHMENTS:
            await self._refuse(eio_sid, f"packet declares {attachments} binary attachments")
            return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (*_DECODE_ERRORS, AttributeError) as exc:
            await self._malformed_packet(eio_sid, f"{type(exc).__name__}: {exc}")
            return
        kind = pkt.packet_type
        problem = shape_error(kind, pkt.data, pkt.id)
        if problem is not None:
            await self._malformed_packet(eio_sid, problem)
        elif kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind == sio_packet.ACK:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            if not self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
                await self._malformed_packet(eio_sid, "binary packet outside a namespace")
            elif attachments == 0:
                await self._malformed_packet(eio_sid, "binary packet with no attachments")
            else:
                self._binary_packet[eio_sid] = pkt
                self._pending_bytes[eio_sid] = len(data)
        else:
            await self._malformed_packet(eio_sid, f"unexpected packet type {kind!r}"[:100])

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self._malformed.pop(eio_sid, None)
        self._pending_bytes.pop(eio_sid, None)
        self._binary_packet.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _malformed_packet(self, eio_sid: str, reason: str) -> None:
        """Count it; log the socket's first one; close the socket at `MAX_MALFORMED`."""
        if eio_sid not in self.eio.sockets:
            return  # closed already; its client has not stopped sending yet
        self.malformed_packets += 1
        seen = self._malformed.get(eio_sid, 0) + 1
        self._malformed[eio_sid] = seen
        if seen == 1:
            log.warning(
                "socketio_malformed_packet",
                eio_sid=eio_sid,
                reason=reason[:200],
                closes_after=MAX_MALFORMED,
            )
        if seen >= MAX_MALFORMED:
            await self.eio.close_now(eio_sid, self.eio.reason.TRANSPORT_ERROR)

    async def _refuse(self, eio_sid: str, reason: str) -> None:
        """A packet over the limits: close its socket before taking any more of it."""
        if eio_sid not in self.eio.sockets:
            return
        self.sockets_refused += 1
        log.warning("socketio_packet_refused", eio_sid=eio_sid, reason=reason)
        await self.eio.close_now(eio_sid, self.eio.reason.TRANSPORT_ERROR)
