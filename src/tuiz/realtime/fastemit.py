"""Room broadcasts without a task per recipient.

python-socketio's `AsyncManager.emit` encodes a room message once, then starts one asyncio task
per recipient just to put the packet on that socket's queue. For a quiz room of thousands that
is thousands of tasks per broadcast. Here the packet is encoded once: a native WebSocket
(`eio_websocket`) gets the same pre-built frame for its next write, any other
socket (long-polling, upgraded from it) the pre-encoded packet on its queue. Nothing is
encoded for a room with no member here (other processes' sockets, in a cluster).
"""

from __future__ import annotations

from typing import Any

from engineio import packet as eio_packet
from socketio import AsyncManager
from socketio import packet as sio_packet

from tuiz.realtime.eio_websocket import EngineIOWebSocket, message_frame


class _Encoded(eio_packet.Packet):  # type: ignore[misc]
    """An Engine.IO packet whose wire form is computed once for every recipient."""

    def __init__(self, encoded: str) -> None:
        super().__init__(eio_packet.MESSAGE, encoded)
        self._wire = eio_packet.Packet(eio_packet.MESSAGE, encoded).encode()

    def encode(self, b64: bool = False) -> Any:
        return self._wire


class FastEmitManager(AsyncManager):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (namespace, sid) -> the rooms it is in. python-socketio finds a leaving socket's
        # rooms by testing every room of the namespace (one per socket), so each disconnect
        # cost a pass over every socket: a reconnect storm after a failover was quadratic.
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """`BaseManager.basic_disconnect`, leaving the socket's own rooms only."""
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.pop((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        namespace = namespace or "/"
        if callback is not None or namespace not in self.rooms:
            return await super().emit(  # type: ignore[no-any-return]
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                **kwargs,
            )
        if not self.emit_here(event, data, namespace, room, skip_sid):
            return await super().emit(  # type: ignore[no-any-return]
                event, data, namespace, room=room, skip_sid=skip_sid, **kwargs
            )
        return None

    def emit_here(
        self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any = None
    ) -> bool:
        """Deliver to this process's sockets in `room` (a room, a sid, or a list of them) now;
        False when only the library's path can (binary attachments). Encodes nothing when no
        recipient is here."""
        participants = list(self.get_participants(namespace, room))
        if not participants:
            return True
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        pkt = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args])
        encoded = pkt.encode()
        if isinstance(encoded, list):  # binary attachments: the library's path
            return False
        frame: bytes | None = None
        wire: _Encoded | None = None
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        sockets = self.server.eio.sockets
        for sid, eio_sid in participants:
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closing or socket.closed:
                continue
            if isinstance(socket, EngineIOWebSocket):
                if frame is None:
                    frame = message_frame(encoded)
                socket.write_frame(frame)
            else:
                if wire is None:
                    wire = _Encoded(encoded)
                socket.queue.put_nowait(wire)
        return True
