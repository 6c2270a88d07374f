"""Every payload a live game sends out, per audience: the one place that decides who sees what.

Audiences: the host (and the service role), the player itself, and everyone else (other
players, screens, anonymous REST callers). The rule all of them follow: before a question's
reveal, only the host and the service role may learn which choices are correct, whether an
answer was correct, or any score change it caused. The engine's `standing` already gives
scores as of the last reveal; everything here reads that, never `PlayerState.score`, unless
the audience is the host or the service.

Socket payloads are camelCase (the TUIZ client's protocol), REST payloads snake_case (the TUIZ
backend's); each shape is built by exactly one function below and documented in
docs/game-protocol.md.
"""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tuiz.game.engine import Game
from tuiz.game.model import (
    AnswerAccepted,
    GameEnded,
    GamePaused,
    GameResumed,
    GameStarted,
    Phase,
    PhaseChanged,
    PlayerConnection,
    PlayerJoined,
    PlayerKicked,
    PlayerState,
    RoomLocked,
)

if TYPE_CHECKING:
    from tuiz.live.runner import GameRunner

Body = dict[str, Any]


class Audience(StrEnum):
    HOST = "host"  # the game's host, or the service role
    PLAYER = "player"  # a player about its own seat
    PUBLIC = "public"  # anyone else: other players, screens, anonymous callers


class To(StrEnum):
    """Where a socket message goes; `PLAYER` messages name their player."""

    ROOM = "room"
    WATCHERS = "watchers"
    HOST = "host"
    PLAYER = "player"


# -- socket events ---------------------------------------------------------------------------


def base(runner: GameRunner, seq: int) -> Body:
    return {"roomId": runner.room, "gameId": runner.game_id, "seq": seq}


def entry(row: dict[str, Any]) -> Body:
    """A leaderboard row on the socket surface (the engine's rows are revealed standings)."""
    return {
        "playerId": row["player_id"],
        "name": row["name"],
        "score": row["score"],
        "rank": row["rank"],
        "correctCount": row["correct_count"],
    }


def board(game: Game, top: int | None) -> list[Body]:
    return [entry(row) for row in game.leaderboard(top)]


def question_ended(game: Game, b: Body) -> Body:
    question = game.current_question
    assert question is not None
    return {
        **b,
        "questionId": question.id,
        "correctChoiceIds": [c.id for c in question.choices if c.is_correct],
        "acceptedAnswers": list(question.accepted_answers),
        "counts": game.answer_counts(),
        "question": game.public_question(reveal=True) or {},
    }


def answer_stats(game: Game, b: Body) -> Body:
    """Counts per choice: the host's live tally while answering, everyone's at the reveal."""
    question = game.current_question
    return {
        **b,
        "questionId": question.id if question else None,
        "counts": game.answer_counts(),
        "answered": game.answered_count(),
        "total": sum(1 for _ in game.seated()),
    }


def player_result(
    game: Game, b: Body, question_id: str, player: PlayerState, ranks: dict[str, int]
) -> Body:
    """A player's own outcome of a revealed question (to that player only)."""
    answer = player.answers.get(question_id)
    standing = game.standing(player)
    return {
        **b,
        "questionId": question_id,
        "answered": answer is not None,
        "correct": answer.correct if answer else False,
        "points": answer.points if answer else 0,
        "score": standing.score,
        "rank": ranks.get(player.id),
        "streak": standing.streak,
    }


def answer_accepted(runner: GameRunner, accepted: AnswerAccepted) -> Body:
    """The acknowledgement of an answer: when it counted, never whether it was right."""
    return {
        "ok": True,
        "roomId": runner.room,
        "gameId": runner.game_id,
        "playerId": accepted.player_id,
        "questionId": accepted.question_id,
        "answerId": accepted.answer_id,
        "submittedAt": accepted.at,
        "elapsedMs": accepted.elapsed_ms,
    }


def event_messages(
    runner: GameRunner, event: object, seq: int
) -> list[tuple[To, str | None, str, Body]]:
    """The socket messages one durable event leads to: (to, player id, name, body).

    Called after the event is applied, so the game is as the event left it.
    """
    game = runner.game
    b = base(runner, seq)
    out: list[tuple[To, str | None, str, Body]] = []
    if isinstance(event, PlayerJoined):  # to the host and screens: N, not N², per lobby
        count = sum(1 for _ in game.seated())
        body = {**b, "playerId": event.player_id, "playerName": event.name, "playersCount": count}
        out.append((To.WATCHERS, None, "game:player-joined", body))
    elif isinstance(event, PlayerConnection):
        name = "game:player-reconnected" if event.connected else "game:player-left"
        out.append((To.WATCHERS, None, name, {**b, "playerId": event.player_id}))
    elif isinstance(event, PlayerKicked):
        body = {
            **b,
            "player_id": event.player_id,
            "player_name": game.players[event.player_id].name,
            "game_id": runner.game_id,
            "banned": event.banned,
            "kicked_by": "host",
            "timestamp": event.at,
        }
        out.append((To.PLAYER, event.player_id, "game:player-kicked", body))
        out.append((To.HOST, None, "game:player-kicked", body))
    elif isinstance(event, RoomLocked):
        out.append((To.ROOM, None, "game:room-locked", {**b, "locked": event.locked}))
    elif isinstance(event, GameStarted):
        body = {**b, "roomCode": runner.record.pin, "startedAt": event.at}
        out.append((To.ROOM, None, "game:started", body))
    elif isinstance(event, PhaseChanged):
        out.extend(_phase_messages(runner, event, b))
    elif isinstance(event, GamePaused):
        out.append((To.ROOM, None, "game:pause", {**b, "remainingMs": event.remaining_ms}))
    elif isinstance(event, GameResumed):
        out.append((To.ROOM, None, "game:resume", {**b, "endsAt": event.ends_at}))
    elif isinstance(event, GameEnded):
        body = {**b, "completed": event.completed, "podium": board(game, 3)}
        out.append((To.ROOM, None, "game:end", body))
    return out


def _phase_messages(
    runner: GameRunner, event: PhaseChanged, b: Body
) -> list[tuple[To, str | None, str, Body]]:
    game = runner.game
    phase_body = {
        **b,
        "phase": event.phase.value,
        "questionIndex": event.question_index,
        "questionId": event.question_id,
        "startedAt": event.at,
        "endsAt": event.ends_at,
    }
    out: list[tuple[To, str | None, str, Body]] = [(To.ROOM, None, "game:phase:change", phase_body)]
    question = game.current_question
    if event.phase in (Phase.QUESTION, Phase.ANSWERING):
        body = {
            **b,
            "question": {
                **(game.public_question(reveal=False) or {}),
                "index": event.question_index,
            },
            "phase": event.phase.value,
            "startsAt": event.at,
            "endsAt": event.ends_at,
            "totalQuestions": len(game.quiz.questions),
        }
        out.append((To.ROOM, None, "game:question:started", body))
    elif event.phase is Phase.ANSWER_REVEAL and question is not None:
        out.append((To.ROOM, None, "game:question:ended", question_ended(game, b)))
        stats = answer_stats(game, b)
        out.append((To.ROOM, None, "game:answer:stats", stats))
        out.append((To.ROOM, None, "game:answer:stats:update", stats))
    elif event.phase is Phase.EXPLANATION and question is not None:
        e = question.explanation
        body = {
            **b,
            "questionId": question.id,
            "explanation": {
                "title": e.title if e else None,
                "text": e.text if e else None,
                "image_url": e.image_url if e else None,
                "show_time": question.show_explanation_time,
            },
        }
        out.append((To.ROOM, None, "game:explanation:show", body))
    elif event.phase in (Phase.LEADERBOARD, Phase.PODIUM):
        body = {
            **b,
            "leaderboard": board(game, game.settings.leaderboard_size),
            "total": sum(1 for _ in game.seated()),
        }
        out.append((To.ROOM, None, "game:leaderboard:update", body))
    return out


def snapshot(game: Game, player_id: str | None, last_seq: int, now: int) -> Body:
    """What a (re)connecting player, or the host (None), needs to draw the screen."""
    snap = game.snapshot(player_id, now)
    body: Body = {
        "gameId": snap["game_id"],
        "pin": snap["pin"],
        "status": snap["status"],
        "phase": snap["phase"],
        "questionIndex": snap["question_index"],
        "totalQuestions": snap["question_count"],
        "questionId": snap["question_id"],
        "question": snap["question"],
        "phaseStartedAt": snap["phase_started_at"],
        "phaseEndsAt": snap["phase_ends_at"],
        "timeLeftMs": snap["time_left_ms"],
        "paused": snap["paused"],
        "locked": snap["locked"],
        "playersCount": snap["players_count"],
        "connectedCount": snap["connected_count"],
        "answeredCount": snap["answered_count"],
        "answerCounts": snap.get("answer_counts"),
        "leaderboard": [entry(r) for r in snap["top"]] if snap["top"] is not None else None,
        "lastSeq": last_seq,
        "serverTime": now,
    }
    if player_id is not None:
        me = snap["me"]
        body["me"] = None
        if me is not None:
            answer = me["answer"]
            body["me"] = {
                "playerId": me["player_id"],
                "name": me["name"],
                "kicked": me["kicked"],
                "score": me["score"],
                "streak": me["streak"],
                "correctCount": me["correct_count"],
                "rank": me["rank"],
                "canAnswer": me["can_answer"],
                "answer": None
                if answer is None
                else {
                    "questionId": snap["question_id"],
                    "answerId": answer["answer_id"],
                    "choiceIds": answer["choice_ids"],
                    "text": answer["text"],
                    "elapsedMs": answer["elapsed_ms"],
                    "at": answer["at"],
                    **{k: answer[k] for k in ("correct", "points", "streak") if k in answer},
                },
            }
    return body


# -- REST ------------------------------------------------------------------------------------


def game_view(runner: GameRunner, audience: Audience = Audience.PUBLIC) -> Body:
    """A game as REST shows it; the quiz it came from only to its host (a published quiz's
    id would lead a player to its content)."""
    game, record = runner.game, runner.record
    view: Body = {
        "id": runner.game_id,
        "game_code": record.pin,
        "status": game.status.value,
        "phase": game.phase.value,
        "locked": game.locked,
        "current_players": sum(1 for _ in game.seated()),
        "current_question_index": max(game.question_index, 0),
        "total_questions": len(game.quiz.questions),
        "game_settings": record.settings,
        "created_at": record.created_at.isoformat(),
        "quiz_title": game.quiz.title,
        "user_id": str(record.user_id) if record.user_id else None,
    }
    if audience is Audience.HOST:
        view["quiz_set_id"] = str(record.quiz_set_id) if record.quiz_set_id else None
        view["quiz_id"] = game.quiz.id
    return view


def players(runner: GameRunner) -> list[Body]:
    """The seats, as anyone may see them: no device ids, revealed scores only."""
    game = runner.game
    ranks = game.ranks()
    return [
        {
            "id": p.id,
            "player_name": p.name,
            "score": game.standing(p).score,
            "rank": ranks.get(p.id),
            "connected": p.connected,
            "kicked": p.kicked,
            "is_host": False,
            "joined_at": p.joined_at,
        }
        for p in game.players.values()
    ]


def leaderboard(runner: GameRunner, limit: int) -> Body:
    game = runner.game
    return {"leaderboard": game.leaderboard(limit), "total": sum(1 for _ in game.seated())}


def revealed_questions(game: Game) -> set[str]:
    """Questions whose results may be shown to anyone: answering is over for them."""
    ids = [q.id for q in game.quiz.questions]
    closed = set(ids[: max(game.question_index, 0)])
    current = game.current_question
    if current is not None and game.phase not in (Phase.QUESTION, Phase.ANSWERING):
        closed.add(current.id)
    return closed


def player_answers(runner: GameRunner, player: PlayerState, audience: Audience) -> Body:
    """A player's answers: to itself, correctness only once revealed; to the host, all."""
    visible = revealed_questions(runner.game)
    rows = []
    for a in player.answers.values():
        shown = audience is Audience.HOST or a.question_id in visible
        rows.append(
            {
                "question_id": a.question_id,
                "answer_id": a.answer_id,
                "choice_ids": list(a.choice_ids),
                "text": a.text,
                "elapsed_ms": a.elapsed_ms,
                "at": a.at,
                "correct": a.correct if shown else None,
                "points": a.points if shown else None,
            }
        )
    return {"answers": rows}


def current_question(runner: GameRunner) -> Body | None:
    game = runner.game
    question = game.current_question
    if question is None:
        return None
    return {
        "question": game.public_question(reveal=game.revealed()),
        "question_index": game.question_index,
        "total_questions": len(game.quiz.questions),
        "phase": game.phase.value,
        "time_limit": question.answering_time,
        "show_question_time": question.show_question_time,
        "ends_at": game.phase_ends_at,
    }


def report(runner: GameRunner) -> Body:
    """The host's report (host and service only): per question distribution, correct rate,
    average time; per player every answer with its outcome, and true scores."""
    game = runner.game
    seated = list(game.players.values())
    questions = []
    for index, q in enumerate(game.quiz.questions):
        answers = [p.answers[q.id] for p in seated if q.id in p.answers]
        distribution: dict[str, int] = {}
        for a in answers:
            for key in a.choice_ids or ((a.text or "").strip().casefold(),):
                distribution[key] = distribution.get(key, 0) + 1
        correct = [a for a in answers if a.correct]
        questions.append(
            {
                "index": index,
                "question_id": q.id,
                "text": q.text,
                "type": q.type.value,
                "answered": len(answers),
                "distribution": distribution,
                "correct_rate": round(len(correct) / len(answers), 4) if answers else None,
                "average_time_ms": round(sum(a.elapsed_ms for a in answers) / len(answers))
                if answers
                else None,
            }
        )
    rows = [
        {
            **row,
            "answers": {
                qid: {
                    "correct": a.correct,
                    "points": a.points,
                    "elapsed_ms": a.elapsed_ms,
                    "choice_ids": list(a.choice_ids),
                    "text": a.text,
                }
                for qid, a in game.players[row["player_id"]].answers.items()
            },
        }
        for row in report_rows(game)
    ]
    return {"game": game_view(runner, Audience.HOST), "questions": questions, "players": rows}


def report_rows(game: Game) -> list[Body]:
    """True scores in competition ranking, the open question included (host and service)."""
    ordered = sorted(game.seated(), key=lambda p: (-p.score, p.name.casefold(), p.id))
    rows: list[Body] = []
    rank, previous = 0, None
    for position, p in enumerate(ordered, start=1):
        if p.score != previous:
            rank, previous = position, p.score
        rows.append(
            {
                "player_id": p.id,
                "name": p.name,
                "score": p.score,
                "rank": rank,
                "correct_count": p.correct_count,
            }
        )
    return rows


FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A spreadsheet-safe cell: text a spreadsheet would run as a formula is quoted with `'`."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_LEAD) else text


def report_csv(data: Body) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    questions = data["questions"]
    writer.writerow(["rank", "player", "score", *[f"Q{q['index'] + 1}" for q in questions]])
    for row in data["players"]:
        cells: list[str] = []
        for q in questions:
            a = row["answers"].get(q["question_id"])
            cells.append("" if a is None else f"{'✓' if a['correct'] else '✗'} {a['points']}")
        writer.writerow([csv_cell(c) for c in (row["rank"], row["name"], row["score"], *cells)])
    return out.getvalue()


def missed_item(seq: int, event: str, body: Body) -> Body:
    """One event of a rejoin's catch-up: exactly what the socket would have received."""
    return {"seq": seq, "event": event, "data": body}
