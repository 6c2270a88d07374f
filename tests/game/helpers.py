"""Small builders for engine tests: quizzes, games and players in a few words."""

from __future__ import annotations

from typing import Any

from tuiz.game.engine import Game
from tuiz.game.model import (
    Choice,
    Explanation,
    GameSettings,
    Join,
    Question,
    QuestionType,
    Quiz,
    Start,
    SubmitAnswer,
    Tick,
)

HOST = "host"
T0 = 1_000_000


def mc(qid: str, *, correct: str = "a", explanation: bool = False, **kw: Any) -> Question:
    """A multiple-choice question with choices a, b, c, d."""
    choices = tuple(Choice(c, c.upper(), c == correct) for c in "abcd")
    expl = Explanation(title="why", text="because") if explanation else None
    return Question(
        qid, QuestionType.MULTIPLE_CHOICE, f"{qid}?", choices=choices, explanation=expl, **kw
    )


def quiz(*questions: Question) -> Quiz:
    return Quiz("quiz", "Quiz", questions or (mc("q1"), mc("q2")))


def new_game(q: Quiz | None = None, **settings: Any) -> Game:
    return Game.create(
        game_id="g1",
        pin="123456",
        quiz=q or quiz(),
        settings=GameSettings(**settings),
        host_id=HOST,
        host_device_id="host-device",
        now=T0,
    )


def join(
    game: Game, pid: str, *, now: int = T0, name: str | None = None, device: str | None = None
) -> None:
    game.handle(Join(None, pid, device or f"dev-{pid}", name or f"Player {pid}"), now)


def answering(game: Game, now: int = T0) -> int:
    """Start the game and open the first question's answers; returns when they opened."""
    game.handle(Start(HOST), now)
    if game.phase_ends_at is not None and game.phase.value == "question":
        opened = game.phase_ends_at
        game.handle(Tick(None), opened)
        return opened
    return now


def answer(
    game: Game,
    pid: str,
    now: int,
    *choices: str,
    aid: str | None = None,
    qid: str | None = None,
    text: str | None = None,
) -> list[Any]:
    question = game.current_question
    assert question is not None
    return game.handle(
        SubmitAnswer(pid, qid or question.id, aid or f"{pid}-{question.id}", tuple(choices), text),
        now,
    )
