"""python-socketio's and python-engineio's servers with bounds on what one client can make
the server hold, log or wait for. The one place that overrides their internals (both pinned).

Measured against the unbounded servers (issue 11): a packet declaring 9,999,999,999 binary
attachments followed by binary frames kept 198 MB; every malformed packet logged a full
traceback at ERROR (5,000 three-byte frames, 11 MB of log in 0.03 s); a long-polling POST over
`maxPayload` was never answered, because closing its session waited for a GET that drains the
queue. Here, on every transport (tuiz's native WebSocket, long-polling, python-engineio's ASGI
WebSocket, since all of them hand messages to `_handle_eio_message`):

- a packet may declare at most `MAX_ATTACHMENTS` binary attachments (tuiz's protocol uses
  none; socket.io-client sends one per binary value), and a packet with its attachments at
  most `max_packet_bytes`; a packet over either limit closes its socket at once;
- a malformed packet (or long-polling payload) is logged once per socket, as one line
  without a traceback, and counted; the `MAX_MALFORMED`-th closes the socket
  (socket.io-client never sends one);
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


class TuizEngineIOServer(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server whose `disconnect(sid)` does not wait for the client.

    The stock one waits until the socket's queue is drained, which for a long-polling client
    means its next GET: a client that never polls again held its POST unanswered for good.
    A long-polling POST whose payload cannot be decoded is reported to `on_malformed` (the
    stock server logs a traceback for each and answers "ok").
    """

    on_malformed: Callable[[str, str], Awaitable[None]] | None = None

    def _get_socket(self, sid: str) -> Any:
        socket = super()._get_socket(sid)
        if type(socket) is AsyncSocket and "handle_post_request" not in vars(socket):
            self._guard_posts(socket)
        return socket

    def _guard_posts(self, socket: Any) -> None:
        handle = socket.handle_post_request

        async def handle_post_request(environ: dict[str, Any]) -> None:
            try:
                await handle(environ)
            except (ValueError, TypeError, IndexError) as exc:  # the payload's decoding: a
                # handler's own errors stop in _trigger_event
                if self.on_malformed is not None:
                    await self.on_malformed(socket.sid, f"payload: {type(exc).__name__}: {exc}")

        socket.handle_post_request = handle_post_request

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
        super().__init__(*args, **kwargs)
        self.max_packet_bytes = max_packet_bytes
        self.malformed_packets = 0  # metrics: every malformed packet received
        self.sockets_refused = 0  # metrics: sockets closed for a packet over the limits
        self._malformed: dict[str, int] = {}  # eio sid -> malformed packets so far
        self._pending_bytes: dict[str, int] = {}  # eio sid -> bytes of its binary packet
        self.eio.on_malformed = self._malformed_packet

    def _engineio_server_class(self) -> type[TuizEngineIOServer]:
        return TuizEngineIOServer

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
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
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
        self.sockets_refused += 1
        log.warning("socketio_packet_refused", eio_sid=eio_sid, reason=reason)
        await self.eio.close_now(eio_sid, self.eio.reason.TRANSPORT_ERROR)
