"""A PIN scanner, a password guesser or a credential guesser spreading its requests over
several processes gets one budget, not one each.

Two real processes share one Redis (cluster/limits.py): the scanner's unknown-PIN lookups,
alternated between them, run out after the configured burst in all, and then both refuse
it; a password guesser's failed sign-ins, alternated the same way, lock the account on both
after the configured number in all, and wrong service keys lock their address out on both.
Redis killed: each process decides alone again (its own budget), with no error and no wait
per request; Redis back: one budget again.
"""

from __future__ import annotations

import collections
import secrets
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.cluster.redisproc import RedisProcess
from tests.cluster.test_two_processes import await_log, metric
from tests.servers import ServerProcess, run_server
from tests.sioclient import eventually

BURST = 6  # unknown-PIN lookups an address may make (per minute, all at once)
FAILURES = 3  # failed sign-ins an account may have in its window
GUESSES = 4  # failed credentials (service key, JWT) an address may present in its window


def _pair(stack: ExitStack, db_url: str, tmp_path: Path, redis: str) -> list[ServerProcess]:
    env = {
        "REDIS_URL": redis,
        "TUIZ_TRUSTED_PROXIES": "127.0.0.1",
        "TUIZ_PIN_MISS_LIMIT_PER_MIN": str(BURST),
        "TUIZ_PIN_MISS_LIMIT_BURST": str(BURST),
        "TUIZ_LOGIN_MAX_FAILURES": str(FAILURES),
        "TUIZ_AUTH_FAIL_LIMIT": str(GUESSES),
        "TUIZ_LOAD_SAMPLE": "false",
        "TUIZ_LOG_LEVEL": "info",
    }
    return [stack.enter_context(run_server(db_url, tmp_path, **env)) for _ in range(2)]


async def _scan(
    servers: list[ServerProcess], address: str, lookups: int
) -> collections.Counter[int]:
    """`lookups` unknown PINs from `address`, one at a time, alternating between processes."""
    codes: collections.Counter[int] = collections.Counter()
    async with httpx.AsyncClient(timeout=10) as http:
        for n in range(lookups):
            server = servers[n % len(servers)]
            pin = f"{secrets.randbelow(900_000) + 100_000}"
            answer = await http.get(
                f"{server.url}/games/by-code/{pin}", headers={"x-forwarded-for": address}
            )
            codes[answer.status_code] += 1
    return codes


async def test_a_scanner_gets_one_budget_across_processes(
    db_url: str, tmp_path: Path, stoppable_redis: RedisProcess
) -> None:
    with ExitStack() as stack:
        servers = _pair(stack, db_url, tmp_path, stoppable_redis.url)

        codes = await _scan(servers, "198.51.100.7", 4 * BURST)
        assert codes == {404: BURST, 429: 3 * BURST}, codes  # one burst, not one per process

        # Another address is unaffected.
        assert await _scan(servers, "198.51.100.8", 2) == {404: 2}

        stoppable_redis.stop()
        # Each process decides alone: a fresh address gets a burst on each, then is refused.
        codes = await _scan(servers, "198.51.100.9", 4 * BURST)
        assert codes == {404: 2 * BURST, 429: 2 * BURST}, codes
        for server in servers:
            await await_log(server, "shared_limits_unavailable")
            assert await metric(server, "tuiz_shared_limit_fallbacks_total") > 0
            assert server.process.poll() is None

        stoppable_redis.start()

        async def shared_again() -> bool:
            # Redis is asked again a second after it failed; a fresh address then gets one
            # burst across both processes.
            address = f"203.0.113.{secrets.randbelow(200) + 1}"
            return await _scan(servers, address, 4 * BURST) == {404: BURST, 429: 3 * BURST}

        assert await eventually(shared_again, timeout=20)


async def test_a_password_guesser_gets_one_allowance_across_processes(
    db_url: str, tmp_path: Path, redis_url: str
) -> None:
    with ExitStack() as stack:
        servers = _pair(stack, db_url, tmp_path, redis_url)
        email = f"guessed-{secrets.token_hex(4)}@example.com"
        password = "correct horse battery staple 42"
        async with httpx.AsyncClient(timeout=30) as http:
            made = await http.post(
                f"{servers[0].url}/auth/register", json={"email": email, "password": password}
            )
            assert made.status_code == 201, made.text
            codes = []
            for n in range(2 * FAILURES):
                answer = await http.post(
                    f"{servers[n % 2].url}/auth/login",
                    json={"email": email, "password": f"guess number {n} of many"},
                )
                codes.append(answer.status_code)
            assert codes == [401] * FAILURES + [429] * FAILURES, codes  # not 401 x 6
            for server in servers:  # locked everywhere, even with the right password
                right = await http.post(
                    f"{server.url}/auth/login", json={"email": email, "password": password}
                )
                assert right.status_code == 429, right.text
                assert right.json()["error"] == "RATE_LIMITED"


async def test_a_credential_guesser_gets_one_allowance_across_processes(
    db_url: str, tmp_path: Path, stoppable_redis: RedisProcess
) -> None:
    """Wrong service keys from one address, alternating between processes: locked out on
    both after GUESSES in all (each process alone would allow GUESSES of its own). Redis
    away: each process counts alone, no error."""
    with ExitStack() as stack:
        servers = _pair(stack, db_url, tmp_path, stoppable_redis.url)
        stats = "/websocket-connections/stats"

        async def guess(http: httpx.AsyncClient, n: int, address: str) -> int:
            answer = await http.get(
                f"{servers[n % 2].url}{stats}",
                headers={"authorization": f"Bearer guess-{n}", "x-forwarded-for": address},
            )
            return answer.status_code

        # Fresh addresses: Redis outlives a run, and the window with it.
        address, other = (f"198.18.{secrets.randbelow(250)}.{n}" for n in (1, 2))
        async with httpx.AsyncClient(timeout=10) as http:
            codes = [await guess(http, n, address) for n in range(2 * GUESSES)]
            assert codes == [401] * GUESSES + [429] * GUESSES, codes  # not 401 x 8
            locked = await http.get(
                f"{servers[1].url}{stats}",
                headers={"authorization": "Bearer guess-x", "x-forwarded-for": address},
            )
            assert locked.json()["error"] == "RATE_LIMITED"
            assert locked.json()["details"]["retry_after_s"] >= 1
            assert await guess(http, 0, other) == 401  # another address: its own count

            stoppable_redis.stop()
            alone = f"198.18.{secrets.randbelow(250)}.3"
            codes = [await guess(http, n, alone) for n in range(3 * GUESSES)]
            assert codes == [401] * 2 * GUESSES + [429] * GUESSES, codes
            stoppable_redis.start()
