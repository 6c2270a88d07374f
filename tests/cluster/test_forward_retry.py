"""Which forwarded commands are sent again after the owner died with them: a join only when it
carries a join key (the same key again gets the seat the first one took, never a second), a
host step only when it names the step it advances from (it then advances once)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from contextlib import ExitStack
from pathlib import Path

import asyncpg

from tests.cluster.test_two_processes import metric
from tests.gamehelpers import create_game, make_test_quiz
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually
from tuiz.cluster.forward import _from_step, _keyed_join, _keyed_rest_join

KEY = "0f4c6a1e-2b3d-4e5f-8a9b-c0d1e2f3a4b5"


def test_a_join_is_resent_only_with_its_key() -> None:
    assert _keyed_join("game:join", {"pin": "123456", "nickname": "A", "joinKey": KEY})
    assert not _keyed_join("game:join", {"pin": "123456", "nickname": "A"})
    assert not _keyed_join("game:join", {"pin": "123456", "joinKey": 12345})
    assert not _keyed_join("game:flow:next", {"gameId": "g", "joinKey": KEY})
    assert not _keyed_join("game:join", [KEY])


def test_a_rest_join_is_resent_only_with_its_key() -> None:
    assert _keyed_rest_join(
        b'{"player_name": "A", "device_id": "d", "join_key": "%s"}' % KEY.encode()
    )
    assert not _keyed_rest_join(b'{"player_name": "A", "device_id": "d"}')
    assert not _keyed_rest_join(b'{"player_name": "A", "join_key": null}')
    assert not _keyed_rest_join(b"not json")
    assert not _keyed_rest_join(b'["join_key"]')


def test_a_host_step_is_resent_only_when_it_names_its_step() -> None:
    step = {"phase": "answer_reveal", "questionIndex": 0}
    for event in ("game:flow:start", "game:flow:next", "game:flow:skip"):
        assert _from_step(event, {"gameId": "g", "from": step})
        assert not _from_step(event, {"gameId": "g"})
    assert not _from_step("game:flow:pause", {"gameId": "g", "from": step})
    assert not _from_step("game:flow:next", {"gameId": "g", "from": "answer_reveal"})


async def _forwarded(server: ServerProcess) -> float:
    return await metric(server, "tuiz_cluster_forwarded_total")


async def test_a_step_the_owner_died_holding_is_sent_again_and_taken_once(
    db_url: str, tmp_path: Path, redis_url: str
) -> None:
    """The owner receives `game:flow:next` and dies before answering (frozen, then killed):
    the forwarding process sends it again to the process that takes the game over, which
    advances the game once; the same step sent again by the host changes nothing."""
    quiz = await make_test_quiz(db_url, show_question_time=5)  # shown until the host steps
    env = {"REDIS_URL": redis_url, "TUIZ_LOAD_SAMPLE": "false", "TUIZ_GAME_LEASE_MS": "3000"}
    with ExitStack() as stack:
        owner = stack.enter_context(run_server(db_url, tmp_path / "owner", **env))
        other = stack.enter_context(run_server(db_url, tmp_path / "other", **env))
        for server in (owner, other):  # each listens for the other's commands

            async def listening(server: ServerProcess = server) -> bool:
                return await metric(server, "tuiz_cluster_up") == 1.0

            assert await eventually(listening, timeout=15)
        game = await create_game(owner.url, quiz, auto_advance=False)  # owned by `owner`
        host = await Recorder(other.url).connect()  # the host's socket on the other process
        try:
            await host.register("host-device")
            joined = await host.sio.call(
                "game:host:join", {"gameId": game["id"], "hostToken": game["host_token"]}
            )
            assert joined["ok"], joined
            lobby = {"phase": "waiting", "questionIndex": -1}
            start = {"gameId": game["id"], "from": lobby}
            started = await host.sio.call("game:flow:start", start, timeout=10)
            assert started["ok"] and started["snapshot"]["phase"] == "question", started

            before = await _forwarded(other)
            owner.process.send_signal(signal.SIGSTOP)  # receives the step, never answers
            step = {"gameId": game["id"], "from": {"phase": "question", "questionIndex": 0}}
            sent = asyncio.ensure_future(host.sio.call("game:flow:next", step, timeout=60))

            async def delivered() -> bool:
                return await _forwarded(other) > before

            assert await eventually(delivered, timeout=15)
            owner.kill()
            moved = await sent
            assert moved["ok"], moved  # not UNAVAILABLE: sent again, to the new owner
            assert moved["snapshot"]["phase"] == "answering", moved

            again = await host.sio.call("game:flow:next", step, timeout=10)  # a lost reply's
            assert again["ok"] and again["snapshot"]["phase"] == "answering", again  # resend
            again = await host.sio.call("game:flow:start", start, timeout=10)
            assert again["ok"] and again["snapshot"]["phase"] == "answering", again
        finally:
            await host.close()
        conn = await asyncpg.connect(db_url)
        try:
            phases = await conn.fetch(
                "SELECT payload->>'phase' AS phase FROM game_events"
                " WHERE game_id = $1 AND event_type = 'game:phase:change' ORDER BY sequence_number",
                uuid.UUID(game["id"]),
            )
        finally:
            await conn.close()
        assert [r["phase"] for r in phases] == ["question", "answering"]
