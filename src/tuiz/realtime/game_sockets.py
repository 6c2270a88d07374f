"""Socket events of live games, and the Socket.IO side of the live layer's `Publisher` port.

Payloads are validated here; the rules live in the engine, ordering and durability in
`GameRunner`, and what each audience sees in `live.views`. Refusals go back as the
acknowledgement `{ok: false, error, message}` and as `game:error` (never `ws:error`, which
makes the TUIZ client drop its registration).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import socketio
from pydantic import AliasChoices, Field, StringConstraints

from tuiz.auth import same_token
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import (
    Command,
    End,
    GameError,
    HostStep,
    Kick,
    Lock,
    Next,
    Pause,
    Phase,
    Resume,
    Skip,
    Start,
    StepRef,
)
from tuiz.limits import AbuseLimits
from tuiz.live.commands import answer_command
from tuiz.live.hub import GameHub, JoiningSocket
from tuiz.live.publisher import Body
from tuiz.live.runner import GameRunner
from tuiz.live.views import answer_accepted, board
from tuiz.realtime.protocol import JoinKey, Payload, parse
from tuiz.realtime.server import Client, Handler, Realtime, watchers_room
from tuiz.store.games import GameRepository
from tuiz.store.rooms import RoomAccess

Route = Callable[[str, Handler], Handler]
"""Wraps a handler so that it runs where its game runs (`tuiz.cluster.forward`)."""

Pin = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SocketPublisher:
    """The live layer's messages onto python-socketio rooms and sockets."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def to_room(self, room: str, event: str, body: Body) -> None:
        await self.sio.emit(event, body, room=room)

    async def to_watchers(self, room: str, event: str, body: Body) -> None:
        await self.sio.emit(event, body, room=watchers_room(room))

    async def to_sockets(self, sids: Iterable[str], event: str, body: Body) -> None:
        for sid in sids:
            await self.sio.emit(event, body, to=sid)

    async def enter(self, sid: str, room: str) -> None:
        await self.sio.enter_room(sid, room)

    async def leave(self, sid: str, room: str) -> None:
        await self.sio.leave_room(sid, room)


class GameRef(Payload):
    game_id: Id = Field(validation_alias=AliasChoices("gameId", "roomId"))


class JoinGame(Payload):
    pin: Pin
    nickname: str = Field(validation_alias=AliasChoices("nickname", "playerName", "name"))
    join_key: JoinKey | None = Field(default=None, alias="joinKey")


class RejoinGame(GameRef):
    player_id: Id = Field(alias="playerId")
    resume_token: str = Field(alias="resumeToken", max_length=200)
    last_seq: int | None = Field(default=None, alias="lastSeq", ge=0, le=2**53)


class HostJoin(GameRef):
    host_token: str = Field(alias="hostToken", max_length=200)


class AnswerSubmit(GameRef):
    player_id: Id | None = Field(default=None, alias="playerId")
    question_id: Id = Field(alias="questionId")
    answer_id: Id | None = Field(default=None, alias="answerId")
    choice_ids: list[Id] | None = Field(default=None, alias="choiceIds", max_length=20)
    answer: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=200)


class FromStep(Payload):
    """`from: {phase, questionIndex}` on a host step: the step the host saw when it asked."""

    phase: Phase
    question_index: int = Field(default=-1, alias="questionIndex", ge=-1, le=10_000)


def from_step(d: dict[str, Any]) -> StepRef | None:
    """The step a `game:flow:start/next/skip` advances from, when the host names it: then the
    command changes nothing once the game has left that step, so it is safe to send again."""
    raw = d.get("from")
    if raw is None:
        return None
    step = parse(FromStep, raw)
    return StepRef(step.phase, step.question_index)


RELAYED_STEPS = {
    "countdown": Phase.COUNTDOWN,
    "question": Phase.ANSWERING,
    "answering": Phase.ANSWERING,
    "answer_reveal": Phase.ANSWER_REVEAL,
    "leaderboard": Phase.LEADERBOARD,
    "explanation": Phase.EXPLANATION,
    "podium": Phase.PODIUM,
}
"""The TUIZ host's `game:phase:change` names the step it took; `waiting`/`ended` change
nothing (the game ends at the podium)."""


def _step(host: str, d: dict[str, Any]) -> Command | None:
    """A relayed phase as a `HostStep` (idempotent), or None when it asks for nothing."""
    to = RELAYED_STEPS.get(str(d.get("phase", "")))
    if to is None:
        return None
    question = d.get("question")
    index = question.get("index") if isinstance(question, dict) else None
    if to is Phase.COUNTDOWN or not isinstance(index, int) or isinstance(index, bool):
        index = None
    return HostStep(actor=host, to=to, question_index=index)


TUIZ_RELAYS: dict[str, Callable[[str, dict[str, Any]], Command | None]] = {
    "game:started": lambda host, _d: Start(actor=host),
    "game:phase:change": _step,
    "game:question:started": lambda host, d: _step(host, {**d, "phase": "question"}),
}
"""What the TUIZ host relays after its REST calls, in games it drives: each names a step, so
a relay of a step already taken changes nothing."""


def _locked(d: dict[str, Any]) -> bool:
    return bool(d.get("locked", True))


HOST_COMMANDS: dict[str, Callable[[str, dict[str, Any]], Command]] = {
    "game:flow:start": lambda host, d: Start(actor=host, from_step=from_step(d)),
    "game:started": lambda host, _d: Start(actor=host),
    "game:flow:next": lambda host, d: Next(actor=host, from_step=from_step(d)),
    "game:phase:change": lambda host, _d: Next(actor=host),
    "game:flow:skip": lambda host, d: Skip(actor=host, from_step=from_step(d)),
    "game:flow:end": lambda host, _d: End(actor=host),
    "game:end": lambda host, _d: End(actor=host),
    "game:flow:pause": lambda host, _d: Pause(actor=host),
    "game:pause": lambda host, _d: Pause(actor=host),
    "game:flow:resume": lambda host, _d: Resume(actor=host),
    "game:resume": lambda host, _d: Resume(actor=host),
    "game:lock": lambda host, d: Lock(actor=host, locked=_locked(d)),
    "game:room-locked": lambda host, d: Lock(actor=host, locked=_locked(d)),
    "game:kick": lambda host, d: Kick(
        actor=host, player_id=str(d.get("playerId", "")), ban=bool(d.get("ban", False))
    ),
}
"""Host commands by socket event (tuiz's own names and the TUIZ client's relayed ones)."""


class GameSockets:
    def __init__(
        self,
        realtime: Realtime,
        hub: GameHub,
        games: GameRepository,
        limits: AbuseLimits,
        route: Route | None = None,
    ) -> None:
        """`route` (cluster) runs each handler on the game's owner, wherever the socket is."""
        self.realtime = realtime
        self.limits = limits
        self.hub = hub
        self.games = games
        routed = route or (lambda _event, handler: handler)

        def on(event: str, handler: Handler) -> None:
            realtime.on(event, routed(event, handler), error_event="game:error")

        on("game:join", self._join)
        on("game:rejoin", self._rejoin)
        on("game:host:join", self._host_join)
        on("game:answer:submit", self._answer)
        on("game:state", self._state)
        on("game:leaderboard:request", self._leaderboard)
        for name in HOST_COMMANDS:
            on(name, self._host_command(name))
        on("game:question:started", self._host_command("game:question:started"))
        realtime.disconnect_hooks.append(self._on_disconnect)
        bind = routed("room:join", self._bind_on_room_join)

        async def on_room_join(client: Client, room_id: str) -> None:
            with contextlib.suppress(TuizError):  # no such game, or its owner is away
                await bind(client, {"roomId": room_id})

        realtime.room_join_hooks.append(on_room_join)

    async def _bind_on_room_join(self, client: Client, data: dict[str, str]) -> None:
        await self._on_room_join(client, data["roomId"])

    async def _on_room_join(self, client: Client, room_id: str) -> None:
        """TUIZ client games: a `room:join` binds the socket to what its device holds, the
        host role (the device the signed-in host created the game from, or the owner's JWT)
        or the device's seat. Its protocol gives no other proof (docs/tuiz-client-protocol.md:
        device ids are never disclosed, so knowing one is the residual risk)."""
        if client.device_id is None or room_id in client.seats:
            return
        runner = self.hub.runners.get(room_id)
        if runner is None:
            try:
                runner = await self.hub.get(room_id)
            except TuizError:
                return
        game = runner.game
        if not game.settings.tuiz_client:
            return
        if client.device_id == game.host_device_id or self.hub.is_host(runner, client.caller, None):
            await self._bind(client, runner, None)
            return
        seat = game.player_by_device(client.device_id)
        if seat is not None and not seat.kicked:
            await self._bind(client, runner, seat.id)

    async def _bind(
        self, client: Client, runner: GameRunner, player_id: str | None, *, recorded: bool = False
    ) -> None:
        """The socket now speaks for this seat: room, participant row (unless `recorded`
        already), runner's seat map."""
        client.seats[runner.game_id] = player_id
        await runner.seat_socket(client.sid, player_id)
        if runner.room not in client.rooms:
            seat = uuid.UUID(player_id or runner.game.host_id)
            role = "player" if player_id else "host"
            await self.realtime.join_room(
                client, runner.room, RoomAccess(runner.record.id, seat, role), recorded=recorded
            )

    async def _join(self, client: Client, data: Any) -> dict[str, Any]:
        payload = parse(JoinGame, data)
        assert client.device_id is not None
        lookup = await self.limits.pin_lookup(client.ip)
        record = await lookup(self.hub.by_pin, payload.pin)
        if record is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no game with PIN {payload.pin}")
        await self.limits.join(client.ip)
        runner = await self.hub.get(record.id)
        # Its participation is written with the seat (else _bind writes none: in the room).
        socket = JoiningSocket(client.sid, client.caller.user_id)
        early = runner.room not in client.rooms
        join = self.hub.join(
            runner,
            client.device_id,
            payload.nickname,
            join_key=payload.join_key,
            socket=socket if early else None,
        )
        # The socket's close waits for it, as for the rows the connection store writes.
        player_id = await self.realtime.store.track(client.sid, asyncio.ensure_future(join))
        await self._bind(client, runner, player_id, recorded=socket.written)
        return {
            "ok": True,
            "gameId": runner.game_id,
            "playerId": player_id,
            "resumeToken": self.hub.seat_token(runner, player_id, client.device_id),
            "snapshot": runner.snapshot(player_id),
        }

    async def _rejoin(self, client: Client, data: Any) -> dict[str, Any]:
        """Back to a seat with its resume token; `missed` holds what this player would have
        received since `lastSeq` (None: too far behind, draw from the snapshot)."""
        payload = parse(RejoinGame, data)
        assert client.device_id is not None
        runner = await self.hub.get(payload.game_id)
        player = runner.game.players.get(payload.player_id)
        expected = self.hub.seat_token(runner, payload.player_id, client.device_id)
        if player is None or not same_token(expected, payload.resume_token):
            raise TuizError(ErrorCode.FORBIDDEN, "this device does not hold that seat")
        if player.kicked:
            raise TuizError(ErrorCode.FORBIDDEN, "you were removed from this game")
        await self._bind(client, runner, player.id)
        missed = None
        if payload.last_seq is not None:
            missed = runner.missed(player.id, payload.last_seq)
        return {"ok": True, "snapshot": runner.snapshot(player.id), "missed": missed}

    async def _host_join(self, client: Client, data: Any) -> dict[str, Any]:
        payload = parse(HostJoin, data)
        runner = await self.hub.get(payload.game_id)
        self.hub.require_host(runner, client.caller, payload.host_token)
        await self._bind(client, runner, None)
        return {"ok": True, "snapshot": runner.snapshot(None)}

    async def _runner_for(self, client: Client, data: Any) -> GameRunner:
        ref = parse(GameRef, data if isinstance(data, dict) else {})
        return await self.hub.get(ref.game_id)

    def _is_host(self, client: Client, runner: GameRunner) -> bool:
        """A socket bound with the host token, or one signed in as the game's owner; in TUIZ
        client games also one registered from the host's device, the proof `room:join` binds
        with: the client's host pages relay steps on a socket that never sent `room:join`
        after a full page load (their join effect runs before the socket exists)."""
        if runner.game_id in client.seats and client.seats[runner.game_id] is None:
            return True
        game = runner.game
        if (
            game.settings.tuiz_client
            and client.device_id is not None
            and client.device_id == game.host_device_id
        ):
            return True
        return self.hub.is_host(runner, client.caller, None)

    def _host_command(self, name: str) -> Any:
        build = HOST_COMMANDS.get(name)

        async def handle(client: Client, data: Any) -> dict[str, Any]:
            runner = await self._runner_for(client, data)
            if not self._is_host(client, runner):
                raise TuizError(ErrorCode.FORBIDDEN, "only the host can do that")
            if runner.room not in client.rooms or runner.game_id not in client.seats:
                await self._bind(client, runner, None)
            if runner.game.settings.tuiz_client:
                return await self._relay(runner, name, data)
            if build is None:  # a TUIZ-client relay in one of tuiz's own games: nothing to do
                return {"ok": True}
            await runner.execute(build(runner.game.host_id, data))
            return {"ok": True, "snapshot": runner.snapshot(None)}

        return handle

    async def _relay(self, runner: GameRunner, name: str, data: Any) -> dict[str, Any]:
        """A TUIZ host's relay: the step it names, or the command, if it still changes
        something. One already taken (the REST call did it) is not an error: the client
        relays every step it makes, and a `game:error` would only confuse it."""
        d = data if isinstance(data, dict) else {}
        host = runner.game.host_id
        if name in TUIZ_RELAYS:
            if name == "game:started" and runner.game.phase is not Phase.WAITING:
                return {"ok": True}
            command = TUIZ_RELAYS[name](host, d)
        else:
            command = HOST_COMMANDS[name](host, d)
        if command is None:
            return {"ok": True}
        try:
            await runner.execute(command)
        except GameError as exc:
            return {"ok": False, **exc.to_payload()}
        return {"ok": True}

    async def _answer(self, client: Client, data: Any) -> dict[str, Any]:
        payload = parse(AnswerSubmit, data)
        runner = await self.hub.get(payload.game_id)
        player_id = client.seats.get(runner.game_id)
        if player_id is None or (payload.player_id and payload.player_id != player_id):
            raise TuizError(ErrorCode.FORBIDDEN, "this socket does not hold that seat")
        command = answer_command(
            player_id,
            payload.question_id,
            answer_id=payload.answer_id,
            choice_ids=payload.choice_ids,
            answer=payload.answer,
            text=payload.text,
        )
        # The runner also sends `game:answer:accepted` to the seat's sockets (this one
        # included) and the host's: the TUIZ client waits for that event, not this ack.
        return answer_accepted(runner, await runner.answer(command))

    async def _state(self, client: Client, data: Any) -> dict[str, Any]:
        runner = await self._runner_for(client, data)
        if runner.game_id not in client.seats:
            raise TuizError(ErrorCode.FORBIDDEN, "join the game first")
        return {"ok": True, "snapshot": runner.snapshot(client.seats[runner.game_id])}

    async def _leaderboard(self, client: Client, data: Any) -> dict[str, Any]:
        runner = await self._runner_for(client, data)
        if runner.game_id not in client.seats:
            raise TuizError(ErrorCode.FORBIDDEN, "join the game first")
        size = runner.game.settings.leaderboard_size
        return {"ok": True, "leaderboard": board(runner.game, size)}

    async def _on_disconnect(self, client: Client) -> None:
        for game_id in list(client.seats):
            runner = self.hub.runners.get(game_id)
            if runner is not None:
                await runner.unseat_socket(client.sid)
