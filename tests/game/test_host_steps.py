"""Host-driven games (the TUIZ web client's host): named, idempotent steps and a countdown."""

from __future__ import annotations

import copy

import pytest

from tuiz.errors import ErrorCode
from tuiz.game.engine import Game
from tuiz.game.model import (
    GameEnded,
    GameError,
    HostStep,
    Phase,
    PhaseChanged,
    Start,
    Tick,
)
from tuiz.game.scoring import score_answer

from .helpers import HOST, T0, answer, join, mc, new_game, quiz

SHOW, ANSWER = 2, 10  # seconds


def tuiz_game(questions: int = 2, **kw: object) -> Game:
    q = quiz(
        *(
            mc(f"q{i}", show_question_time=SHOW, answering_time=ANSWER, explanation=True)
            for i in range(1, questions + 1)
        )
    )
    game = new_game(q, tuiz_client=True, **kw)
    join(game, "p1")
    join(game, "p2")
    return game


def step(game: Game, to: Phase, now: int, index: int | None = None) -> list[object]:
    return game.handle(HostStep(HOST, to, index), now)


def unchanged(game: Game, to: Phase, now: int, index: int | None = None) -> None:
    """The step is one the game is at or past: it changes nothing at all."""
    before = copy.deepcopy(vars(game))
    assert step(game, to, now, index) == []
    assert vars(game) == before


def test_start_goes_to_a_countdown_and_waits_for_the_host() -> None:
    game = tuiz_game()
    events = game.handle(Start(HOST), T0)
    assert [e.phase for e in events if isinstance(e, PhaseChanged)] == [Phase.COUNTDOWN]
    assert game.phase is Phase.COUNTDOWN and game.question_index == 0
    assert game.next_deadline() is None  # no timer: the host opens the question
    assert game.current_question is None  # nothing of question 1 is shown yet
    assert game.handle(Tick(None), T0 + 3_600_000) == []


def test_a_whole_game_in_the_clients_order_with_every_step_repeated() -> None:
    game = tuiz_game()
    game.handle(Start(HOST), T0)
    now = T0 + 3500
    for index in range(2):
        step(game, Phase.QUESTION, now, index)
        assert game.phase is Phase.QUESTION
        unchanged(game, Phase.QUESTION, now + 10, index)
        opened = now + SHOW * 1000
        game.handle(Tick(None), opened)
        assert game.phase is Phase.ANSWERING and game.phase_ends_at == opened + ANSWER * 1000
        answer(game, "p1", opened + 1000, "a")
        step(game, Phase.ANSWER_REVEAL, opened + 2000)
        assert game.phase is Phase.ANSWER_REVEAL and game.next_deadline() is None
        unchanged(game, Phase.ANSWER_REVEAL, opened + 2100)
        unchanged(game, Phase.QUESTION, opened + 2100, index)  # a late start
        step(game, Phase.LEADERBOARD, opened + 3000)
        unchanged(game, Phase.ANSWER_REVEAL, opened + 3100)  # a late reveal
        step(game, Phase.EXPLANATION, opened + 4000)
        unchanged(game, Phase.LEADERBOARD, opened + 4100)
        now = opened + 5000
        if index == 0:
            step(game, Phase.COUNTDOWN, now)
            assert game.phase is Phase.COUNTDOWN and game.question_index == 1
            unchanged(game, Phase.COUNTDOWN, now + 10)  # `questions/next` twice
            unchanged(game, Phase.ANSWER_REVEAL, now + 10)  # a late reveal of question 1
            now += 3500
    events = step(game, Phase.COUNTDOWN, now)  # `next` after the last question: the podium
    assert any(isinstance(e, GameEnded) for e in events)
    assert game.phase is Phase.PODIUM
    unchanged(game, Phase.PODIUM, now + 10)
    unchanged(game, Phase.ANSWER_REVEAL, now + 10)
    # One answer each question, 1 s into 10 s: the server's rule on the server's clock.
    expected = score_answer(
        game.quiz.questions[0],
        ("a",),
        None,
        elapsed_ms=1000,
        streak_before=0,
        settings=game.settings,
    ).points
    assert game.players["p1"].score == 2 * expected and game.players["p2"].score == 0


def test_answers_close_at_the_servers_deadline_whatever_the_host_does() -> None:
    game = tuiz_game()
    game.handle(Start(HOST), T0)
    step(game, Phase.QUESTION, T0, 0)
    deadline = T0 + (SHOW + ANSWER) * 1000
    answer(game, "p1", deadline, "a")  # the deadline ms itself still counts
    with pytest.raises(GameError) as info:
        answer(game, "p2", deadline + 1, "a")
    assert info.value.code is ErrorCode.TOO_LATE
    game.handle(Tick(None), deadline + 1)
    assert game.phase is Phase.ANSWER_REVEAL  # closed by the server, not by the host


def test_podium_from_the_last_questions_reveal_and_not_before() -> None:
    game = tuiz_game(questions=1)
    game.handle(Start(HOST), T0)
    with pytest.raises(GameError):
        step(game, Phase.PODIUM, T0)
    step(game, Phase.QUESTION, T0, 0)
    with pytest.raises(GameError):
        step(game, Phase.PODIUM, T0 + 10)
    step(game, Phase.ANSWER_REVEAL, T0 + 20)
    step(game, Phase.PODIUM, T0 + 30)
    assert game.phase is Phase.PODIUM and game.completed is True


def test_steps_out_of_order_are_refused_and_change_nothing() -> None:
    game = tuiz_game()
    with pytest.raises(GameError):
        step(game, Phase.QUESTION, T0, 0)  # not started
    game.handle(Start(HOST), T0)
    for to, index in ((Phase.LEADERBOARD, 0), (Phase.QUESTION, 1), (Phase.EXPLANATION, None)):
        before = copy.deepcopy(vars(game))
        with pytest.raises(GameError):
            step(game, to, T0 + 1, index)
        assert vars(game) == before
    assert game.phase is Phase.COUNTDOWN


def test_replay_rebuilds_a_host_driven_game() -> None:
    game = tuiz_game()
    log = list(game.handle(Start(HOST), T0))
    log += step(game, Phase.QUESTION, T0 + 1, 0)
    log += game.handle(Tick(None), T0 + 1 + SHOW * 1000)
    log += answer(game, "p2", T0 + 1 + SHOW * 1000 + 500, "b")
    log += step(game, Phase.ANSWER_REVEAL, T0 + 5000 + SHOW * 1000)
    copy_ = tuiz_game()
    for event in log:
        copy_.apply(event)  # type: ignore[arg-type]
    assert copy_.phase is game.phase and copy_.answering_window == game.answering_window
    assert copy_.players["p2"].answers == game.players["p2"].answers
