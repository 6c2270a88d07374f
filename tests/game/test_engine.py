"""Engine rules, one at a time: lobby, host commands, phases, pause, answers, ranking, views."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tuiz.errors import ErrorCode
from tuiz.game.engine import Game
from tuiz.game.model import (
    AnswerAccepted,
    Choice,
    Command,
    End,
    GameEnded,
    GameError,
    GamePaused,
    GameResumed,
    GameStarted,
    GameStatus,
    Join,
    Kick,
    Lock,
    Next,
    Pause,
    Phase,
    PhaseChanged,
    PlayerConnection,
    PlayerJoined,
    PlayerKicked,
    Question,
    QuestionType,
    Quiz,
    Resume,
    RoomLocked,
    SetConnected,
    Skip,
    Start,
    StepRef,
    SubmitAnswer,
    Tick,
    event_from_dict,
)

from .helpers import HOST, T0, answer, answering, join, mc, new_game, quiz


def refused(game: Game, command: Command, now: int, code: ErrorCode) -> GameError:
    """Assert `command` is refused with `code` and leaves the game exactly as it was."""
    before = copy.deepcopy(vars(game))
    with pytest.raises(GameError) as info:
        game.handle(command, now)
    assert info.value.code is code, info.value.message
    assert vars(game) == before
    return info.value


def phases(events: list[Any]) -> list[Phase]:
    return [e.phase for e in events if isinstance(e, PhaseChanged)]


# -- create ----------------------------------------------------------------------------------


def test_create_starts_in_the_lobby() -> None:
    g = new_game()
    assert (g.phase, g.status, g.question_index, g.current_question) == (
        Phase.WAITING,
        GameStatus.WAITING,
        -1,
        None,
    )
    assert g.next_deadline() is None and g.players == {} and not g.locked


@pytest.mark.parametrize(
    "questions",
    [
        (mc("q1"), mc("q1")),
        (
            Question(
                "q", QuestionType.MULTIPLE_CHOICE, "?", choices=(Choice("a", "A"), Choice("a", "B"))
            ),
        ),
        (Question("q", QuestionType.POLL, "?"),),
        (mc("q", points=-1),),
        (mc("q", answering_time=-1),),
    ],
)
def test_create_refuses_a_quiz_it_cannot_run(questions: tuple[Question, ...]) -> None:
    with pytest.raises(GameError) as info:
        new_game(Quiz("z", "Z", questions))
    assert info.value.code is ErrorCode.VALIDATION_ERROR


# -- lobby -----------------------------------------------------------------------------------


def test_join_trims_and_collapses_the_name() -> None:
    g = new_game()
    events = g.handle(Join(None, "p1", "d1", "  Ada \t  Lovelace "), T0 + 5)
    assert events == [PlayerJoined("p1", "d1", "Ada Lovelace", T0 + 5)]
    assert g.players["p1"].name == "Ada Lovelace" and g.players["p1"].joined_at == T0 + 5
    assert g.player_by_device("d1") is g.players["p1"]


def test_a_join_keys_hash_is_on_the_seat_and_in_its_logged_event() -> None:
    g = new_game()
    (joined,) = g.handle(Join(None, "p1", "d1", "Ada", key_hash="ab" * 32), T0)
    g.handle(Join(None, "p2", "d2", "Bo"), T0)
    logged = joined.to_dict()
    assert logged["key_hash"] == "ab" * 32
    rebuilt = new_game()
    rebuilt.apply(event_from_dict(logged))
    rebuilt.apply(
        event_from_dict(
            {k: v for k, v in logged.items() if k != "key_hash"}
            | {"player_id": "p2", "device_id": "d2", "name": "Bo"}
        )
    )  # an event from before keys
    assert rebuilt.retried_seat("d1", "ab" * 32) is rebuilt.players["p1"]
    assert rebuilt.retried_seat("d1", "cd" * 32) is None
    assert rebuilt.retried_seat("d1", None) is None
    assert rebuilt.retried_seat("d2", "ab" * 32) is None  # its seat was taken without a key
    assert rebuilt.retried_seat("d3", "ab" * 32) is None
    assert rebuilt.players["p2"].key_hash is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 21, "a\x00b"])
def test_join_refuses_bad_names(name: str) -> None:
    refused(new_game(), Join(None, "p1", "d1", name), T0, ErrorCode.VALIDATION_ERROR)


def test_name_length_limit_is_a_setting() -> None:
    g = new_game(nickname_max=3)
    join(g, "p1", name="abc")
    refused(g, Join(None, "p2", "d2", "abcd"), T0, ErrorCode.VALIDATION_ERROR)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Alice", "alice"),
        ("Alice", " ALICE "),
        ("ＡＢＣ", "abc"),
        ("ﾃｽﾄ", "テスト"),
        ("a b", "a  b"),
    ],
)
def test_names_are_unique_case_and_width_insensitively(first: str, second: str) -> None:
    g = new_game()
    join(g, "p1", name=first)
    refused(g, Join(None, "p2", "d2", second), T0, ErrorCode.CONFLICT)


def test_player_id_cannot_be_reused_or_be_the_hosts() -> None:
    g = new_game()
    join(g, "p1")
    refused(g, Join(None, "p1", "other", "Other"), T0, ErrorCode.CONFLICT)
    refused(g, Join(None, HOST, "other", "Other"), T0, ErrorCode.CONFLICT)


def test_locked_game_refuses_new_players_but_not_reconnections() -> None:
    g = new_game()
    join(g, "p1")
    assert g.handle(Lock(HOST, True), T0) == [RoomLocked(True, T0)]
    assert g.handle(Lock(HOST, True), T0) == []  # already locked
    refused(g, Join(None, "p2", "d2", "Bob"), T0, ErrorCode.GAME_LOCKED)
    g.handle(SetConnected(None, "p1", False), T0 + 1)
    assert g.handle(Join(None, "ignored", "dev-p1", "whatever"), T0 + 2) == [
        PlayerConnection("p1", True, T0 + 2)
    ]
    assert g.players["p1"].connected
    assert g.handle(Join(None, "ignored", "dev-p1", "whatever"), T0 + 3) == []  # already on
    g.handle(Lock(HOST, False), T0 + 4)
    join(g, "p2")


def test_full_game_refuses_new_players_but_not_reconnections() -> None:
    g = new_game(max_players=2)
    join(g, "p1")
    join(g, "p2")
    err = refused(g, Join(None, "p3", "d3", "Carol"), T0, ErrorCode.GAME_FULL)
    assert "2" in err.message
    assert g.handle(Join(None, "x", "dev-p2", "Bob"), T0) == []


def test_kicked_seat_frees_room_and_name() -> None:
    g = new_game(max_players=1)
    join(g, "p1", name="Alice")
    g.handle(Kick(HOST, "p1"), T0)
    join(g, "p2", name="alice")
    assert g.players["p1"].kicked and not g.players["p2"].kicked


def test_host_is_not_a_player() -> None:
    g = new_game(max_players=1)
    join(g, "p1")
    assert HOST not in g.players and len(g.players) == 1


# -- kick and ban ----------------------------------------------------------------------------


def test_kick_then_rejoin_gets_a_fresh_seat() -> None:
    g = new_game()
    join(g, "p1", name="Alice")
    assert g.handle(Kick(HOST, "p1"), T0 + 1) == [PlayerKicked("p1", "dev-p1", False, T0 + 1)]
    assert g.players["p1"].kicked and not g.players["p1"].connected
    assert g.player_by_device("dev-p1") is g.players["p1"]  # the runtime sees it was kicked
    assert g.handle(Kick(HOST, "p1"), T0 + 2) == []  # already out
    join(g, "p1b", device="dev-p1", name="Alice")
    assert g.player_by_device("dev-p1") is g.players["p1b"]
    assert g.players["p1b"].score == 0


def test_banned_device_cannot_rejoin() -> None:
    g = new_game()
    join(g, "p1")
    g.handle(Kick(HOST, "p1", ban=True), T0)
    assert g.banned_devices == {"dev-p1"}
    refused(g, Join(None, "p1b", "dev-p1", "New name"), T0, ErrorCode.FORBIDDEN)


def test_kick_unknown_player() -> None:
    refused(new_game(), Kick(HOST, "nobody"), T0, ErrorCode.NOT_FOUND)


def test_kicked_player_cannot_answer() -> None:
    g = new_game()
    join(g, "p1")
    join(g, "p2")
    opened = answering(g)
    g.handle(Kick(HOST, "p1"), opened)
    with pytest.raises(GameError) as info:
        answer(g, "p1", opened + 1, "a")
    assert info.value.code is ErrorCode.FORBIDDEN


def test_kick_leaves_ranking() -> None:
    g = new_game()
    join(g, "p1")
    join(g, "p2")
    opened = answering(g)
    answer(g, "p1", opened + 100, "a")
    g.handle(Kick(HOST, "p1"), opened + 200)
    assert [r["player_id"] for r in g.leaderboard()] == ["p2"]
    assert g.rank_of("p1") is None and g.rank_of("p2") == 1


def test_snapshot_counts_and_ranks_follow_joins_kicks_connections_and_scores() -> None:
    """The counts and ranks a snapshot shows are kept as seats change (not recounted per
    snapshot): they must equal a count over the seats after every kind of change."""
    g = new_game()

    def check() -> None:
        seated = [p for p in g.players.values() if not p.kicked]
        snap = g.snapshot(None, T0)
        assert snap["players_count"] == len(seated)
        assert snap["connected_count"] == sum(p.connected for p in seated)
        for p in seated:
            score = g.standing(p).score
            assert g.rank_of(p.id) == 1 + sum(g.standing(o).score > score for o in seated)

    for pid in ("p1", "p2", "p3", "p4"):
        join(g, pid)
    check()
    g.handle(SetConnected(None, "p2", False), T0 + 1)
    check()
    g.handle(Kick(HOST, "p2"), T0 + 2)  # kicked while away
    g.handle(Kick(HOST, "p3"), T0 + 3)  # kicked while connected
    check()
    join(g, "p5", device="dev-p3")  # the kicked device again, as a new seat
    g.handle(SetConnected(None, "p4", False), T0 + 4)
    g.handle(SetConnected(None, "p4", True), T0 + 5)
    check()
    opened = answering(g, T0 + 10)
    answer(g, "p1", opened + 100, "a")  # right: points, still secret
    answer(g, "p4", opened + 200, "b")
    check()
    assert g.rank_of("p1") == 1 and g.rank_of("p4") == 1
    while not g.revealed():  # on to the reveal
        deadline = g.next_deadline()
        assert deadline is not None
        g.handle(Tick(None), deadline)
    check()
    assert g.rank_of("p1") == 1 and g.rank_of("p4") == 2


# -- host commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        Start("p1"),
        Next("p1"),
        Skip("p1"),
        Pause("p1"),
        Resume("p1"),
        Lock("p1", True),
        Kick("p1", "p1"),
        End("p1"),
        Start(None),
    ],
)
def test_host_commands_need_the_host(command: Command) -> None:
    g = new_game()
    join(g, "p1")
    refused(g, command, T0, ErrorCode.FORBIDDEN)


def test_start_with_no_players_is_allowed() -> None:
    g = new_game()
    events = g.handle(Start(HOST), T0)
    assert events == [
        GameStarted(T0),
        PhaseChanged(Phase.QUESTION, 0, "q1", T0, T0 + 10_000),
    ]
    assert g.status is GameStatus.ACTIVE and g.started_at == T0
    assert g.current_question is not None and g.current_question.id == "q1"


def test_start_needs_questions_and_the_lobby() -> None:
    empty = new_game(Quiz("z", "Z", ()))
    refused(empty, Start(HOST), T0, ErrorCode.VALIDATION_ERROR)
    g = new_game()
    g.handle(Start(HOST), T0)
    refused(g, Start(HOST), T0, ErrorCode.WRONG_PHASE)


@pytest.mark.parametrize("command", [Next(HOST), Skip(HOST), Pause(HOST), Resume(HOST)])
def test_flow_commands_refused_in_the_lobby(command: Command) -> None:
    err = refused(new_game(), command, T0, ErrorCode.WRONG_PHASE)
    assert "not started" in err.message


@pytest.mark.parametrize(
    "command",
    [Next(HOST), Skip(HOST), Pause(HOST), Resume(HOST), End(HOST), Lock(HOST, True), Start(HOST)],
)
def test_commands_refused_after_the_end(command: Command) -> None:
    g = new_game()
    g.handle(End(HOST), T0)
    refused(g, command, T0 + 1, ErrorCode.WRONG_PHASE)


def test_end_early() -> None:
    g = new_game()
    join(g, "p1")
    opened = answering(g)
    events = g.handle(End(HOST), opened + 5)
    assert events == [
        PhaseChanged(Phase.ENDED, 0, None, opened + 5, None),
        GameEnded(opened + 5, completed=False),
    ]
    assert (g.status, g.phase, g.next_deadline(), g.current_question) == (
        GameStatus.FINISHED,
        Phase.ENDED,
        None,
        None,
    )
    assert g.ended_at == opened + 5 and g.completed is False


def test_end_from_the_lobby_and_while_paused() -> None:
    g = new_game()
    assert phases(g.handle(End(HOST), T0)) == [Phase.ENDED]
    g = new_game()
    g.handle(Start(HOST), T0)
    g.handle(Pause(HOST), T0 + 1)
    g.handle(End(HOST), T0 + 2)
    assert (g.status, g.paused) == (GameStatus.FINISHED, False)


def test_skip_from_question_or_answering_reveals() -> None:
    g = new_game()
    g.handle(Start(HOST), T0)
    assert g.handle(Skip(HOST), T0 + 5) == [
        PhaseChanged(Phase.ANSWER_REVEAL, 0, "q1", T0 + 5, T0 + 5_005)
    ]
    refused(g, Skip(HOST), T0 + 6, ErrorCode.WRONG_PHASE)
    g = new_game()
    opened = answering(g)
    assert phases(g.handle(Skip(HOST), opened + 1)) == [Phase.ANSWER_REVEAL]


def test_host_steps_naming_their_step_change_the_game_once() -> None:
    """Sent again (its reply lost with an owner that died), a step that names the step it
    advances from changes nothing once the game has left that step."""
    g = new_game()
    lobby = StepRef(Phase.WAITING, -1)
    assert phases(g.handle(Start(HOST, from_step=lobby), T0)) == [Phase.QUESTION]
    assert g.handle(Start(HOST, from_step=lobby), T0 + 1) == []
    shown = StepRef(Phase.QUESTION, 0)
    assert phases(g.handle(Skip(HOST, from_step=shown), T0 + 2)) == [Phase.ANSWER_REVEAL]
    assert g.handle(Skip(HOST, from_step=shown), T0 + 3) == []
    revealed = StepRef(Phase.ANSWER_REVEAL, 0)
    assert phases(g.handle(Next(HOST, from_step=revealed), T0 + 4)) == [Phase.LEADERBOARD]
    assert g.handle(Next(HOST, from_step=revealed), T0 + 5) == []
    assert g.phase is Phase.LEADERBOARD and g.question_index == 0
    # A step the game has not reached is refused; without a step, Next advances as before.
    refused(g, Next(HOST, from_step=StepRef(Phase.LEADERBOARD, 1)), T0 + 6, ErrorCode.WRONG_PHASE)
    assert phases(g.handle(Next(HOST), T0 + 7)) == [Phase.QUESTION]
    # A timer that left the step first: the host's late step changes nothing either.
    g.handle(Tick(None), g.phase_ends_at or 0)
    assert g.handle(Next(HOST, from_step=StepRef(Phase.QUESTION, 1)), T0 + 20_000) == []
    assert g.phase is Phase.ANSWERING and g.question_index == 1


# -- phases ----------------------------------------------------------------------------------


def test_full_auto_game_timeline() -> None:
    q = quiz(mc("q1", explanation=True, show_explanation_time=7), mc("q2", show_question_time=0))
    g = new_game(q, reveal_time=4, leaderboard_time=6)
    g.handle(Start(HOST), T0)
    timeline = [(g.phase, g.phase_started_at, g.phase_ends_at)]
    while (deadline := g.next_deadline()) is not None:
        g.handle(Tick(None), deadline)
        timeline.append((g.phase, g.phase_started_at, g.phase_ends_at))
    a1 = T0 + 10_000
    r1 = a1 + 30_000
    e1 = r1 + 4_000
    l1 = e1 + 7_000
    a2 = l1 + 6_000  # show_question_time 0: straight to answering
    r2 = a2 + 30_000
    p = r2 + 4_000  # no leaderboard after the last question
    assert timeline == [
        (Phase.QUESTION, T0, a1),
        (Phase.ANSWERING, a1, r1),
        (Phase.ANSWER_REVEAL, r1, e1),
        (Phase.EXPLANATION, e1, l1),
        (Phase.LEADERBOARD, l1, a2),
        (Phase.ANSWERING, a2, r2),
        (Phase.ANSWER_REVEAL, r2, p),
        (Phase.PODIUM, p, None),
    ]
    assert g.status is GameStatus.FINISHED and g.completed is True


def test_explanation_skipped_when_the_setting_is_off() -> None:
    g = new_game(quiz(mc("q1", explanation=True), mc("q2")), show_explanation=False)
    opened = answering(g)
    g.handle(Skip(HOST), opened)
    assert phases(g.handle(Next(HOST), opened + 1)) == [Phase.LEADERBOARD]


def test_last_question_goes_to_podium_with_game_ended() -> None:
    g = new_game(quiz(mc("only")))
    opened = answering(g)
    g.handle(Skip(HOST), opened)
    events = g.handle(Next(HOST), opened + 10)
    assert events == [
        PhaseChanged(Phase.PODIUM, 0, None, opened + 10, None),
        GameEnded(opened + 10, completed=True),
    ]
    refused(g, Next(HOST), opened + 11, ErrorCode.WRONG_PHASE)


def test_tick_catches_up_several_phases_at_their_deadlines() -> None:
    g = new_game(reveal_time=5, leaderboard_time=5)
    g.handle(Start(HOST), T0)
    # The runtime was down for a while: every phase change is dated at its own deadline.
    events = g.handle(Tick(None), T0 + 10_000 + 30_000 + 5_000 + 5_000 + 1_234)
    a1, r1, l1, q2 = T0 + 10_000, T0 + 40_000, T0 + 45_000, T0 + 50_000
    assert events == [
        PhaseChanged(Phase.ANSWERING, 0, "q1", a1, r1),
        PhaseChanged(Phase.ANSWER_REVEAL, 0, "q1", r1, l1),
        PhaseChanged(Phase.LEADERBOARD, 0, "q1", l1, q2),
        PhaseChanged(Phase.QUESTION, 1, "q2", q2, q2 + 10_000),
    ]
    assert g.handle(Tick(None), q2 + 1) == []


def test_tick_before_a_deadline_does_nothing() -> None:
    g = new_game()
    g.handle(Start(HOST), T0)
    assert g.handle(Tick(None), T0 + 9_999) == []
    assert phases(g.handle(Tick(None), T0 + 10_000)) == [Phase.ANSWERING]


def test_answering_closes_one_ms_after_its_deadline() -> None:
    g = new_game()
    opened = answering(g)
    ends = opened + 30_000
    assert g.phase_ends_at == ends and g.next_deadline() == ends + 1
    assert g.handle(Tick(None), ends) == []
    assert g.handle(Tick(None), ends + 1) == [
        PhaseChanged(Phase.ANSWER_REVEAL, 0, "q1", ends, ends + 5_000)
    ]


def test_manual_mode_waits_for_the_host_except_answering() -> None:
    g = new_game(auto_advance=False)
    g.handle(Start(HOST), T0)
    assert (g.phase, g.phase_ends_at, g.next_deadline()) == (Phase.QUESTION, None, None)
    assert g.handle(Tick(None), T0 + 10**9) == []
    assert g.handle(Next(HOST), T0 + 100) == [
        PhaseChanged(Phase.ANSWERING, 0, "q1", T0 + 100, T0 + 30_100)
    ]
    # Answering still ends by the clock ...
    assert g.handle(Tick(None), T0 + 30_101) == [
        PhaseChanged(Phase.ANSWER_REVEAL, 0, "q1", T0 + 30_100, None)
    ]
    # ... everything else waits for Next.
    assert g.handle(Tick(None), T0 + 10**9) == []
    assert g.handle(Next(HOST), T0 + 40_000) == [
        PhaseChanged(Phase.LEADERBOARD, 0, "q1", T0 + 40_000, None)
    ]
    assert g.handle(Next(HOST), T0 + 41_000) == [
        PhaseChanged(Phase.QUESTION, 1, "q2", T0 + 41_000, None)
    ]


def test_next_during_answering_is_skip() -> None:
    g = new_game()
    opened = answering(g)
    assert g.handle(Next(HOST), opened + 3) == [
        PhaseChanged(Phase.ANSWER_REVEAL, 0, "q1", opened + 3, opened + 5_003)
    ]


def test_every_phase_change_is_an_event() -> None:
    g = new_game(quiz(mc("q1", explanation=True), mc("q2")))
    seen = phases(g.handle(Start(HOST), T0))
    now = T0
    while g.phase is not Phase.PODIUM:
        now += 1
        seen += phases(g.handle(Next(HOST), now))
    assert seen == [
        Phase.QUESTION,
        Phase.ANSWERING,
        Phase.ANSWER_REVEAL,
        Phase.EXPLANATION,
        Phase.LEADERBOARD,
        Phase.QUESTION,
        Phase.ANSWERING,
        Phase.ANSWER_REVEAL,
        Phase.PODIUM,
    ]


# -- pause -----------------------------------------------------------------------------------


def test_pause_keeps_time_left() -> None:
    g = new_game()
    opened = answering(g)
    assert g.handle(Pause(HOST), opened + 12_000) == [GamePaused(opened + 12_000, 18_000)]
    assert (g.status, g.paused, g.phase_ends_at, g.next_deadline()) == (
        GameStatus.PAUSED,
        True,
        None,
        None,
    )
    assert g.time_left(opened + 99_000) == 18_000 and g.remaining_ms == 18_000
    assert g.paused_at == opened + 12_000
    assert g.handle(Tick(None), opened + 10**7) == []  # no deadline runs while paused
    refused(g, Pause(HOST), opened + 50_000, ErrorCode.WRONG_PHASE)
    assert g.handle(Resume(HOST), opened + 100_000) == [
        GameResumed(opened + 100_000, opened + 118_000)
    ]
    assert (g.status, g.paused, g.phase_ends_at) == (GameStatus.ACTIVE, False, opened + 118_000)
    assert g.paused_at is None
    assert g.time_left(opened + 100_000) == 18_000
    refused(g, Resume(HOST), opened + 100_001, ErrorCode.WRONG_PHASE)


def test_pause_in_a_phase_waiting_for_the_host() -> None:
    g = new_game(auto_advance=False)
    g.handle(Start(HOST), T0)
    assert g.handle(Pause(HOST), T0 + 1) == [GamePaused(T0 + 1, None)]
    assert g.handle(Resume(HOST), T0 + 2) == [GameResumed(T0 + 2, None)]


def test_no_answers_or_advancing_while_paused() -> None:
    g = new_game()
    join(g, "p1")
    opened = answering(g)
    g.handle(Pause(HOST), opened + 1_000)
    with pytest.raises(GameError) as info:
        answer(g, "p1", opened + 2_000, "a")
    assert info.value.code is ErrorCode.WRONG_PHASE
    refused(g, Next(HOST), opened + 2_000, ErrorCode.WRONG_PHASE)
    refused(g, Skip(HOST), opened + 2_000, ErrorCode.WRONG_PHASE)


def test_paused_time_does_not_count_against_answer_time() -> None:
    g = new_game()
    join(g, "p1")
    join(g, "p2")
    opened = answering(g)
    g.handle(Pause(HOST), opened + 5_000)
    g.handle(Resume(HOST), opened + 65_000)
    (accepted,) = answer(g, "p1", opened + 70_000, "a")
    assert isinstance(accepted, AnswerAccepted)
    assert accepted.elapsed_ms == 10_000 and accepted.points == round(1000 * (1 - (10 / 30) / 2))


# -- answers ---------------------------------------------------------------------------------


def _two_players(**settings: Any) -> tuple[Game, int]:
    g = new_game(**settings)
    join(g, "p1")
    join(g, "p2")
    return g, answering(g)


def test_answer_accepted_with_server_time_score() -> None:
    g, opened = _two_players()
    events = answer(g, "p1", opened + 6_000, "a", aid="A1")
    assert events == [
        AnswerAccepted("p1", "q1", "A1", ("a",), None, 6_000, True, 900, 1, opened + 6_000)
    ]
    assert g.players["p1"].score == 900 and g.players["p1"].correct_count == 1
    assert g.answer_counts() == {"a": 1, "b": 0, "c": 0, "d": 0}


def test_full_points_under_half_a_second() -> None:
    g, opened = _two_players()
    (a,) = answer(g, "p1", opened + 499, "a")
    assert a.points == 1000


def test_answer_at_the_deadline_accepted_one_ms_later_too_late() -> None:
    g, opened = _two_players()
    ends = opened + 30_000
    (a,) = answer(g, "p1", ends, "a")
    assert a.elapsed_ms == 30_000 and a.points == 500
    with pytest.raises(GameError) as info:
        answer(g, "p2", ends + 1, "a")
    assert info.value.code is ErrorCode.TOO_LATE
    assert g.phase is Phase.ANSWERING  # refused: even the catch-up is not applied


def test_answer_after_reveal_is_too_late() -> None:
    g, opened = _two_players()
    g.handle(Skip(HOST), opened + 1)
    refused(g, SubmitAnswer("p1", "q1", "x", ("a",)), opened + 2, ErrorCode.TOO_LATE)


def test_answer_before_answers_open() -> None:
    g = new_game()
    join(g, "p1")
    g.handle(Start(HOST), T0)
    err = refused(g, SubmitAnswer("p1", "q1", "x", ("a",)), T0 + 1, ErrorCode.WRONG_PHASE)
    assert "not open" in err.message
    refused(new_game(), SubmitAnswer("p1", "q1", "x", ("a",)), T0, ErrorCode.FORBIDDEN)


def test_answer_in_the_lobby_is_wrong_phase() -> None:
    g = new_game()
    join(g, "p1")
    refused(g, SubmitAnswer("p1", "q1", "x", ("a",)), T0, ErrorCode.WRONG_PHASE)


def test_answer_just_after_a_missed_question_deadline_is_accepted() -> None:
    """The timer was late: the answer still lands in answering, timed from its real start."""
    g = new_game()
    join(g, "p1")
    join(g, "p2")
    g.handle(Start(HOST), T0)
    events = answer_raw(g, "p1", "q1", T0 + 10_700)
    assert [type(e) for e in events] == [PhaseChanged, AnswerAccepted]
    assert events[1].elapsed_ms == 700


def answer_raw(g: Game, pid: str, qid: str, now: int, *choices: str) -> list[Any]:
    return g.handle(SubmitAnswer(pid, qid, f"{pid}-{qid}", choices or ("a",)), now)


def test_wrong_question() -> None:
    g, opened = _two_players()
    err = refused(g, SubmitAnswer("p1", "q2", "x", ("a",)), opened + 1, ErrorCode.VALIDATION_ERROR)
    assert err.message == "not the current question"
    refused(g, SubmitAnswer("p1", "nope", "x", ("a",)), opened + 1, ErrorCode.VALIDATION_ERROR)


def test_unknown_player_cannot_answer() -> None:
    g, opened = _two_players()
    refused(g, SubmitAnswer("stranger", "q1", "x", ("a",)), opened + 1, ErrorCode.FORBIDDEN)
    refused(g, SubmitAnswer(None, "q1", "x", ("a",)), opened + 1, ErrorCode.FORBIDDEN)
    refused(g, SubmitAnswer(HOST, "q1", "x", ("a",)), opened + 1, ErrorCode.FORBIDDEN)


def test_resubmit_same_answer_id_is_idempotent_other_id_conflicts() -> None:
    g, opened = _two_players()
    answer(g, "p1", opened + 1_000, "a", aid="A1")
    before = copy.deepcopy(vars(g))
    assert g.handle(SubmitAnswer("p1", "q1", "A1", ("b",)), opened + 2_000) == []
    assert vars(g) == before
    err = refused(g, SubmitAnswer("p1", "q1", "A2", ("a",)), opened + 2_000, ErrorCode.CONFLICT)
    assert err.message == "already answered this question"
    # A retry arriving after the question closed is still answered from state.
    g.handle(Skip(HOST), opened + 3_000)
    assert g.handle(SubmitAnswer("p1", "q1", "A1", ("a",)), opened + 4_000) == []


@pytest.mark.parametrize(
    ("kind", "choices", "text"),
    [
        (QuestionType.MULTIPLE_CHOICE, (), None),
        (QuestionType.MULTIPLE_CHOICE, ("a", "b"), None),
        (QuestionType.MULTIPLE_CHOICE, ("z",), None),
        (QuestionType.TRUE_FALSE, ("a", "a"), None),
        (QuestionType.POLL, (), None),
        (QuestionType.MULTI_SELECT, (), None),
        (QuestionType.MULTI_SELECT, ("a", "a"), None),
        (QuestionType.MULTI_SELECT, ("a", "zz"), None),
        (QuestionType.TYPE_ANSWER, (), None),
        (QuestionType.TYPE_ANSWER, (), "   "),
        (QuestionType.TYPE_ANSWER, (), "x" * 201),
    ],
)
def test_malformed_answers(kind: QuestionType, choices: tuple[str, ...], text: str | None) -> None:
    q = Question(
        "q1",
        kind,
        "?",
        choices=tuple(Choice(c, c, c == "a") for c in "ab"),
        accepted_answers=("a",),
    )
    g = new_game(Quiz("z", "Z", (q,)))
    join(g, "p1")
    opened = answering(g)
    refused(g, SubmitAnswer("p1", "q1", "x", choices, text), opened + 1, ErrorCode.VALIDATION_ERROR)


def test_question_types_scored() -> None:
    choices = tuple(Choice(c, c.upper(), c in "ac") for c in "abcd")
    q = quiz(
        Question("ms", QuestionType.MULTI_SELECT, "?", choices=choices, show_question_time=0),
        Question(
            "ta",
            QuestionType.TYPE_ANSWER,
            "?",
            accepted_answers=("Ｋｙｏｔｏ",),
            show_question_time=0,
        ),
        Question("tf", QuestionType.TRUE_FALSE, "?", choices=choices[:2], show_question_time=0),
        Question("po", QuestionType.POLL, "?", choices=choices, show_question_time=0),
    )
    g = new_game(q, auto_advance=False)
    join(g, "p1")
    join(g, "p2")
    g.handle(Start(HOST), T0)
    answer(g, "p1", T0, "c", "a")
    answer(g, "p2", T0, "a")
    assert g.answer_counts() == {"a": 2, "b": 0, "c": 1, "d": 0}
    assert [g.players[p].answers["ms"].correct for p in ("p1", "p2")] == [True, False]
    g.handle(Next(HOST), T0 + 1)
    g.handle(Next(HOST), T0 + 2)
    answer(g, "p1", T0 + 2, text="  kyoto ")
    answer(g, "p2", T0 + 2, text="Osaka")
    assert g.answer_counts() == {"kyoto": 1, "osaka": 1}
    assert g.players["p1"].answers["ta"].text == "kyoto"
    assert [g.players[p].answers["ta"].correct for p in ("p1", "p2")] == [True, False]
    g.handle(Next(HOST), T0 + 3)
    g.handle(Next(HOST), T0 + 4)
    answer(g, "p1", T0 + 4, "a")
    answer(g, "p2", T0 + 4, "b")
    g.handle(Next(HOST), T0 + 5)
    g.handle(Next(HOST), T0 + 6)
    answer(g, "p1", T0 + 6, "d")
    poll = g.players["p1"].answers["po"]
    assert (poll.correct, poll.points, poll.streak) == (None, 0, 3)
    assert g.players["p1"].score == 3000 and g.players["p1"].correct_count == 3


def test_streak_bonus_and_reset() -> None:
    q = quiz(*(mc(f"q{i}", show_question_time=0) for i in range(1, 9)))
    g = new_game(q, streak_bonus=True, auto_advance=False)
    join(g, "p1")
    g.handle(Start(HOST), T0)
    now = T0
    got = []
    for i in range(1, 9):
        choice = "b" if i == 4 else "a"  # wrong on question 4
        (a, _reveal) = answer(g, "p1", now, choice)
        got.append((a.points, a.bonus, a.streak))
        now += 1
        g.handle(Next(HOST), now)  # leaderboard (only one player: answering closed early)
        if g.phase is not Phase.PODIUM:
            g.handle(Next(HOST), now)
    assert got == [
        (1000, 0, 1),
        (1100, 100, 2),
        (1200, 200, 3),
        (0, 0, 0),
        (1000, 0, 1),
        (1100, 100, 2),
        (1200, 200, 3),
        (1300, 300, 4),
    ]
    assert g.players["p1"].score == sum(p for p, _b, _s in got)


def test_bonus_is_capped() -> None:
    q = quiz(*(mc(f"q{i}", show_question_time=0) for i in range(8)))
    g = new_game(q, streak_bonus=True, auto_advance=False)
    join(g, "p1")
    g.handle(Start(HOST), T0)
    bonuses = []
    while g.phase is not Phase.PODIUM:
        if g.phase is Phase.ANSWERING:
            bonuses.append(answer(g, "p1", T0, "a")[0].bonus)
        g.handle(Next(HOST), T0)
    assert bonuses == [0, 100, 200, 300, 400, 500, 500, 500]


def test_missing_a_question_breaks_the_streak() -> None:
    q = quiz(
        mc("q1", show_question_time=0),
        mc("q2", show_question_time=0),
        mc("q3", show_question_time=0),
    )
    g = new_game(q, streak_bonus=True, auto_advance=False)
    join(g, "p1")
    join(g, "p2")
    g.handle(Start(HOST), T0)
    answer(g, "p1", T0, "a")
    g.handle(Skip(HOST), T0)
    assert g.players["p1"].streak == 1 and g.players["p2"].streak == 0
    g.handle(Next(HOST), T0)
    g.handle(Next(HOST), T0)
    answer(g, "p2", T0, "a")
    g.handle(Skip(HOST), T0)  # p1 missed q2
    assert g.players["p1"].streak == 0


def test_time_bonus_off() -> None:
    g, opened = _two_players(time_bonus=False)
    assert answer(g, "p1", opened + 29_000, "a")[0].points == 1000


# -- early close -----------------------------------------------------------------------------


def test_last_connected_answer_closes_answering_early() -> None:
    g = new_game()
    for p in ("p1", "p2", "p3"):
        join(g, p)
    g.handle(SetConnected(None, "p3", False), T0)
    opened = answering(g)
    assert len(answer(g, "p1", opened + 1_000, "a")) == 1
    events = answer(g, "p2", opened + 2_000, "b")
    assert [type(e) for e in events] == [AnswerAccepted, PhaseChanged]
    assert events[1] == PhaseChanged(Phase.ANSWER_REVEAL, 0, "q1", opened + 2_000, opened + 7_000)


def test_disconnect_and_reconnect_during_answering() -> None:
    g = new_game()
    for p in ("p1", "p2"):
        join(g, p)
    opened = answering(g)
    g.handle(SetConnected(None, "p2", False), opened + 1)
    g.handle(SetConnected(None, "p2", True), opened + 2)  # back: awaited again
    assert len(answer(g, "p1", opened + 3, "a")) == 1
    g.handle(SetConnected(None, "p2", False), opened + 4)
    g.handle(Join(None, "again", "dev-p2", "x"), opened + 5)  # reconnect through join
    assert g.players["p2"].connected
    assert phases(answer(g, "p2", opened + 6, "a")) == [Phase.ANSWER_REVEAL]


def test_kicked_players_are_not_awaited() -> None:
    g = new_game()
    for p in ("p1", "p2"):
        join(g, p)
    opened = answering(g)
    g.handle(Kick(HOST, "p2"), opened + 1)
    assert phases(answer(g, "p1", opened + 2, "a")) == [Phase.ANSWER_REVEAL]


def test_set_connected_rules() -> None:
    g = new_game()
    join(g, "p1")
    join(g, "p2")
    assert g.handle(SetConnected("p1", "p1", True), T0) == []  # no change
    refused(g, SetConnected("p2", "p1", False), T0, ErrorCode.FORBIDDEN)
    refused(g, SetConnected(None, "ghost", False), T0, ErrorCode.NOT_FOUND)
    assert g.handle(SetConnected(HOST, "p1", False), T0) == [PlayerConnection("p1", False, T0)]
    assert g.handle(SetConnected(None, HOST, False), T0) == [PlayerConnection(HOST, False, T0)]
    assert not g.host_connected


# -- late join -------------------------------------------------------------------------------


def test_late_join_cannot_answer_the_running_question() -> None:
    g = new_game(quiz(mc("q1"), mc("q2")))
    join(g, "p1")
    opened = answering(g)
    join(g, "late", now=opened + 1_000)
    refused(g, SubmitAnswer("late", "q1", "x", ("a",)), opened + 2_000, ErrorCode.WRONG_PHASE)
    assert g.snapshot("late")["me"]["can_answer"] is False
    # Not awaited either: p1's answer closes the question.
    assert phases(answer(g, "p1", opened + 3_000, "a")) == [Phase.ANSWER_REVEAL]
    g.handle(Next(HOST), opened + 4_000)
    g.handle(Next(HOST), opened + 5_000)
    g.handle(Next(HOST), opened + 6_000)
    assert g.snapshot("late")["me"]["can_answer"] is True
    assert answer(g, "late", opened + 7_000, "a")[0].correct


def test_join_during_the_question_phase_may_answer() -> None:
    g = new_game()
    g.handle(Start(HOST), T0)
    join(g, "p1", now=T0 + 1)
    g.handle(Tick(None), T0 + 10_000)
    assert answer(g, "p1", T0 + 10_001, "a")[0].points == 1000


def test_late_join_off() -> None:
    g = new_game(late_join=False)
    join(g, "p1")
    g.handle(Start(HOST), T0)
    refused(g, Join(None, "p2", "d2", "Bob"), T0, ErrorCode.WRONG_PHASE)
    g.handle(SetConnected(None, "p1", False), T0)
    assert g.handle(Join(None, "x", "dev-p1", "x"), T0) == [PlayerConnection("p1", True, T0)]


def test_no_new_players_after_the_end_but_reconnections() -> None:
    g = new_game()
    join(g, "p1")
    g.handle(SetConnected(None, "p1", False), T0)
    g.handle(End(HOST), T0)
    refused(g, Join(None, "p2", "d2", "Bob"), T0, ErrorCode.WRONG_PHASE)
    assert g.handle(Join(None, "x", "dev-p1", "x"), T0) == [PlayerConnection("p1", True, T0)]


# -- ranking ---------------------------------------------------------------------------------


def test_competition_ranking_with_ties() -> None:
    g = new_game(quiz(mc("q1", show_question_time=0)))
    for pid, name in (("p1", "dora"), ("p2", "Bob"), ("p3", "alice"), ("p4", "Carl")):
        join(g, pid, name=name)
    g.handle(Start(HOST), T0)
    answer(g, "p1", T0 + 100, "a")  # 1000
    answer(g, "p2", T0 + 15_000, "a")  # 750
    answer(g, "p3", T0 + 15_000, "a")  # 750
    assert {r["score"] for r in g.leaderboard()} == {0}  # nothing shows before the reveal
    answer(g, "p4", T0 + 15_000, "b")  # 0, and the last answer closes the question
    board = g.leaderboard()
    assert [(r["name"], r["score"], r["rank"]) for r in board] == [
        ("dora", 1000, 1),
        ("alice", 750, 2),
        ("Bob", 750, 2),
        ("Carl", 0, 4),
    ]
    assert board[0] == {
        "player_id": "p1",
        "name": "dora",
        "score": 1000,
        "rank": 1,
        "correct_count": 1,
    }
    assert [r["rank"] for r in g.leaderboard(top=3)] == [1, 2, 2]
    assert g.ranks() == {"p1": 1, "p3": 2, "p2": 2, "p4": 4}
    assert [g.rank_of(p) for p in ("p1", "p2", "p3", "p4", "ghost")] == [1, 2, 2, 4, None]


# -- views -----------------------------------------------------------------------------------


def test_public_question_hides_correctness_until_reveal() -> None:
    g = new_game(quiz(mc("q1", explanation=True)))
    assert g.public_question(reveal=False) is None
    g.handle(Start(HOST), T0)
    hidden = g.public_question(reveal=False)
    assert hidden is not None
    assert all("is_correct" not in c for c in hidden["choices"])
    assert "explanation" not in hidden and hidden["index"] == 0 and hidden["count"] == 1
    shown = g.public_question(reveal=True)
    assert shown is not None
    assert [c["is_correct"] for c in shown["choices"]] == [True, False, False, False]
    assert shown["explanation"] == {"title": "why", "text": "because", "image_url": None}


def test_snapshot_for_a_player_and_the_host() -> None:
    g = new_game()
    join(g, "p1")
    join(g, "p2")
    opened = answering(g)
    answer(g, "p1", opened + 3_000, "a", aid="A1")
    snap = g.snapshot("p1", now=opened + 4_000)
    assert snap["phase"] == "answering" and snap["question_id"] == "q1"
    assert snap["time_left_ms"] == 26_000 and snap["phase_ends_at"] == opened + 30_000
    assert all("is_correct" not in c for c in snap["question"]["choices"])
    assert snap["me"]["answer"] == {
        "answer_id": "A1",
        "choice_ids": ["a"],
        "text": None,
        "elapsed_ms": 3_000,
        "at": opened + 3_000,
    }  # no correctness before the reveal
    # Score, streak and correct count move only at the reveal: nothing tells p1 yet.
    assert snap["me"]["score"] == 0 and snap["me"]["rank"] == 1
    assert snap["me"]["streak"] == 0 and snap["me"]["correct_count"] == 0
    assert snap["players_count"] == 2 and snap["answered_count"] == 1 and snap["top"] is None
    host = g.snapshot(None)
    assert host["answer_counts"]["a"] == 1 and "me" not in host
    g.handle(Skip(HOST), opened + 5_000)
    revealed = g.snapshot("p1")
    assert revealed["me"]["answer"]["correct"] is True and revealed["me"]["answer"]["points"] == 950
    assert revealed["question"]["choices"][0]["is_correct"] is True
    assert revealed["me"]["score"] == 950 and revealed["me"]["streak"] == 1
    g.handle(Next(HOST), opened + 6_000)
    assert g.snapshot("p2")["top"][0]["player_id"] == "p1"
    g.handle(Pause(HOST), opened + 7_000)
    assert g.snapshot("p2")["time_left_ms"] == 4_000 and g.snapshot("p2")["paused"] is True
    assert g.snapshot("ghost")["me"] is None


def test_unknown_command() -> None:
    class Mystery(Command):
        pass

    refused(new_game(), Mystery(HOST), T0, ErrorCode.UNKNOWN_EVENT)


def test_tick_after_the_end_is_empty() -> None:
    g = new_game()
    g.handle(End(HOST), T0)
    assert g.handle(Tick(None), T0 + 10**9) == []


def test_decide_does_not_mutate() -> None:
    g = new_game()
    join(g, "p1")
    g.handle(Start(HOST), T0)
    before = copy.deepcopy(vars(g))
    events = g.decide(Tick(None), T0 + 10**6)
    assert events and vars(g) == before


def test_skipping_before_answers_open_keeps_streaks() -> None:
    q = quiz(mc("q1", show_question_time=0), mc("q2"))
    g = new_game(q, streak_bonus=True, auto_advance=False)
    join(g, "p1")
    g.handle(Start(HOST), T0)
    answer(g, "p1", T0, "a")
    g.handle(Next(HOST), T0)  # leaderboard
    g.handle(Next(HOST), T0)  # q2 shown
    g.handle(Skip(HOST), T0)  # skipped before anyone could answer
    assert g.players["p1"].streak == 1


def test_late_joiner_missing_the_running_question_keeps_a_zero_streak() -> None:
    g = new_game()
    join(g, "p1")
    opened = answering(g)
    join(g, "late", now=opened + 1)
    g.handle(Skip(HOST), opened + 2)
    assert g.players["late"].streak == 0 and g.players["late"].score == 0


def test_standing_hides_the_open_questions_outcome_and_keeps_the_previous_streak() -> None:
    g = new_game(quiz(mc("q1", show_question_time=0), mc("q2", show_question_time=0)))
    join(g, "p1")
    join(g, "p2")
    g.handle(Start(HOST), T0)
    answer(g, "p1", T0 + 100, "a")  # correct: 1000, streak 1
    g.handle(Skip(HOST), T0 + 200)
    g.handle(Next(HOST), T0 + 300)
    while g.phase is not Phase.ANSWERING:
        g.handle(Next(HOST), T0 + 400)
    opened = g.phase_started_at
    answer(g, "p1", opened + 100, "b")  # wrong: streak would drop to 0
    p1 = g.players["p1"]
    assert p1.score == 1000 and p1.streak == 0  # the truth, for the host's report
    assert g.standing(p1) == (1000, 1, 1)  # what anyone is shown before the reveal
    answer(g, "p2", opened + 100, "a")
    assert g.phase is Phase.ANSWER_REVEAL
    assert g.standing(g.players["p2"]).score > 0 and g.standing(p1) == (1000, 1, 0)
