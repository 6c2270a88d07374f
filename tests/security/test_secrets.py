"""Secrets: no public JWT secret off loopback, the service key not guessable without limit, host
and resume tokens under a key of their own. Real `tuiz serve` processes, loopback only: the
refusals exit before anything binds, and the one start on a public address fails at its
(unreachable) database before binding too.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import socketio

from tests.servers import ServerProcess, free_port, run_server, wait_ready
from tuiz.auth import host_token, seat_token
from tuiz.config import DEV_JWT_SECRET, Settings, is_loopback

SECRET = "secrets-test-jwt-secret-0123456789abcdef"
SERVICE_KEY = "secrets-test-service-key-0123456789abcdef"
WINDOW_S = 4.0
UNREACHABLE_DB = "postgresql://tuiz@127.0.0.1:1/none"


def serve(args: list[str], timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `tuiz serve` to its exit (without TUIZ_JWT_SECRET unless given)."""
    environment = {k: v for k, v in os.environ.items() if k != "TUIZ_JWT_SECRET"}
    environment |= {"DATABASE_URL": UNREACHABLE_DB, "TUIZ_PORT": str(free_port()), **env}
    return subprocess.run(
        [sys.executable, "-m", "tuiz.cli", "serve", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the JWT secret at start-up ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ([], {"TUIZ_HOST": "0.0.0.0"}),
        (["--host", "0.0.0.0"], {}),
        (["--host", "::"], {"TUIZ_JWT_SECRET": DEV_JWT_SECRET}),
        (["--host", "0.0.0.0"], {"TUIZ_JWT_SECRET": "short-secret"}),
        ([], {"TUIZ_HOST": "tuiz.example.com", "TUIZ_JWT_SECRET": ""}),
    ],
    ids=["env-host-no-secret", "flag-host-no-secret", "ipv6-default-secret", "short", "name"],
)
def test_serve_refuses_a_public_address_without_a_real_secret(
    args: list[str], env: dict[str, str]
) -> None:
    done = serve(args, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to serve on" in done.stderr
    assert "TUIZ_JWT_SECRET" in done.stderr
    # It stopped before the app: nothing started, nothing bound.
    assert "tuiz serving on" not in done.stdout
    assert "Waiting for application startup" not in done.stdout + done.stderr


def test_a_real_secret_passes_the_check_on_a_public_address() -> None:
    """With a real secret the check lets it go on (here to its unreachable database, which
    fails the start before uvicorn binds)."""
    done = serve(["--host", "0.0.0.0"], TUIZ_JWT_SECRET=SECRET)
    assert done.returncode not in (0, 2)
    assert "refusing" not in done.stderr
    assert "Application startup failed" in done.stdout + done.stderr
    assert "tuiz serving on" not in done.stdout


def test_loopback_and_secret_rules() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "", "10.0.0.1", "tuiz.example.com"]))
    assert Settings(TUIZ_JWT_SECRET=SECRET).jwt_secret_problem() is None  # type: ignore[call-arg]
    assert Settings().jwt_secret_problem() is not None


def test_serve_prints_the_address_it_bound(db_url: str, tmp_path: Path) -> None:
    """Port 0 and a second loopback address: the line shows what the socket really got."""
    out = tmp_path / "stdout.txt"
    environment = {
        **os.environ,
        "DATABASE_URL": db_url,
        "TUIZ_HOST": "127.0.0.2",
        "TUIZ_PORT": "0",
        "TUIZ_JWT_SECRET": SECRET,
        "TUIZ_LOG_FORMAT": "json",
        "TUIZ_LOAD_SAMPLE": "false",
        "TUIZ_DATA_DIR": str(tmp_path / "data"),
    }
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tuiz.cli", "serve"],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"tuiz serving on http://127\.0\.0\.2:(\d+)", out.read_text())
            time.sleep(0.1)
        assert found is not None, out.read_text()
        port = int(found.group(1))
        assert port != 0
        url = f"http://127.0.0.2:{port}"
        wait_ready(url, process, out)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(30)


# -- host and resume tokens ----------------------------------------------------------------------


def test_tokens_use_a_key_derived_for_them() -> None:
    """Never a MAC under the JWT secret itself; seat and host tokens never coincide."""
    game, player, device = "g-1", "p-1", "dev-1"
    seat = seat_token(SECRET, game, player, device)
    raw = hmac.new(SECRET.encode(), f"seat:{game}:{player}:{device}".encode(), "sha256").digest()
    assert seat != base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert seat == seat_token(SECRET, game, player, device)
    assert seat != seat_token(SECRET + "x", game, player, device)
    assert host_token(SECRET, game, player) not in (seat, seat_token(SECRET, game, player, ""))


def test_no_service_key_compared_with_equality() -> None:
    """Every comparison with the service key goes through hmac.compare_digest."""
    source = Path(__file__).resolve().parents[2] / "src" / "tuiz"
    pattern = re.compile(r"(==|!=)\s*[\w.]*service_key|service_key\s*(==|!=)")
    offenders = [
        f"{path}:{n}"
        for path in source.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# -- failed attempts, per client address ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(
        module_db_url,
        tmp_path_factory.mktemp("limits"),
        TUIZ_JWT_SECRET=SECRET,
        TUIZ_SERVICE_KEY=SERVICE_KEY,
        TUIZ_AUTH_FAIL_WINDOW_MS=str(int(WINDOW_S * 1000)),
        TUIZ_LOAD_SAMPLE="false",
    ) as s:
        yield s


@pytest.fixture(scope="module")
def proxied(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server behind a (simulated) reverse proxy on 127.0.0.1."""
    with run_server(
        module_db_url,
        tmp_path_factory.mktemp("proxied"),
        TUIZ_JWT_SECRET=SECRET,
        TUIZ_SERVICE_KEY=SERVICE_KEY,
        TUIZ_TRUSTED_PROXIES="127.0.0.1",
        TUIZ_LOAD_SAMPLE="false",
    ) as s:
        yield s


def client_from(address: str) -> httpx.Client:
    """HTTP from another loopback address: the server sees a different client."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def bearer(credential: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}", **headers}


def forged_jwt() -> str:
    claims = {"sub": "00000000-0000-0000-0000-000000000001", "exp": int(time.time()) + 600}
    return jwt.encode(claims, "not-the-secret-0123456789abcdef0123", algorithm="HS256")


def expired_jwt() -> str:
    claims = {"sub": "00000000-0000-0000-0000-000000000001", "exp": int(time.time()) - 60}
    return jwt.encode(claims, SECRET, algorithm="HS256")


STATS = "/websocket-connections/stats"


def test_thirty_wrong_keys_then_429(server: ServerProcess) -> None:
    attacker, neighbour = client_from("127.0.0.11"), client_from("127.0.0.12")
    with attacker, neighbour:
        for i in range(30):  # wrong service keys and forged tokens alike
            guess = f"guess-{i}" if i % 2 else forged_jwt()
            response = attacker.get(f"{server.url}{STATS}", headers=bearer(guess))
            assert response.status_code == 401, (i, response.text)
        for credential in ("guess-31", SERVICE_KEY):  # locked: the right key too
            locked = attacker.get(f"{server.url}{STATS}", headers=bearer(credential))
            assert locked.status_code == 429, locked.text
            assert locked.json()["error"] == "RATE_LIMITED"
        # Requests without credentials are not affected; other addresses neither.
        assert attacker.get(f"{server.url}/quiz-sets").status_code == 200
        ok = neighbour.get(f"{server.url}{STATS}", headers=bearer(SERVICE_KEY))
        assert ok.status_code == 200, ok.text
        time.sleep(WINDOW_S + 0.5)
        after = attacker.get(f"{server.url}{STATS}", headers=bearer(SERVICE_KEY))
        assert after.status_code == 200, after.text


def test_apikey_guesses_count_too(server: ServerProcess) -> None:
    with client_from("127.0.0.13") as attacker:
        for i in range(30):
            attacker.get(f"{server.url}{STATS}", headers={"apikey": f"guess-{i}"})
        locked = attacker.get(f"{server.url}{STATS}", headers={"apikey": SERVICE_KEY})
        assert locked.status_code == 429


def test_spoofed_forwarded_for_is_not_believed(server: ServerProcess) -> None:
    """Without TUIZ_TRUSTED_PROXIES a client cannot pose as many by writing X-Forwarded-For
    (from 127.0.0.1, whose X-Forwarded-For uvicorn would believe by default)."""
    with client_from("127.0.0.1") as attacker:
        for i in range(30):
            spoof = {"x-forwarded-for": f"198.51.100.{i + 1}"}
            attacker.get(f"{server.url}{STATS}", headers=bearer(f"guess-{i}", **spoof))
        locked = attacker.get(
            f"{server.url}{STATS}",
            headers=bearer(SERVICE_KEY, **{"x-forwarded-for": "198.51.100.99"}),
        )
        assert locked.status_code == 429
        time.sleep(WINDOW_S + 0.5)  # the module's server is shared (and checked at its end)
        assert attacker.get(f"{server.url}{STATS}", headers=bearer(SERVICE_KEY)).status_code == 200


def test_expired_tokens_of_ours_are_not_guesses(server: ServerProcess) -> None:
    """A stale session (expired, but signed by us) is refused without locking the address."""
    with client_from("127.0.0.15") as user:
        for _ in range(35):
            assert (
                user.get(f"{server.url}{STATS}", headers=bearer(expired_jwt())).status_code == 401
            )
        assert user.get(f"{server.url}{STATS}", headers=bearer(SERVICE_KEY)).status_code == 200


async def socket_connect(url: str, token: str, forwarded_for: str) -> dict[str, Any] | None:
    """Connect a Socket.IO client; None when accepted, else the refusal's `{error, message}`."""
    client = socketio.AsyncClient(reconnection=False)
    refusal: list[Any] = []
    client.on("connect_error", refusal.append)
    try:
        await client.connect(
            url,
            transports=["websocket"],
            auth={"token": token},
            headers={"X-Forwarded-For": forwarded_for},
            wait_timeout=10,
        )
    except socketio.exceptions.ConnectionError:
        assert refusal, "refused without a reason"
        payload: dict[str, Any] = refusal[0]["data"]
        return payload
    await client.disconnect()
    return None


def test_behind_a_trusted_proxy_each_client_counts_and_sockets_count_too(
    proxied: ServerProcess,
) -> None:
    """Through the proxy, X-Forwarded-For names the client; REST and Socket.IO share one count."""
    attacker, neighbour = "203.0.113.7", "203.0.113.8"
    with httpx.Client(timeout=10) as http:
        for i in range(15):
            response = http.get(
                f"{proxied.url}{STATS}",
                headers=bearer(f"guess-{i}", **{"x-forwarded-for": attacker}),
            )
            assert response.status_code == 401

        async def sockets() -> None:
            for i in range(15):
                refusal = await socket_connect(proxied.url, f"sock-guess-{i}", attacker)
                assert refusal is not None and refusal["error"] == "UNAUTHORIZED", refusal
            refusal = await socket_connect(proxied.url, SERVICE_KEY, attacker)
            assert refusal is not None and refusal["error"] == "RATE_LIMITED", refusal
            assert await socket_connect(proxied.url, SERVICE_KEY, neighbour) is None

        asyncio.run(sockets())
        locked = http.get(
            f"{proxied.url}{STATS}", headers=bearer(SERVICE_KEY, **{"x-forwarded-for": attacker})
        )
        assert locked.status_code == 429
        ok = http.get(
            f"{proxied.url}{STATS}", headers=bearer(SERVICE_KEY, **{"x-forwarded-for": neighbour})
        )
        assert ok.status_code == 200, ok.text
