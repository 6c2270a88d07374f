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
from datetime import UTC, datetime
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
        "total": game.seated_count,
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
        count = game.seated_count
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
    question = game.current_question
    if game.settings.tuiz_client and event.phase is Phase.ANSWERING:
        # The TUIZ client opens answering on its own timer within its "question" phase; its
        # host page knows no "answering" phase and would stall on one.
        return []
    to = To.ROOM
    if game.settings.tuiz_client and event.phase is Phase.QUESTION:
        # The TUIZ player page moves to a question on `game:question:started` (sent below) and
        # again on this phase change, to two different URLs a few ms apart; Next.js resolves
        # such racing navigations with a full page load, after which that page never attaches
        # its socket listeners (see docs/tuiz-client-protocol.md). Players get the one event.
        to = To.WATCHERS
    out: list[tuple[To, str | None, str, Body]] = [(to, None, "game:phase:change", phase_body)]
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
        if game.settings.tuiz_client:  # its player page takes the reveal's counts from this
            out.append((To.ROOM, None, "game:answer:locked", stats))
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
            "total": game.seated_count,
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
        "current_players": game.seated_count,
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
    return {"leaderboard": game.leaderboard(limit), "total": game.seated_count}


def revealed_questions(game: Game) -> set[str]:
    """Questions whose results may be shown to anyone: answering is over for them."""
    ids = [q.id for q in game.quiz.questions]
    closed = set(ids[: max(game.question_index, 0)])
    if game.phase in (Phase.PODIUM, Phase.ENDED):  # the game is over: every question played
        return set(ids[: game.question_index + 1])
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


# -- the TUIZ web client's REST shapes ---------------------------------------------------------
# Supersets where tuiz's own pages and tests read other names; docs/tuiz-client-protocol.md.


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as the ISO-8601 text the TUIZ client parses (UTC)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def tuiz_game(runner: GameRunner, audience: Audience = Audience.PUBLIC) -> Body:
    """The client's `Game`: tuiz's game view plus its timestamps and `room_code`."""
    game = runner.game
    view = game_view(runner, audience)
    view.update(
        room_code=runner.record.pin,
        started_at=iso(game.started_at),
        ended_at=iso(game.ended_at),
        paused_at=iso(game.paused_at),
        resumed_at=None,
        updated_at=iso(max(game.phase_started_at, game.created_at)),
    )
    return view


def game_flow(runner: GameRunner) -> Body:
    """The client's `GameFlow`: which question is current and its answering window (during
    the countdown, the question about to open, with no times yet)."""
    game = runner.game
    questions = game.quiz.questions
    index = game.question_index
    current = questions[index] if 0 <= index < len(questions) else None
    following = questions[index + 1] if 0 <= index + 1 < len(questions) else None
    timed = game.phase in (Phase.QUESTION, Phase.ANSWERING, *REVEALED_PHASES)
    start = end = None
    if timed and current is not None and game.answering_window is not None:
        start, end = game.answering_window
    return {
        "id": runner.game_id,
        "game_id": runner.game_id,
        "current_question_id": current.id if current else None,
        "next_question_id": following.id if following else None,
        "current_question_index": max(index, 0),
        "current_question_start_time": iso(start),
        "current_question_end_time": iso(end),
        "is_paused": game.paused,
        "phase": game.phase.value,
        "created_at": runner.record.created_at.isoformat(),
        "updated_at": iso(game.phase_started_at),
    }


REVEALED_PHASES = (Phase.ANSWER_REVEAL, Phase.EXPLANATION, Phase.LEADERBOARD)


def game_state(runner: GameRunner, snapshot: Body) -> Body:
    """`GET /games/:id/state`: `{game, gameFlow}` beside tuiz's own public snapshot."""
    return {**snapshot, "game": tuiz_game(runner), "gameFlow": game_flow(runner)}


def created_game(runner: GameRunner, host_token: str, host_name: str) -> Body:
    """`POST /games`: the client reads `{game, host_player}`; tuiz's pages the flat fields."""
    game = runner.game
    host_player = {
        "id": game.host_id,
        "game_id": runner.game_id,
        "player_name": host_name,
        "is_host": True,
        "is_logged_in": runner.record.user_id is not None,
        "created_at": runner.record.created_at.isoformat(),
    }
    return {
        **game_view(runner, Audience.HOST),
        "game": tuiz_game(runner, Audience.HOST),
        "host_player": host_player,
        "host_player_id": game.host_id,
        "host_token": host_token,
    }


def joined(runner: GameRunner, player: PlayerState, resume_token: str) -> Body:
    """`POST /games/:id/join`: `{success, player}` for the client, the flat seat for tuiz's
    own callers; the device id is the caller's own."""
    seat = {
        "id": player.id,
        "game_id": runner.game_id,
        "player_name": player.name,
        "device_id": player.device_id,
        "is_host": False,
        "is_logged_in": False,
        "created_at": iso(player.joined_at),
        "updated_at": iso(player.joined_at),
    }
    return {
        **seat,
        "resume_token": resume_token,
        "success": True,
        "player": seat,
        "message": "joined",
    }


def player_list(runner: GameRunner, limit: int, offset: int) -> Body:
    """`GET /games/:id/players`. Device ids only in games the TUIZ client runs: its reload
    finds its seat by them (the setting's exposure, docs/tuiz-client-protocol.md)."""
    game = runner.game
    rows = players(runner)
    show_devices = game.settings.tuiz_client
    for row in rows:
        p = game.players[row["id"]]
        row.update(
            game_id=runner.game_id,
            is_logged_in=False,
            created_at=iso(p.joined_at),
            updated_at=iso(p.joined_at),
        )
        if show_devices:
            row["device_id"] = p.device_id
    page = rows[offset : offset + limit]
    return {
        "players": page,
        "total": len(rows),
        "game_id": runner.game_id,
        "limit": limit,
        "offset": offset,
    }


def leaderboard_entries(runner: GameRunner, limit: int) -> Body:
    """`GET /games/:id/leaderboard`: tuiz's rows and the client's `entries` (revealed scores)."""
    game = runner.game
    visible = revealed_questions(game)
    rows = game.leaderboard(limit)
    entries = []
    for row in rows:
        p = game.players[row["player_id"]]
        answered = sum(1 for qid in p.answers if qid in visible)
        entries.append(
            {
                "player_id": row["player_id"],
                "player_name": row["name"],
                "score": row["score"],
                "rank": row["rank"],
                "total_answers": answered,
                "correct_answers": row["correct_count"],
                "accuracy": round(100 * row["correct_count"] / answered, 1) if answered else 0,
                "is_host": False,
            }
        )
    return {
        "leaderboard": rows,
        "entries": entries,
        "total": game.seated_count,
        "game_id": runner.game_id,
    }


def tuiz_answers(runner: GameRunner, player: PlayerState, audience: Audience) -> list[Body]:
    """`GET …/players/:pid/answers` for TUIZ-client games: the client's bare `Answer[]`,
    correctness and points only once revealed (to the host: always)."""
    visible = revealed_questions(runner.game)
    out = []
    for a in player.answers.values():
        shown = audience is Audience.HOST or a.question_id in visible
        out.append(
            {
                "id": a.answer_id,
                "game_id": runner.game_id,
                "player_id": player.id,
                "question_id": a.question_id,
                "selected_option": a.choice_ids[0] if a.choice_ids else a.text,
                "is_correct": a.correct if shown else None,
                "response_time_ms": a.elapsed_ms,
                "points_earned": a.points if shown else 0,
                "answered_at": iso(a.at),
            }
        )
    return out


def answer_received(runner: GameRunner, player: PlayerState) -> Body:
    """The TUIZ client's REST answer, answered without a verdict: the client takes the last
    row of `answer_report.questions` as its result, so the list is empty (it keeps its own
    guess until the reveal) rather than ending with an earlier question's result."""
    body = player_data(runner, player)
    body["answer_report"]["questions"] = []
    return body


def player_data(runner: GameRunner, player: PlayerState) -> Body:
    """The client's `GamePlayerData`: revealed score and a report of revealed questions."""
    game = runner.game
    visible = revealed_questions(game)
    numbers = {q.id: i + 1 for i, q in enumerate(game.quiz.questions)}
    shown = [a for a in player.answers.values() if a.question_id in visible]
    standing = game.standing(player)
    questions = [
        {
            "question_id": a.question_id,
            "question_number": numbers[a.question_id],
            "answer_id": a.choice_ids[0] if a.choice_ids else None,
            "is_correct": bool(a.correct),
            "time_taken": round(a.elapsed_ms / 1000, 3),
            "points_earned": a.points,
            "answered_at": iso(a.at),
        }
        for a in shown
    ]
    correct = sum(1 for a in shown if a.correct)
    return {
        "id": player.id,
        "player_id": player.id,
        "game_id": runner.game_id,
        "score": standing.score,
        "answer_report": {
            "total_answers": len(shown),
            "correct_answers": correct,
            "incorrect_answers": len(shown) - correct,
            "questions": questions,
            "streaks": {"current_streak": standing.streak, "max_streak": standing.streak},
        },
        "created_at": iso(player.joined_at),
        "updated_at": iso(game.phase_started_at),
    }


def player_stats(runner: GameRunner, player: PlayerState) -> Body:
    """The client's `PlayerStats`, from revealed questions only."""
    report = player_data(runner, player)["answer_report"]
    times = [q["time_taken"] for q in report["questions"]]
    return {
        "total_answers": report["total_answers"],
        "correct_answers": report["correct_answers"],
        "incorrect_answers": report["incorrect_answers"],
        "average_response_time": round(sum(times) / len(times), 3) if times else 0,
        "best_streak": report["streaks"]["max_streak"],
    }


def tuiz_current_question(runner: GameRunner, now: int) -> Body | None:
    """`GET /games/:id/questions/current`: tuiz's shape plus the client's `answers[]`,
    whose `is_correct` is null until the question is revealed, and its clock fields."""
    body = current_question(runner)
    game = runner.game
    question = game.current_question
    if body is None or question is None:
        return None
    reveal = game.revealed()
    e = question.explanation
    body["question"].update(
        time_limit=question.answering_time,
        difficulty=None,
        explanation_title=e.title if (e and reveal) else None,
        explanation_text=e.text if (e and reveal) else None,
        explanation_image_url=e.image_url if (e and reveal) else None,
        show_explanation_time=question.show_explanation_time,
    )
    body["answers"] = [
        {
            "id": c.id,
            "text": c.text,
            "image_url": c.image_url,
            "is_correct": c.is_correct if reveal else None,
            "order_index": i,
        }
        for i, c in enumerate(question.choices)
    ]
    window = game.answering_window
    open_ = game.phase in (Phase.QUESTION, Phase.ANSWERING) and window is not None
    remaining = 0
    if open_ and window is not None and window[1] is not None:
        remaining = (game.time_left(now) or 0) if game.paused else max(0, window[1] - now)
    body.update(
        server_time=iso(now),
        start_time=iso(window[0]) if window else None,
        remaining_ms=remaining or 0,
        is_active=open_ and not game.paused,
    )
    return body


def step_result(runner: GameRunner, step: str) -> Body:
    """A host step's answer: the client reads `gameFlow` (or the flow itself for
    `questions/start`), `answerStats`, `nextQuestion`, `isComplete`, `explanation`."""
    game = runner.game
    flow = game_flow(runner)
    body: Body = {**flow, "message": f"{step} done", "gameFlow": flow, "game": tuiz_game(runner)}
    if flow["current_question_start_time"] is not None:
        window = game.answering_window
        if window is not None and window[1] is not None:
            body.update(starts_at=window[0], ends_at=window[1], duration_ms=window[1] - window[0])
    if step == "reveal":
        body["answerStats"] = game.answer_counts() if game.revealed() else {}
    if step == "next":
        done = game.phase in (Phase.PODIUM, Phase.ENDED)
        body["isComplete"] = done
        if not done:
            q = game.quiz.questions[game.question_index]
            body["nextQuestion"] = {"id": q.id, "index": game.question_index}
    if step == "explanation":
        question = game.quiz.questions[max(game.question_index, 0)]
        e = question.explanation
        body["explanation"] = {
            "title": e.title if e else None,
            "text": e.text if e else None,
            "image_url": e.image_url if e else None,
            "show_time": question.show_explanation_time,
        }
    return body
