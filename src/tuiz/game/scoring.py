"""Scoring: Kahoot-compatible points, streak bonus, answer correctness and text matching.

Pure functions over integers, so a score computed live is bit-for-bit the one a report or a
test recomputes; the engine stores the result in `AnswerAccepted` and replay never calls here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from tuiz.game.model import GameSettings, Question, QuestionType

FULL_POINTS_MS = 500  # answers faster than this earn full points
STREAK_STEP = 100
STREAK_MAX_STEPS = 5


def normalise_text(text: str) -> str:
    """NFKC + casefold + trimmed, single-spaced: 'Ｔｏｋｙｏ  ' matches 'tokyo'.

    NFKC runs again after casefold because casefolding can produce unnormalised sequences.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def time_points(points: int, elapsed_ms: int, answering_ms: int, *, time_bonus: bool = True) -> int:
    """`round(points × (1 − (t/T)/2))`, full points under 0.5 s or without a time bonus.

    Integer arithmetic with round-half-up (not Python's banker's rounding), so 0.5 always
    rounds the same way on every platform. `t` is clamped to [0, T]: never above `points`,
    never below half of it, never negative.
    """
    points = max(points, 0)
    if not time_bonus or answering_ms <= 0 or elapsed_ms < FULL_POINTS_MS:
        return points
    t = min(max(elapsed_ms, 0), answering_ms)
    numerator = points * (2 * answering_ms - t)
    denominator = 2 * answering_ms
    return (2 * numerator + denominator) // (2 * denominator)


def streak_bonus(streak: int) -> int:
    """+100 per consecutive correct answer after the first, capped at +500."""
    return STREAK_STEP * min(max(streak - 1, 0), STREAK_MAX_STEPS)


def correct_texts(question: Question) -> set[str]:
    """Accepted type-answer texts, normalised; correct choices' texts when none are listed."""
    accepted = question.accepted_answers or tuple(c.text for c in question.choices if c.is_correct)
    return {normalise_text(a) for a in accepted if normalise_text(a)}


def is_correct(question: Question, choice_ids: tuple[str, ...], text: str | None) -> bool | None:
    """Whether an (already validated) answer is right; None for a poll, which has no right."""
    kind = question.type
    if kind is QuestionType.POLL:
        return None
    if kind is QuestionType.TYPE_ANSWER:
        return text is not None and normalise_text(text) in correct_texts(question)
    correct = {c.id for c in question.choices if c.is_correct}
    if kind is QuestionType.MULTI_SELECT:
        return set(choice_ids) == correct
    return len(choice_ids) == 1 and choice_ids[0] in correct


@dataclass(frozen=True, slots=True)
class Score:
    correct: bool | None
    points: int  # including `bonus`
    bonus: int
    streak: int  # the player's streak after this answer


def score_answer(
    question: Question,
    choice_ids: tuple[str, ...],
    text: str | None,
    *,
    elapsed_ms: int,
    streak_before: int,
    settings: GameSettings,
) -> Score:
    """Everything an accepted answer earns; a poll leaves the streak as it was."""
    correct = is_correct(question, choice_ids, text)
    if correct is None:
        return Score(correct=None, points=0, bonus=0, streak=streak_before)
    if not correct:
        return Score(correct=False, points=0, bonus=0, streak=0)
    streak = streak_before + 1
    base = time_points(
        question.points,
        elapsed_ms,
        question.answering_time * 1000,
        time_bonus=settings.time_bonus,
    )
    bonus = streak_bonus(streak) if settings.streak_bonus else 0
    return Score(correct=True, points=base + bonus, bonus=bonus, streak=streak)
