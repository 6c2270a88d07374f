"""Game REST, in the TUIZ reference backend's paths; the engine stays the authority.

Hosts prove themselves with the game's host token (`x-host-token`) or, for games they own,
their JWT; players with their resume token (`x-resume-token`). A device id is a claim, never
a credential. Every response body comes from `live.views` for the caller's audience; anything
a client claims about correctness, time taken or points is ignored.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tuiz.api.deps import (
    CallerDep,
    ContextDep,
    PinLookupDep,
    limit_game_creation,
    limit_joins,
)
from tuiz.auth import Caller
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import (
    End,
    HostStep,
    Kick,
    Lock,
    Next,
    Pause,
    Phase,
    PlayerState,
    Resume,
    Skip,
    Start,
)
from tuiz.live import views
from tuiz.live.commands import answer_command
from tuiz.live.hub import GameHub, replay
from tuiz.live.runner import GameRunner, now_ms
from tuiz.live.views import Audience
from tuiz.realtime.protocol import JoinKey, check_device_id
from tuiz.store.quizzes import inline_quiz, load_quiz, parse_content

router = APIRouter(tags=["games"])


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateGame(Body):
    """A stored quiz (`quiz_set_id`) or, for a host without an account, the quiz itself."""

    quiz_set_id: uuid.UUID | None = None
    quiz: dict[str, Any] | None = None
    game_settings: dict[str, Any] = Field(default_factory=dict)
    device_id: str = Field(min_length=1, max_length=255)
    player_name: str = Field(default="Host", min_length=1, max_length=100)


class JoinBody(Body):
    player_name: str = Field(min_length=1, max_length=100)
    device_id: str = Field(min_length=1, max_length=255)
    join_key: JoinKey | None = None  # the same key again: this join's lost reply, resent


class QuestionStart(Body):
    question_id: str | None = Field(default=None, alias="questionId", max_length=64)
    question_index: int | None = Field(default=None, alias="questionIndex", ge=0, le=10_000)


class StatusBody(Body):
    action: Literal["pause", "resume", "end"]


class LockBody(Body):
    locked: bool


class AnswerBody(Body):
    question_id: str = Field(min_length=1, max_length=64)
    question_number: int | None = Field(default=None, ge=0, le=10_000)
    answer_id: str | None = Field(default=None, max_length=64)
    answer_ids: list[str] | None = Field(default=None, max_length=20)
    text: str | None = Field(default=None, max_length=200)
    client_answer_id: str | None = Field(default=None, max_length=64)


TUIZ_CLIENT_KEYS = ("show_question_only", "show_correct_answer")
"""Settings only the TUIZ web client sends (its quiz's `play_settings`); tuiz's own pages send
`auto_advance` instead."""


def client_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """`tuiz_client` when the caller does not say: on for the TUIZ client's request shape."""
    if "tuiz_client" in raw:
        return raw
    tuiz = "auto_advance" not in raw and any(k in raw for k in TUIZ_CLIENT_KEYS)
    return {**raw, "tuiz_client": tuiz}


def _hub(request: Request) -> GameHub:
    hub: GameHub | None = request.app.state.ctx.hub
    if hub is None:
        raise TuizError(ErrorCode.UNAVAILABLE, "games need the PostgreSQL store")
    return hub


async def _runner(request: Request, game_id: str) -> GameRunner:
    return await _hub(request).get(game_id)


def _device(value: str) -> str:
    try:
        return check_device_id(value)
    except ValueError as exc:
        raise TuizError(ErrorCode.VALIDATION_ERROR, f"device_id: {exc}") from None


HostToken = Annotated[str | None, Header(alias="x-host-token", max_length=200)]
ResumeToken = Annotated[str | None, Header(alias="x-resume-token", max_length=200)]


@router.post("/games", status_code=201, dependencies=[Depends(limit_game_creation)])
async def create_game(request: Request, ctx: ContextDep, who: CallerDep, body: CreateGame) -> Any:
    """Create a game from a quiz the caller may play; the answer carries the host token."""
    hub = _hub(request)
    device = _device(body.device_id)
    if (body.quiz_set_id is None) == (body.quiz is None):
        raise TuizError(ErrorCode.VALIDATION_ERROR, "give either quiz_set_id or quiz")
    if body.quiz_set_id is not None:
        quiz = await load_quiz(ctx.require_pool(), body.quiz_set_id, caller=who)
    else:
        quiz = inline_quiz(parse_content(body.quiz))
    runner = await hub.create(
        quiz=quiz,
        quiz_set_id=body.quiz_set_id,
        raw_settings=client_settings(body.game_settings),
        user_id=who.user_id,
        host_device_id=device,
        host_name=" ".join(body.player_name.split()),
    )
    return views.created_game(runner, hub.host_token(runner), " ".join(body.player_name.split()))


@router.get("/games/by-code/{code}")
async def game_by_code(
    request: Request, code: str, who: CallerDep, lookup: PinLookupDep, token: HostToken = None
) -> Any:
    hub = _hub(request)
    record = await lookup(hub.by_pin, code)
    if record is None:
        raise TuizError(ErrorCode.NOT_FOUND, f"no game with PIN {code}")
    runner = await hub.get(record.id)
    return views.game_view(runner, hub.audience(runner, who, token))


@router.get("/games/{game_id}")
async def get_game(request: Request, game_id: str, who: CallerDep, token: HostToken = None) -> Any:
    hub = _hub(request)
    runner = await hub.get(game_id)
    return views.game_view(runner, hub.audience(runner, who, token))


@router.get("/games/{game_id}/state")
async def game_state(request: Request, game_id: str) -> Any:
    runner = await _runner(request, game_id)
    snapshot = runner.snapshot(None)
    snapshot.pop("answerCounts", None)  # the host's live tally
    return views.game_state(runner, snapshot)


async def _host_do(
    request: Request, game_id: str, who: Caller, token: str | None, make: Any
) -> Any:
    hub = _hub(request)
    runner = await hub.get(game_id)
    hub.require_host(runner, who, token)
    await runner.execute(make(runner.game.host_id))
    return views.game_view(runner, Audience.HOST)


@router.post("/games/{game_id}/start")
async def start_game(
    request: Request, game_id: str, who: CallerDep, token: HostToken = None
) -> Any:
    return await _host_do(request, game_id, who, token, lambda h: Start(actor=h))


@router.patch("/games/{game_id}/status")
async def game_status(
    request: Request, game_id: str, body: StatusBody, who: CallerDep, token: HostToken = None
) -> Any:
    make = {"pause": Pause, "resume": Resume, "end": End}[body.action]
    return await _host_do(request, game_id, who, token, lambda h: make(actor=h))


@router.patch("/games/{game_id}/lock")
async def lock_game(
    request: Request, game_id: str, body: LockBody, who: CallerDep, token: HostToken = None
) -> Any:
    return await _host_do(request, game_id, who, token, lambda h: Lock(actor=h, locked=body.locked))


async def _step(
    request: Request, game_id: str, who: Caller, token: str | None, step: str, body: Any
) -> Any:
    """One host step. Games the TUIZ client runs follow their host (`HostStep`: named and
    idempotent); tuiz's own auto-advance games keep the one-phase-forward meaning."""
    hub = _hub(request)
    runner = await hub.get(game_id)
    hub.require_host(runner, who, token)
    host = runner.game.host_id
    if runner.game.settings.tuiz_client:
        if step == "start" and runner.game.phase is Phase.WAITING:
            await runner.execute(Start(actor=host))
        target = {
            "start": Phase.ANSWERING,
            "reveal": Phase.ANSWER_REVEAL,
            "next": Phase.COUNTDOWN,
            "explanation": Phase.EXPLANATION,
        }.get(step)
        if target is not None:
            index = body.question_index if isinstance(body, QuestionStart) else None
            if index is None and isinstance(body, QuestionStart) and body.question_id:
                ids = [q.id for q in runner.game.quiz.questions]
                index = ids.index(body.question_id) if body.question_id in ids else None
            await runner.execute(HostStep(actor=host, to=target, question_index=index))
        return views.step_result(runner, step)
    make: Any = {"start": Next, "next": Next, "reveal": Skip}.get(step, Next)
    if step == "start" and runner.game.phase is Phase.WAITING:
        make = Start
    await runner.execute(make(actor=host))
    return {**views.game_view(runner, Audience.HOST), **views.step_result(runner, step)}


@router.post("/games/{game_id}/questions/start")
async def question_start(
    request: Request,
    game_id: str,
    who: CallerDep,
    token: HostToken = None,
    body: QuestionStart | None = None,
) -> Any:
    """Open the named question (TUIZ client games) or advance one phase."""
    return await _step(request, game_id, who, token, "start", body or QuestionStart())


@router.post("/games/{game_id}/questions/{step}")
async def question_step(
    request: Request,
    game_id: str,
    step: Literal["reveal", "next"],
    who: CallerDep,
    token: HostToken = None,
) -> Any:
    """`reveal` closes answering now; `next` goes to the next question (or the podium)."""
    return await _step(request, game_id, who, token, step, None)


@router.post("/games/{game_id}/questions/explanation/{action}")
async def explanation_step(
    request: Request,
    game_id: str,
    action: Literal["show", "hide"],
    who: CallerDep,
    token: HostToken = None,
) -> Any:
    """`show` enters the explanation phase; `hide` changes nothing in TUIZ client games (the
    host's next step does), and advances one phase in tuiz's own games."""
    step = "explanation" if action == "show" else "hide"
    return await _step(request, game_id, who, token, step, None)


@router.get("/games/{game_id}/questions/current")
async def current_question(request: Request, game_id: str) -> Any:
    body = views.tuiz_current_question(await _runner(request, game_id), now_ms())
    if body is None:
        raise TuizError(ErrorCode.NOT_FOUND, "no question is running")
    return body


@router.get("/games/{game_id}/questions/{question_id}/explanation")
async def question_explanation(request: Request, game_id: str, question_id: str) -> Any:
    runner = await _runner(request, game_id)
    game = runner.game
    question = next((q for q in game.quiz.questions if q.id == question_id), None)
    if question is None:
        raise TuizError(ErrorCode.NOT_FOUND, f"no question {question_id} in this game")
    if question_id not in views.revealed_questions(game):
        raise TuizError(ErrorCode.WRONG_PHASE, "the explanation comes after the answers close")
    e = question.explanation
    return {
        "question_id": question_id,
        "explanation_title": e.title if e else None,
        "explanation_text": e.text if e else None,
        "explanation_image_url": e.image_url if e else None,
        "show_explanation_time": question.show_explanation_time,
    }


@router.post("/games/{game_id}/join", status_code=201, dependencies=[Depends(limit_joins)])
async def join_game(request: Request, game_id: str, body: JoinBody) -> Any:
    hub = _hub(request)
    runner = await hub.get(game_id)
    device = _device(body.device_id)
    player_id = await hub.join(runner, device, body.player_name, join_key=body.join_key)
    player = runner.game.players[player_id]
    return views.joined(runner, player, hub.seat_token(runner, player_id, device))


@router.get("/games/{game_id}/players")
async def list_players(
    request: Request,
    game_id: str,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    return views.player_list(await _runner(request, game_id), limit, offset)


def _player(runner: GameRunner, player_id: str) -> PlayerState:
    player = runner.game.players.get(player_id)
    if player is None:
        raise TuizError(ErrorCode.NOT_FOUND, f"no player {player_id} in this game")
    return player


@router.post("/games/{game_id}/players/{player_id}/data", status_code=201)
async def player_data_init(request: Request, game_id: str, player_id: str) -> Any:
    """The client creates its score row after joining; tuiz made it at the join: 409."""
    _player(await _runner(request, game_id), player_id)
    raise TuizError(ErrorCode.CONFLICT, "Player data already exists")


@router.get("/games/{game_id}/players/{player_id}/data")
async def player_data(request: Request, game_id: str, player_id: str) -> Any:
    runner = await _runner(request, game_id)
    return views.player_data(runner, _player(runner, player_id))


@router.get("/games/{game_id}/players/{player_id}/stats")
async def player_stats(request: Request, game_id: str, player_id: str) -> Any:
    runner = await _runner(request, game_id)
    return views.player_stats(runner, _player(runner, player_id))


@router.delete("/games/{game_id}/players/{player_id}")
async def kick_player(
    request: Request,
    game_id: str,
    player_id: str,
    who: CallerDep,
    token: HostToken = None,
    ban: Annotated[bool, Query()] = False,
) -> Any:
    return await _host_do(
        request, game_id, who, token, lambda h: Kick(actor=h, player_id=player_id, ban=ban)
    )


@router.post("/games/{game_id}/players/{player_id}/answer", status_code=201)
async def submit_answer(
    request: Request,
    game_id: str,
    player_id: str,
    body: AnswerBody,
    token: ResumeToken = None,
) -> Any:
    """Durable before it answers; 409 when this player already answered differently.

    In TUIZ client games a call without the seat's resume token records nothing: it names
    only a player id anyone can read. The answer counts from the seat's bound socket
    (`game:answer:submit`, which the client sends right after); this answers in the shape the
    client reads, with revealed results only (docs/tuiz-client-protocol.md)."""
    hub = _hub(request)
    runner = await hub.get(game_id)
    if token is None and runner.game.settings.tuiz_client:
        player = _player(runner, player_id)
        if body.question_id in player.answers and not body.client_answer_id:
            raise TuizError(ErrorCode.CONFLICT, "Answer already submitted for this question")
        return views.answer_received(runner, player)
    hub.check_seat(runner, player_id, token)
    command = answer_command(
        player_id,
        body.question_id,
        answer_id=body.client_answer_id,
        choice_ids=body.answer_ids,
        answer=body.answer_id,
        text=body.text,
    )
    return views.answer_accepted(runner, await runner.answer(command))


@router.get("/games/{game_id}/players/{player_id}/answers")
async def player_answers(
    request: Request,
    game_id: str,
    player_id: str,
    who: CallerDep,
    host_token: HostToken = None,
    token: ResumeToken = None,
) -> Any:
    """A player's answers, to that player (resume token) or the host."""
    hub = _hub(request)
    runner = await hub.get(game_id)
    player = runner.game.players.get(player_id)
    if player is None:
        raise TuizError(ErrorCode.NOT_FOUND, f"no player {player_id} in this game")
    if runner.game.settings.tuiz_client:  # the client's bare array; revealed results only
        host = hub.is_host(runner, who, host_token)
        return views.tuiz_answers(runner, player, Audience.HOST if host else Audience.PUBLIC)
    if hub.is_host(runner, who, host_token):
        return views.player_answers(runner, player, Audience.HOST)
    hub.check_seat(runner, player_id, token)
    return views.player_answers(runner, player, Audience.PLAYER)


@router.get("/games/{game_id}/leaderboard")
async def leaderboard(
    request: Request, game_id: str, limit: Annotated[int, Query(ge=1, le=5000)] = 10
) -> Any:
    return views.leaderboard_entries(await _runner(request, game_id), limit)


@router.get("/games/{game_id}/report")
async def game_report(
    request: Request,
    game_id: str,
    who: CallerDep,
    token: HostToken = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Every answer with its outcome: the host's and the service role's, nobody else's."""
    hub = _hub(request)
    runner = await hub.get(game_id)
    hub.require_host(runner, who, token)
    data = views.report(runner)
    if format == "json":
        return data
    return Response(
        views.report_csv(data),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="tuiz-{game_id}.csv"'},
    )


@router.get("/games/{game_id}/replay")
async def game_replay(
    request: Request, game_id: str, who: CallerDep, token: HostToken = None
) -> Any:
    """The game rebuilt from its event log alone (host and service only: true scores)."""
    hub = _hub(request)
    runner = await hub.get(game_id)
    hub.require_host(runner, who, token)
    game, last_seq = await replay(hub.events, runner.record.id)
    return {
        "game_id": game_id,
        "last_seq": last_seq,
        "status": game.status.value,
        "phase": game.phase.value,
        "leaderboard": views.report_rows(game),
    }


@router.get("/stats/daily")
async def stats_daily(
    ctx: ContextDep, who: CallerDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> Any:
    if not who.is_service:
        raise TuizError(ErrorCode.FORBIDDEN, "statistics need the service key")
    rows = await ctx.require_pool().fetch(
        "SELECT * FROM public.get_daily_connection_stats(days_back => $1)", days
    )
    return {"days": [{**dict(r), "date": r["date"].isoformat()} for r in rows]}


@router.get("/stats/completion")
async def stats_completion(ctx: ContextDep, who: CallerDep) -> Any:
    if not who.is_service:
        raise TuizError(ErrorCode.FORBIDDEN, "statistics need the service key")
    rows = await ctx.require_pool().fetch("SELECT * FROM public.get_game_completion_stats()")
    return {
        "completion": [
            {**dict(r), "completion_rate": float(r["completion_rate"] or 0)} for r in rows
        ]
    }


@router.get("/games")
async def recent_games(
    ctx: ContextDep, who: CallerDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> Any:
    """Recent games (service key: all; a user: the games they host)."""
    if not (who.is_service or who.user_id):
        raise TuizError(ErrorCode.UNAUTHORIZED, "sign in or use the service key")
    rows = await ctx.require_pool().fetch(
        """
        SELECT g.id, g.game_code, g.status::text AS status, g.current_players, g.created_at,
               g.ended_at, q.title AS quiz_title
          FROM public.games g LEFT JOIN public.quiz_sets q ON q.id = g.quiz_set_id
         WHERE $1::uuid IS NULL OR g.user_id = $1
         ORDER BY g.created_at DESC LIMIT $2
        """,
        None if who.is_service else who.user_id,
        limit,
    )
    return {"games": [{**dict(r), "id": str(r["id"])} for r in rows]}
