"""Scoring with exact numbers: Kahoot's time formula, streak bonus, correctness per type."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuiz.game.model import Choice, GameSettings, Question, QuestionType
from tuiz.game.scoring import (
    correct_texts,
    is_correct,
    normalise_text,
    score_answer,
    streak_bonus,
    time_points,
)


@pytest.mark.parametrize(
    ("points", "elapsed_ms", "answering_ms", "expected"),
    [
        (1000, 0, 20_000, 1000),
        (1000, 499, 20_000, 1000),  # under 0.5 s: full points
        (1000, 500, 20_000, 988),  # 1000 × (1 − 0.025/2) = 987.5 → 988 (half up)
        (1000, 5_000, 20_000, 875),
        (1000, 10_000, 20_000, 750),
        (1000, 20_000, 20_000, 500),  # at the deadline: half
        (1000, 25_000, 20_000, 500),  # clamped to the deadline
        (2000, 7_500, 30_000, 1750),
        (1, 20_000, 20_000, 1),  # 0.5 rounds up, not to even
        (3, 20_000, 20_000, 2),  # 1.5 → 2
        (0, 1_000, 20_000, 0),
        (1000, -5, 20_000, 1000),  # clock skew: never above points
        (1000, 3_000, 0, 1000),  # zero answering time: no time to lose points over
    ],
)
def test_time_points(points: int, elapsed_ms: int, answering_ms: int, expected: int) -> None:
    assert time_points(points, elapsed_ms, answering_ms) == expected


def test_no_time_bonus_gives_full_points() -> None:
    assert time_points(1000, 19_999, 20_000, time_bonus=False) == 1000


def test_negative_points_score_zero() -> None:
    assert time_points(-100, 1_000, 20_000) == 0


@given(
    points=st.integers(0, 10_000),
    elapsed=st.integers(-1_000, 200_000),
    answering=st.integers(1, 120_000),
)
def test_time_points_bounds(points: int, elapsed: int, answering: int) -> None:
    got = time_points(points, elapsed, answering)
    assert points // 2 <= got <= points
    t = min(max(elapsed, 0), answering)
    exact = points * (1 - Fraction(t, answering) / 2)  # exact: floats miss x.5 by 1e-13
    assert elapsed < 500 or abs(got - exact) <= 0.5


@pytest.mark.parametrize(
    ("streak", "bonus"), [(0, 0), (1, 0), (2, 100), (3, 200), (6, 500), (7, 500), (50, 500)]
)
def test_streak_bonus(streak: int, bonus: int) -> None:
    assert streak_bonus(streak) == bonus


def test_normalise_text() -> None:
    assert normalise_text("  Ｔｏｋｙｏ   Tower ") == "tokyo tower"
    assert normalise_text("STRASSE") == normalise_text("straße")
    assert normalise_text("ﾃｽﾄ") == normalise_text("テスト")


def _choices(*correct: str) -> tuple[Choice, ...]:
    return tuple(Choice(c, c.upper(), c in correct) for c in "abcd")


def test_is_correct_per_type() -> None:
    mc = Question("q", QuestionType.MULTIPLE_CHOICE, "?", choices=_choices("b"))
    assert is_correct(mc, ("b",), None) is True
    assert is_correct(mc, ("a",), None) is False
    tf = Question("q", QuestionType.TRUE_FALSE, "?", choices=_choices("a"))
    assert is_correct(tf, ("a",), None) is True
    ms = Question("q", QuestionType.MULTI_SELECT, "?", choices=_choices("a", "c"))
    assert is_correct(ms, ("c", "a"), None) is True
    assert is_correct(ms, ("a",), None) is False  # a subset is wrong
    assert is_correct(ms, ("a", "c", "d"), None) is False  # so is a superset
    poll = Question("q", QuestionType.POLL, "?", choices=_choices())
    assert is_correct(poll, ("a",), None) is None


def test_type_answer_matching() -> None:
    q = Question("q", QuestionType.TYPE_ANSWER, "?", accepted_answers=("Mount Fuji", "富士山"))
    assert is_correct(q, (), " mount   FUJI ") is True
    assert is_correct(q, (), "富士山") is True
    assert is_correct(q, (), "Fuji") is False
    # No accepted answers listed: the texts of correct choices count.
    fallback = Question(
        "q", QuestionType.TYPE_ANSWER, "?", choices=(Choice("x", "Ｐａｒｉｓ", True),)
    )
    assert correct_texts(fallback) == {"paris"}
    assert is_correct(fallback, (), "paris") is True


def test_score_answer_streaks() -> None:
    q = Question(
        "q",
        QuestionType.MULTIPLE_CHOICE,
        "?",
        points=1000,
        answering_time=20,
        choices=_choices("a"),
    )
    on = GameSettings(streak_bonus=True)
    s = score_answer(q, ("a",), None, elapsed_ms=5_000, streak_before=2, settings=on)
    assert (s.correct, s.points, s.bonus, s.streak) == (True, 875 + 200, 200, 3)
    off = score_answer(q, ("a",), None, elapsed_ms=5_000, streak_before=2, settings=GameSettings())
    assert (off.points, off.bonus, off.streak) == (875, 0, 3)
    wrong = score_answer(q, ("b",), None, elapsed_ms=100, streak_before=4, settings=on)
    assert (wrong.correct, wrong.points, wrong.streak) == (False, 0, 0)
    poll = Question("p", QuestionType.POLL, "?", choices=_choices())
    p = score_answer(poll, ("a",), None, elapsed_ms=100, streak_before=4, settings=on)
    assert (p.correct, p.points, p.streak) == (None, 0, 4)
