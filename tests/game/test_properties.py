"""Property tests: random quizzes and random command streams against the engine's promises.

For any game: replaying its events on a fresh game rebuilds exactly the live state; scores stay
within [0, the most the quiz can give]; ranks follow scores; every event survives JSON; a
refused command changes nothing.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiz.game.engine import Game
from tuiz.game.model import (
    Choice,
    Command,
    End,
    Event,
    Explanation,
    GameError,
    GameSettings,
    Join,
    Kick,
    Lock,
    Next,
    Pause,
    Question,
    QuestionType,
    Quiz,
    Resume,
    SetConnected,
    Skip,
    Start,
    SubmitAnswer,
    Tick,
    event_from_dict,
)

HOST = "host"
PLAYERS = [f"p{i}" for i in range(6)]
DEVICES = [f"d{i}" for i in range(5)]
NAMES = ["Ann", "ann", "ＡＮＮ", "Bob", " bob ", "Cy", "ﾃｽﾄ", "テスト", "", "x" * 30, "Dee"]
TEXTS = ["Tokyo", " tokyo ", "Kyoto", "", "ＴＯＫＹＯ", "x" * 201]
CHOICE_IDS = ["a", "b", "c", "zz"]


@st.composite
def questions(draw: st.DrawFn, qid: str) -> Question:
    kind = draw(st.sampled_from(list(QuestionType)))
    n = 2 if kind is QuestionType.TRUE_FALSE else draw(st.integers(2, 3))
    correct = draw(
        st.sets(st.sampled_from(CHOICE_IDS[:n]), min_size=0 if kind is QuestionType.POLL else 1)
    )
    choices = tuple(Choice(c, c.upper(), c in correct) for c in CHOICE_IDS[:n])
    if kind is QuestionType.TYPE_ANSWER:
        choices = draw(st.sampled_from([(), (Choice("a", "Kyoto", True),)]))
    return Question(
        qid,
        kind,
        f"{qid}?",
        points=draw(st.sampled_from([0, 500, 1000, 2000])),
        show_question_time=draw(st.sampled_from([0, 0, 1, 3])),
        answering_time=draw(st.sampled_from([0, 1, 3, 10, 30, 30])),
        show_explanation_time=draw(st.integers(0, 3)),
        choices=choices,
        accepted_answers=draw(st.sampled_from([(), ("Tokyo",), ("tokyo", "Kyoto")])),
        explanation=draw(st.none() | st.just(Explanation(text="because"))),
    )


@st.composite
def quizzes(draw: st.DrawFn) -> Quiz:
    n = draw(st.sampled_from([0, 1, 2, 3, 4, 4]))
    return Quiz("quiz", "Quiz", tuple(draw(questions(f"q{i}")) for i in range(n)))


game_settings = st.builds(
    GameSettings,
    max_players=st.integers(1, 6),
    auto_advance=st.booleans(),
    late_join=st.booleans(),
    streak_bonus=st.booleans(),
    show_explanation=st.booleans(),
    time_bonus=st.booleans(),
    reveal_time=st.integers(0, 3),
    leaderboard_time=st.integers(0, 3),
    leaderboard_size=st.integers(1, 4),
    nickname_max=st.sampled_from([3, 20]),
)


@dataclass(frozen=True)
class Answer:
    """An answer whose question id is resolved against the game when it is sent."""

    player: int  # index into the seated players, so most answers come from real players
    question: str | None  # None: whatever question is current
    answer_id: str
    choice_ids: tuple[str, ...]
    text: str | None
    pick: int | None  # set: a well-formed answer to the current question, chosen by `pick`


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a strategy with the given weights (one_of would treat repeats as one)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


players = st.sampled_from(PLAYERS)
host_or_other = st.sampled_from([HOST, HOST, HOST, HOST, "p0", None])
answers = st.builds(
    Answer,
    st.integers(0, 7),
    st.sampled_from([None, None, None, None, "q0", "q1", "nope"]),
    st.sampled_from(["A", "A", "B"]),
    st.lists(st.sampled_from(CHOICE_IDS[:3]), min_size=1, max_size=2).map(tuple)
    | st.lists(st.sampled_from(CHOICE_IDS), max_size=3).map(tuple),
    st.none() | st.sampled_from(TEXTS),
    weighted((3, st.integers(1, 15)), (1, st.none())),
)
joins = st.builds(
    Join,
    st.none(),
    players,
    st.sampled_from(DEVICES) | players.map(lambda p: f"dev-{p}"),
    st.sampled_from(NAMES) | players.map(lambda p: f"Player {p}"),
)
# A lobby join that usually works: own device, own name.
seat = weighted(
    (3, players.map(lambda p: Join(None, p, f"dev-{p}", p.upper()))),
    (1, joins),
)
rare = st.one_of(
    st.builds(Start, host_or_other),
    st.builds(Pause, host_or_other),
    st.builds(Resume, host_or_other),
    st.builds(Lock, host_or_other, st.booleans()),
    st.builds(Kick, host_or_other, players, st.booleans()),
    st.builds(
        SetConnected,
        st.sampled_from([None, "p1", HOST]),
        st.sampled_from([*PLAYERS, HOST]),
        st.booleans(),
    ),
    joins,
)


# Mostly answers and time passing, now and then anything else.
operations = weighted(
    (8, answers),
    (3, st.builds(Tick, st.none())),
    (2, st.builds(Next, host_or_other)),
    (1, st.builds(Skip, host_or_other)),
    (3, rare),
    (1, st.builds(End, st.sampled_from([HOST, "p0"]))),
)
delays = st.sampled_from([0, 0, 0, 1, 1, 250, 499, 500, 1000, 2000, 4000, 20_000])
steps = st.tuples(
    st.lists(st.tuples(delays, seat), min_size=1, max_size=6),
    st.lists(st.tuples(delays, operations), max_size=40),
).map(lambda parts: [*parts[0], (0, Start(HOST)), *parts[1]])


def _command(game: Game, op: Command | Answer) -> Command:
    if not isinstance(op, Answer):
        return op
    current = game.current_question
    qid = op.question or (current.id if current else "q0")
    ids = list(game.players)
    player = ids[op.player % len(ids)] if ids and op.player < 6 else f"p{op.player}"
    answer_id = f"{player}-{qid}-{op.answer_id}"
    if op.pick is not None and current is not None and op.question is None:
        return SubmitAnswer(player, qid, answer_id, *_well_formed(current, op.pick))
    return SubmitAnswer(player, qid, answer_id, op.choice_ids, op.text)


def _well_formed(question: Question, pick: int) -> tuple[tuple[str, ...], str | None]:
    if question.type is QuestionType.TYPE_ANSWER:
        return (), ["Tokyo", " kyoto", "Osaka"][pick % 3]
    ids = [c.id for c in question.choices]
    if question.type is QuestionType.MULTI_SELECT:
        chosen = tuple(c for i, c in enumerate(ids) if pick >> i & 1)
        return chosen or (ids[0],), None
    return (ids[pick % len(ids)],), None


def _fresh(quiz: Quiz, game_settings: GameSettings) -> Game:
    return Game.create(
        game_id="g",
        pin="000000",
        quiz=quiz,
        settings=game_settings,
        host_id=HOST,
        host_device_id="hd",
        now=0,
    )


def _check_scores(game: Game) -> None:
    most = sum(max(q.points, 0) for q in game.quiz.questions)
    if game.settings.streak_bonus:
        most += 500 * len(game.quiz.questions)
    for p in game.players.values():
        assert 0 <= p.score <= most
        assert p.score == sum(a.points for a in p.answers.values())
        assert p.correct_count == sum(1 for a in p.answers.values() if a.correct)


def _check_ranks(game: Game) -> None:
    board = game.leaderboard()
    assert len(board) == sum(1 for p in game.players.values() if not p.kicked)
    for row in board:
        assert game.rank_of(row["player_id"]) == row["rank"]
        # Competition ranking: 1 + how many scored strictly more.
        assert row["rank"] == 1 + sum(1 for r in board if r["score"] > row["score"])
    for a in board:
        for b in board:
            if a["score"] > b["score"]:
                assert a["rank"] < b["rank"]
            if a["score"] == b["score"]:
                assert a["rank"] == b["rank"]
    assert [r["rank"] for r in board] == sorted(r["rank"] for r in board)


def _views(game: Game) -> dict[str, Any]:
    """Everything observable, for comparing a live game with its replay."""
    return {
        "phase": game.phase,
        "status": game.status,
        "deadline": (game.phase_started_at, game.phase_ends_at, game.next_deadline()),
        "leaderboard": game.leaderboard(),
        "counts": game.answer_counts(),
        "snapshots": [game.snapshot(p, now=10**9) for p in [None, *game.players]],
    }


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quiz=quizzes(), game_settings=game_settings, script=steps)
def test_random_games_keep_every_promise(
    quiz: Quiz, game_settings: GameSettings, script: list[tuple[int, Command | Answer]]
) -> None:
    game = _fresh(quiz, game_settings)
    log: list[Event] = []
    now = 0
    for delta, op in script:
        now += delta
        command = _command(game, op)
        before = copy.deepcopy(vars(game))
        try:
            events = game.handle(command, now)
        except GameError:
            assert vars(game) == before  # (e) refused: unchanged, catch-up included
            continue
        for event in events:
            wire = json.loads(json.dumps(event.to_dict()))
            assert event_from_dict(wire) == event  # (d)
        log.extend(events)
        _check_scores(game)  # (b)
    # Run the clock out: the game must always reach a rest.
    for _ in range(100):
        deadline = game.next_deadline()
        if deadline is None:
            break
        log.extend(game.handle(Tick(None), deadline))
    assert game.next_deadline() is None
    _check_scores(game)
    _check_ranks(game)  # (c)

    replayed = _fresh(quiz, game_settings)
    for event in log:
        replayed.apply(event_from_dict(json.loads(json.dumps(event.to_dict()))))
    assert vars(replayed) == vars(game)  # (a)
    assert _views(replayed) == _views(game)


@settings(max_examples=100, deadline=None)
@given(quiz=quizzes(), game_settings=game_settings, script=steps, cut=st.integers(0, 40))
def test_replay_of_a_prefix_then_continuing_matches(
    quiz: Quiz,
    game_settings: GameSettings,
    script: list[tuple[int, Command | Answer]],
    cut: int,
) -> None:
    """Crash recovery: rebuild from the log mid-game, then go on; same outcome as no crash."""
    live = _fresh(quiz, game_settings)
    log: list[Event] = []
    now = 0
    timed = []
    for delta, op in script:
        now += delta
        timed.append((now, op))
    recovered: Game | None = None
    for i, (at, op) in enumerate(timed):
        if i == cut:
            recovered = _fresh(quiz, game_settings)
            for event in log:
                recovered.apply(event)
        for game in (live,) if recovered is None else (live, recovered):
            try:
                events = game.handle(_command(game, op), at)
            except GameError:
                continue
            if game is live:
                log.extend(events)
    if recovered is not None:
        assert vars(recovered) == vars(live)


@st.composite
def played_quizzes(draw: st.DrawFn) -> Quiz:
    n = draw(st.integers(1, 4))
    return Quiz("quiz", "Quiz", tuple(draw(questions(f"q{i}")) for i in range(n)))


planned_answers = st.lists(
    st.tuples(
        st.integers(0, 5), st.sampled_from([0, 1, 300, 499, 500, 2_000, 7_000]), st.integers(1, 15)
    ),
    max_size=8,
)
interruptions = st.sampled_from(["none", "none", "pause", "skip", "kick", "disconnect", "late"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    quiz=played_quizzes(),
    game_settings=game_settings,
    n_players=st.integers(1, 6),
    rounds=st.lists(st.tuples(planned_answers, interruptions), min_size=4, max_size=4),
)
def test_answer_heavy_games_replay_exactly(
    quiz: Quiz,
    game_settings: GameSettings,
    n_players: int,
    rounds: list[tuple[list[tuple[int, int, int]], str]],
) -> None:
    """Whole games where most commands are well-formed answers, with the host meddling."""
    game = _fresh(quiz, game_settings)
    log: list[Event] = []
    now = 0

    def send(command: Command) -> None:
        before = copy.deepcopy(vars(game))
        try:
            log.extend(game.handle(command, now))
        except GameError:
            assert vars(game) == before

    for i in range(n_players):
        send(Join(None, f"p{i}", f"dev-p{i}", f"P{i}"))
    send(Start(HOST))
    for plan, interruption in rounds:
        if game.status.value == "finished":
            break
        if game.phase.value == "question":
            now = game.next_deadline() or now + 1
            send(Tick(None) if game.settings.auto_advance else Next(HOST))
        for n, (who, delay, pick) in enumerate(plan):
            now += delay
            if n == 1 and interruption == "pause":
                send(Pause(HOST))
                now += 60_000
                send(Resume(HOST))
            if n == 1 and interruption == "kick":
                send(Kick(HOST, f"p{who}", ban=pick % 2 == 0))
            if n == 1 and interruption == "disconnect":
                send(SetConnected(None, f"p{who}", False))
            if n == 1 and interruption == "late":
                send(Join(None, f"late{now}", f"dev-late{now}", f"L{now % 1000}"))
            current = game.current_question
            if current is None:
                break
            player = f"p{who % min(n_players, game.settings.max_players)}"
            answer_id = f"a-{player}-{current.id}"
            send(SubmitAnswer(player, current.id, answer_id, *_well_formed(current, pick)))
        if interruption == "skip":
            send(Skip(HOST))
        # On to the next question (or the podium).
        start_index = game.question_index
        for _ in range(10):
            if game.status.value == "finished" or game.question_index != start_index:
                break
            deadline = game.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
                send(Tick(None))
            else:
                now += 1
                send(Next(HOST))
    _check_scores(game)
    _check_ranks(game)
    for event in log:
        assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event
    replayed = _fresh(quiz, game_settings)
    for event in log:
        replayed.apply(event)
    assert vars(replayed) == vars(game)
    assert _views(replayed) == _views(game)
