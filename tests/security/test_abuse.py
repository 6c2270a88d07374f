"""Abuse from one address, and inputs that used to end in a 5xx, against a real `tuiz serve`.

The server trusts 127.0.0.1 as its proxy (`TUIZ_TRUSTED_PROXIES`), so each test speaks for
the client addresses it names in `X-Forwarded-For` (documentation ranges; all traffic stays on
loopback) and tests do not share budgets. The limits are the defaults.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from tests.factories import make_game
from tests.gamehelpers import QUIZ, make_test_quiz
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually
from tuiz.config import Settings
from tuiz.limits import KeyedBuckets, limit_key
from tuiz.netaddr import client_address

SECRET = "abuse-jwt-secret-of-at-least-32-bytes"
DEFAULTS = Settings()


def via(address: str) -> dict[str, str]:
    """Headers of a request our trusted proxy (127.0.0.1) forwards for `address`."""
    return {"x-forwarded-for": address}


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(
        module_db_url,
        tmp_path_factory.mktemp("abuse"),
        TUIZ_LOAD_SAMPLE="false",
        TUIZ_TRUSTED_PROXIES="127.0.0.1",
        TUIZ_JWT_SECRET=SECRET,
    ) as s:
        yield s


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=server.url, timeout=15, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
def quiz(module_db_url: str) -> uuid.UUID:
    return asyncio.run(make_test_quiz(module_db_url))


async def _create(http: httpx.AsyncClient, quiz: uuid.UUID, address: str) -> httpx.Response:
    return await http.post(
        "/games",
        json={"quiz_set_id": str(quiz), "device_id": f"host-{secrets.token_hex(4)}"},
        headers=via(address),
    )


def _other_pin(taken: str) -> str:
    while (pin := f"{secrets.randbelow(900_000) + 100_000}") == taken:
        pass
    return pin


async def test_pin_scan_is_stopped_and_other_addresses_still_join(
    server: ServerProcess, http: httpx.AsyncClient, quiz: uuid.UUID
) -> None:
    made = await _create(http, quiz, "203.0.113.1")
    assert made.status_code == 201, made.text
    pin = made.json()["game_code"]
    scanner = "198.51.100.7"

    # 80 lookups, 20 at a time: at most the burst plus what was in flight when it ran out.
    answers = await asyncio.gather(
        *(http.get(f"/games/by-code/{_other_pin(pin)}", headers=via(scanner)) for _ in range(80))
    )
    codes = collections.Counter(a.status_code for a in answers)
    burst = DEFAULTS.pin_miss_limit_burst
    assert burst <= codes[404] <= burst + 20, codes
    assert codes[429] == 80 - codes[404], codes
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"] == "RATE_LIMITED"

    # Out of misses, the scanner is refused before the lookup: a 429 says nothing of the PIN.
    assert (await http.get(f"/games/by-code/{pin}", headers=via(scanner))).status_code == 429
    # Writing its own X-Forwarded-For does not help: the nearest untrusted hop is the client.
    spoofed = {"x-forwarded-for": f"192.0.2.99, {scanner}"}
    assert (await http.get(f"/games/by-code/{pin}", headers=spoofed)).status_code == 429

    socket = await Recorder(server.url).connect(headers=via(scanner))
    try:
        await socket.register("scanner-device")
        ack = await socket.sio.call("game:join", {"pin": pin, "nickname": "Scan"}, timeout=10)
        assert ack["ok"] is False and ack["error"] == "RATE_LIMITED", ack
        assert (await socket.expect("game:error"))["error"] == "RATE_LIMITED"
    finally:
        await socket.close()

    # A pupil at another address, through the same proxy: unaffected.
    pupil = "198.51.100.8"
    found = await http.get(f"/games/by-code/{pin}", headers=via(pupil))
    assert found.status_code == 200, found.text
    joined = await http.post(
        f"/games/{found.json()['id']}/join",
        json={"player_name": "Pupil", "device_id": "pupil-device"},
        headers=via(pupil),
    )
    assert joined.status_code == 201, joined.text
    player = await Recorder(server.url).connect(headers=via(pupil))
    try:
        await player.register("pupil-socket")
        ack = await player.sio.call("game:join", {"pin": pin, "nickname": "Pupil 2"}, timeout=10)
        assert ack["ok"], ack
    finally:
        await player.close()


async def test_a_school_behind_one_address_joins_at_once(
    http: httpx.AsyncClient, quiz: uuid.UUID
) -> None:
    """300 phones behind one NAT, each looking the PIN up and joining, a few mistyping it."""
    school = "203.0.113.200"
    made = await _create(http, quiz, school)
    assert made.status_code == 201, made.text
    pin = made.json()["game_code"]

    async def phone(n: int) -> int:
        if n % 30 == 0:  # a typo first
            typo = await http.get(f"/games/by-code/{_other_pin(pin)}", headers=via(school))
            assert typo.status_code == 404, typo.text
        found = await http.get(f"/games/by-code/{pin}", headers=via(school))
        assert found.status_code == 200, found.text
        joined = await http.post(
            f"/games/{found.json()['id']}/join",
            json={"player_name": f"Pupil {n}", "device_id": f"phone-{n}"},
            headers=via(school),
        )
        return joined.status_code

    started = time.monotonic()
    codes = await asyncio.gather(*(phone(n) for n in range(300)))
    assert codes == [201] * 300
    assert time.monotonic() - started < 60


async def test_a_creation_flood_gets_429(http: httpx.AsyncClient, quiz: uuid.UUID) -> None:
    flooder = "198.51.100.20"
    created, refused = 0, None
    for _ in range(60):  # bounded
        answer = await _create(http, quiz, flooder)
        if answer.status_code == 429:
            refused = answer
            break
        assert answer.status_code == 201, answer.text
        created += 1
    assert refused is not None and refused.json()["error"] == "RATE_LIMITED"
    burst = DEFAULTS.create_limit_burst
    assert burst <= created <= burst + 1
    assert (await _create(http, quiz, "198.51.100.21")).status_code == 201


async def _games_hosted_by(db_url: str, device_id: str) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM players WHERE device_id = $1 AND is_host", device_id
        )
        return count
    finally:
        await conn.close()


async def test_a_refused_inline_quiz_leaves_no_game(
    http: httpx.AsyncClient, module_db_url: str
) -> None:
    big = copy.deepcopy(QUIZ)
    question = {
        "question_text": "Q" * 500,
        "explanation_text": "E" * 2000,
        "answers": [{"answer_text": f"{i}" + "A" * 199, "is_correct": i == 0} for i in range(4)],
    }
    big["questions"] = [copy.deepcopy(question) for _ in range(100)]
    refused = await http.post(
        "/games", json={"quiz": big, "device_id": "big-quiz-host"}, headers=via("203.0.113.9")
    )
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert await _games_hosted_by(module_db_url, "big-quiz-host") == 0

    broken = copy.deepcopy(QUIZ)
    broken["questions"][0]["answers"] = []
    invalid = await http.post(
        "/games", json={"quiz": broken, "device_id": "bad-quiz-host"}, headers=via("203.0.113.9")
    )
    assert invalid.status_code == 422, invalid.text
    assert await _games_hosted_by(module_db_url, "bad-quiz-host") == 0


@pytest.mark.parametrize(
    "path",
    [
        "/games/00000000-0000-4000-8000-000000000000/events?after_seq=2147483648",
        "/device-sessions/%00",
        "/device-sessions/abc%00def",
        "/websocket-connections?device_id=%00",
        "/websocket-connections?device_id=a%0Ab",
        "/games/by-code/%00",
        "/games/by-code/12%003",
        "/device-sessions/%FF%FE",  # not UTF-8
    ],
)
async def test_inputs_that_were_server_errors_are_refused(
    http: httpx.AsyncClient, path: str
) -> None:
    answer = await http.get(path)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "VALIDATION_ERROR"


def _ghost_token() -> str:
    """A valid access token whose user is in no auth.users row."""
    return jwt.encode(
        {"sub": str(uuid.uuid4()), "role": "authenticated", "exp": int(time.time()) + 600},
        SECRET,
        algorithm="HS256",
    )


async def test_a_token_of_an_unknown_user_cannot_create_a_game(
    server: ServerProcess, http: httpx.AsyncClient, quiz: uuid.UUID, module_db_url: str
) -> None:
    ghost = _ghost_token()
    answer = await http.post(
        "/games",
        json={"quiz_set_id": str(quiz), "device_id": "ghost-host"},
        headers={"authorization": f"Bearer {ghost}", **via("203.0.113.10")},
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "UNAUTHORIZED"
    assert await _games_hosted_by(module_db_url, "ghost-host") == 0

    socket = await Recorder(server.url).connect(auth={"token": _ghost_token()})
    try:
        await socket.emit("ws:connect", {"deviceId": "ghost-device"})
        error = await socket.expect("ws:error")
        assert error["error"] == "UNAUTHORIZED", error
    finally:
        await socket.close()


async def test_lobbies_expire_and_free_their_pin(db_url: str, tmp_path: Path) -> None:
    quiz = await make_test_quiz(db_url)
    conn = await asyncpg.connect(db_url)
    orphan = await make_game(conn)  # a waiting row with no log, from an older version's crash
    await conn.execute(
        "UPDATE games SET created_at = now() - interval '1 hour' WHERE id = $1", orphan
    )
    try:
        with run_server(db_url, tmp_path, TUIZ_LOAD_SAMPLE="false", TUIZ_ROOM_TTL_MS="1500") as s:
            async with httpx.AsyncClient(base_url=s.url, timeout=10) as http:
                lobby = (await _create(http, quiz, "127.0.0.1")).json()
                played = (await _create(http, quiz, "127.0.0.1")).json()
                start = await http.post(
                    f"/games/{played['id']}/start", headers={"x-host-token": played["host_token"]}
                )
                assert start.status_code == 200, start.text
                player = await Recorder(s.url).connect()
                try:
                    await player.register("lobby-player")
                    ack = await player.sio.call(
                        "game:join", {"pin": lobby["game_code"], "nickname": "Early"}, timeout=10
                    )
                    assert ack["ok"], ack
                    ended = await player.expect("game:end", timeout=15)
                    assert ended is not None
                finally:
                    await player.close()

                async def pin_free() -> bool:  # the games row follows the log a moment later
                    found = await http.get(f"/games/by-code/{lobby['game_code']}")
                    return found.status_code == 404

                assert await eventually(pin_free)

                async def orphan_gone() -> bool:
                    return not await conn.fetchval(
                        "SELECT count(*) FROM games WHERE id = $1", orphan
                    )

                assert await eventually(orphan_gone)
                row = await conn.fetchrow(
                    "SELECT status::text AS status, ended_at FROM games WHERE id = $1",
                    uuid.UUID(lobby["id"]),
                )
                assert row["status"] == "finished" and row["ended_at"] is not None
                logged = await conn.fetchval(
                    "SELECT count(*) FROM game_events"
                    " WHERE game_id = $1 AND event_type = 'game:end'",
                    uuid.UUID(lobby["id"]),
                )
                assert logged == 1
                # the PIN is free for a new game; the started game did not expire
                await conn.execute("INSERT INTO games (game_code) VALUES ($1)", lobby["game_code"])
                still = await http.get(f"/games/{played['id']}")
                assert still.json()["status"] == "active", still.text
    finally:
        await conn.close()


def test_client_address_believes_only_trusted_proxies() -> None:
    trusted = Settings(TUIZ_TRUSTED_PROXIES="10.0.0.0/8").trusted_proxy_networks
    assert client_address("192.0.2.1", "198.51.100.1", trusted) == "192.0.2.1"
    assert client_address("10.0.0.5", "198.51.100.1", trusted) == "198.51.100.1"
    assert client_address("10.0.0.5", "203.0.113.1, 198.51.100.1, 10.0.0.9", trusted) == (
        "198.51.100.1"
    )
    assert client_address("10.0.0.5", "not-an-ip", trusted) == "10.0.0.5"
    assert limit_key("2001:db8::1") == limit_key("2001:db8::ffff") == "2001:db8::/64"
    assert limit_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_limiter_memory_is_bounded() -> None:
    now = [0.0]
    buckets = KeyedBuckets(60, 2, max_keys=100, clock=lambda: now[0])
    for n in range(1000):
        assert buckets.take(f"k{n}")
    assert len(buckets) == 100  # past max_keys, the least recently seen go
    assert buckets.take("k999") and not buckets.take("k999")  # a busy key keeps its state
    now[0] += 10  # every bucket refilled: idle keys are dropped as new ones come
    buckets.take("new")
    assert len(buckets) == 1


def test_misses_let_through_at_once_become_a_debt() -> None:
    now = [0.0]
    misses = KeyedBuckets(60, 2, clock=lambda: now[0])  # one a second, bursts of 2
    for _ in range(5):  # five lookups in flight together all missed
        misses.charge("scanner")
    assert not misses.has("scanner")
    now[0] += 3.5
    assert not misses.has("scanner")  # three owed, and a token not yet whole
    now[0] += 0.5
    assert misses.has("scanner")
