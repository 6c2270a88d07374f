"""Socket events of live games: join, rejoin, host control, answers, state requests.

Payloads are validated here; the rules live in the engine and the ordering and durability in
`GameRunner`. Refusals go back as the acknowledgement `{ok: false, error, message}` and as
`game:error` (never `ws:error`, which makes the TUIZ client drop its registration).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AliasChoices, Field, StringConstraints

from tuiz.auth import same_token
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import SubmitAnswer
from tuiz.realtime.games import (
    HOST_COMMANDS,
    MISSED_EVENTS_MAX,
    GameHub,
    GameRunner,
    camel,
)
from tuiz.realtime.protocol import Payload, parse
from tuiz.realtime.server import Client, Realtime
from tuiz.store.games import GameRepository
from tuiz.store.rooms import RoomAccess

Pin = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class GameRef(Payload):
    game_id: Id = Field(validation_alias=AliasChoices("gameId", "roomId"))


class JoinGame(Payload):
    pin: Pin
    nickname: str = Field(validation_alias=AliasChoices("nickname", "playerName", "name"))


class RejoinGame(GameRef):
    player_id: Id = Field(alias="playerId")
    resume_token: str = Field(alias="resumeToken", max_length=200)
    last_seq: int | None = Field(default=None, alias="lastSeq", ge=0)


class HostJoin(GameRef):
    host_token: str = Field(alias="hostToken", max_length=200)


class AnswerSubmit(GameRef):
    player_id: Id | None = Field(default=None, alias="playerId")
    question_id: Id = Field(alias="questionId")
    answer_id: Id | None = Field(default=None, alias="answerId")
    choice_ids: list[Id] | None = Field(default=None, alias="choiceIds", max_length=20)
    answer: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=200)


def answer_command(
    player_id: str,
    question_id: str,
    *,
    answer_id: str | None,
    choice_ids: list[str] | None,
    answer: str | None,
    text: str | None,
) -> SubmitAnswer:
    """One shape for socket and REST answers; without a client id, one per player and
    question, so the TUIZ client's REST submit and its socket echo are the same answer."""
    choices = tuple(choice_ids or ([answer] if answer else []))
    return SubmitAnswer(
        actor=player_id,
        question_id=question_id,
        answer_id=answer_id or f"{player_id}:{question_id}",
        choice_ids=choices,
        text=text,
    )


def accepted_ack(runner: GameRunner, accepted: Any) -> dict[str, Any]:
    return {
        "ok": True,
        "gameId": runner.game_id,
        "playerId": accepted.player_id,
        "questionId": accepted.question_id,
        "answerId": accepted.answer_id,
        "submittedAt": accepted.at,
        "elapsedMs": accepted.elapsed_ms,
    }


class GameSockets:
    def __init__(self, realtime: Realtime, hub: GameHub, games: GameRepository) -> None:
        self.realtime = realtime
        self.hub = hub
        self.games = games
        on = realtime.on
        on("game:join", self._join, error_event="game:error")
        on("game:rejoin", self._rejoin, error_event="game:error")
        on("game:host:join", self._host_join, error_event="game:error")
        on("game:answer:submit", self._answer, error_event="game:error")
        on("game:state", self._state, error_event="game:error")
        on("game:leaderboard:request", self._leaderboard, error_event="game:error")
        for name in HOST_COMMANDS:
            on(name, self._host_command(name), error_event="game:error")
        realtime.disconnect_hooks.append(self._on_disconnect)

    async def _bind(self, client: Client, runner: GameRunner, player_id: str | None) -> None:
        """The socket now speaks for this seat: room, participant row, runner's seat map."""
        client.seats[runner.game_id] = player_id
        await runner.seat_socket(client.sid, player_id)
        if runner.room not in client.rooms:
            seat = player_id or runner.game.host_id
            access = RoomAccess(
                runner.record.id, uuid.UUID(seat), "player" if player_id else "host"
            )
            await self.realtime.join_room(client, runner.room, access)

    async def _join(self, client: Client, data: Any) -> dict[str, Any]:
        payload = parse(JoinGame, data)
        assert client.device_id is not None
        record = await self.games.by_pin(payload.pin)
        if record is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no game with PIN {payload.pin}")
        runner = await self.hub.get(record.id)
        player_id = await self.hub.join(runner, client.device_id, payload.nickname)
        await self._bind(client, runner, player_id)
        return {
            "ok": True,
            "gameId": runner.game_id,
            "playerId": player_id,
            "resumeToken": self.hub.tokens(runner, player_id, client.device_id),
            "snapshot": runner.snapshot(player_id),
        }

    async def _rejoin(self, client: Client, data: Any) -> dict[str, Any]:
        payload = parse(RejoinGame, data)
        assert client.device_id is not None
        runner = await self.hub.get(payload.game_id)
        player = runner.game.players.get(payload.player_id)
        expected = self.hub.tokens(runner, payload.player_id, client.device_id)
        if player is None or not same_token(expected, payload.resume_token):
            raise TuizError(ErrorCode.FORBIDDEN, "this device does not hold that seat")
        if player.kicked:
            raise TuizError(ErrorCode.FORBIDDEN, "you were removed from this game")
        await self._bind(client, runner, player.id)
        missed: list[dict[str, Any]] | None = None
        if payload.last_seq is not None and runner.last_seq - payload.last_seq <= MISSED_EVENTS_MAX:
            rows = await self.hub.events.read(
                runner.record.id, after_seq=payload.last_seq, limit=MISSED_EVENTS_MAX
            )
            missed = [{"seq": r.seq, "type": r.event_type, "payload": r.payload} for r in rows]
        return {"ok": True, "snapshot": runner.snapshot(player.id), "missed": missed}

    async def _host_join(self, client: Client, data: Any) -> dict[str, Any]:
        payload = parse(HostJoin, data)
        runner = await self.hub.get(payload.game_id)
        self.hub.check_host(runner, payload.host_token)
        await self._bind(client, runner, None)
        return {"ok": True, "snapshot": runner.snapshot(None)}

    async def _runner_for(self, client: Client, data: Any) -> GameRunner:
        ref = parse(GameRef, data if isinstance(data, dict) else {})
        return await self.hub.get(ref.game_id)

    def _is_host(self, client: Client, runner: GameRunner) -> bool:
        """A socket that presented the host token, or the TUIZ client's host: the host seat's
        device, signed in as the game's owner when the game has one."""
        if runner.game_id in client.seats and client.seats[runner.game_id] is None:
            return True
        record = runner.record
        return (
            client.device_id is not None
            and client.device_id == record.host_device_id
            and (record.user_id is None or client.caller.user_id == record.user_id)
        )

    def _host_command(self, name: str) -> Any:
        build = HOST_COMMANDS[name]

        async def handle(client: Client, data: Any) -> dict[str, Any]:
            runner = await self._runner_for(client, data)
            if not self._is_host(client, runner):
                raise TuizError(ErrorCode.FORBIDDEN, "only the host can do that")
            if runner.room not in client.rooms or runner.game_id not in client.seats:
                await self._bind(client, runner, None)
            await runner.execute(build(runner.game.host_id, data))
            return {"ok": True, "snapshot": runner.snapshot(None)}

        return handle

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
        accepted = await runner.answer(command)
        ack = accepted_ack(runner, accepted)
        sids = runner.seats.player_sids.get(player_id, set()) | runner.seats.host_sids
        for sid in sids:
            await self.realtime.sio.emit(
                "game:answer:accepted", {**ack, "roomId": runner.room}, to=sid
            )
        return ack

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
        return {"ok": True, "leaderboard": [camel(r) for r in runner.game.leaderboard(size)]}

    async def _on_disconnect(self, client: Client) -> None:
        for game_id in list(client.seats):
            runner = self.hub.runners.get(game_id)
            if runner is not None:
                await runner.unseat_socket(client.sid)
