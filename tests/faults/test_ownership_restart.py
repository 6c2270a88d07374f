"""Game ownership across a crash: `kill -9`, an immediate restart, and lease renewals under load.

Before: right after `kill -9` and a restart, one restart in three refused every live game for
up to a lease (15 s) because the dead PID still existed (a zombie not yet reaped, or a reused
number), and games created while a renewal was in flight were evicted (14 in a flood).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.gamehelpers import create_game, make_test_quiz
from tests.servers import ServerProcess, run_server
from tests.sioclient import eventually
from tuiz.cluster.ownership import BOOT_ID


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


def _events(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    found = []
    for line in server.log().splitlines():
        if name in line:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return [e for e in found if e.get("event") == name]


async def _owners(db_url: str, ids: list[str]) -> dict[str, str]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT game_id::text AS id, owner FROM game_owners"
            " WHERE game_id = ANY($1::uuid[]) AND expires_at > now()",
            [uuid.UUID(i) for i in ids],
        )
    finally:
        await conn.close()
    return {r["id"]: r["owner"] for r in rows}


async def test_kill_9_and_an_immediate_restart_take_every_game_over_at_once(
    db_url: str, tmp_path: Path
) -> None:
    quiz = await make_test_quiz(db_url)
    env = {"TUIZ_LOAD_SAMPLE": "false", "TUIZ_HOST_GRACE_MS": "600000"}
    with run_server(db_url, tmp_path / "first", **env) as first:
        games = [await create_game(first.url, quiz, auto_advance=False) for _ in range(3)]
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
            for game in games[:2]:  # two running games, one lobby
                started = await http.post(
                    f"/games/{game['id']}/start", headers={"x-host-token": game["host_token"]}
                )
                assert started.status_code == 200, started.text
        lobby = games[2]
        conn = await asyncpg.connect(db_url)

        async def projected() -> bool:  # the games table says "active" a moment after the 200
            active: int = await conn.fetchval(
                "SELECT count(*) FROM games WHERE status = 'active' AND id = ANY($1::uuid[])",
                [uuid.UUID(g["id"]) for g in games],
            )
            return active == 2

        assert await eventually(projected)

        pid = first.process.pid
        os.kill(pid, signal.SIGKILL)  # not reaped: the dead PID still exists, as a zombie
        for _ in range(1000):
            if _state(pid) == "Z":
                break
            await asyncio.sleep(0.01)
        assert _state(pid) == "Z"

        # The lobby's lease names a PID that runs, but another process's: a reused number.
        try:
            reused = f"{socket.gethostname()}:{os.getpid()}:{BOOT_ID}-1:0ddba11"
            await conn.execute(
                "UPDATE game_owners SET owner = $2, expires_at = now() + interval '1 hour'"
                " WHERE game_id = $1",
                uuid.UUID(lobby["id"]),
                reused,
            )
        finally:
            await conn.close()

        with run_server(db_url, tmp_path / "second", **env) as second:
            async with httpx.AsyncClient(base_url=second.url, timeout=10) as http:
                for game in games[:2]:
                    got = await http.get(f"/games/{game['id']}")
                    assert got.status_code == 200, got.text
                    assert got.json()["status"] == "active"
                joined = await http.post(
                    f"/games/{lobby['id']}/join", json={"player_name": "Back", "device_id": "bk"}
                )
                assert joined.status_code == 201, joined.text
            resumed = _events(second, "games_resumed")
            assert resumed and resumed[0]["count"] == 2, second.log()
            assert not _events(second, "resume_failed")
            assert len(_events(second, "game_taken_over")) == 3
            owners = await _owners(db_url, [g["id"] for g in games])
            assert len(owners) == 3
            assert {o.split(":")[1] for o in owners.values()} == {str(second.process.pid)}
        assert first.process.wait(5) == -signal.SIGKILL


async def test_a_creation_flood_during_lease_renewals_evicts_nothing(
    db_url: str, tmp_path: Path
) -> None:
    quiz = await make_test_quiz(db_url)
    with run_server(
        db_url,
        tmp_path,
        TUIZ_LOAD_SAMPLE="false",
        TUIZ_GAME_LEASE_MS="1000",  # a renewal every third of a second
        TUIZ_CREATE_LIMIT_PER_MIN="0",
    ) as server:
        created: list[dict[str, Any]] = []
        started = time.monotonic()
        for _ in range(15):  # 120 games in waves of 8, spanning several renewals
            created += await asyncio.gather(*(create_game(server.url, quiz) for _ in range(8)))
        assert time.monotonic() - started > 0.7
        await asyncio.sleep(1.2)  # three more renewals of every lease

        assert not _events(server, "game_lease_lost"), server.log()
        ids = [g["id"] for g in created]
        owners = await _owners(db_url, ids)
        assert len(owners) == len(ids)
        assert {o.split(":")[1] for o in owners.values()} == {str(server.process.pid)}
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            metrics = (await http.get("/metrics")).text
        live = [line for line in metrics.splitlines() if line.startswith("tuiz_live_games ")]
        assert live and float(live[0].split()[1]) == len(ids)
