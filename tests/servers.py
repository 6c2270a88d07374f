"""Run real tuiz server processes for tests (the same `tuiz serve` that `make run` starts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, as an orchestrator would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (crash tests)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Poll /ready until it answers 200, failing fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server not ready after {timeout}s:\n{log.read_text()}")


@contextmanager
def run_server(
    database_url: str, tmp_path: Path, *, port: int | None = None, **env: str
) -> Iterator[ServerProcess]:
    """Start `tuiz serve` on a loopback port against `database_url`; stop it afterwards."""
    port = port or free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    log_path = tmp_path / f"server-{port}.log"
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TUIZ_HOST": "127.0.0.1",
        "TUIZ_PORT": str(port),
        "TUIZ_LOG_FORMAT": "json",
        "TUIZ_DATA_DIR": str(tmp_path / "data"),
        "TUIZ_SERVICE_KEY": "servers-replay-check-key",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tuiz.cli", "serve"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        wait_ready(server.url, process, log_path)
        yield server
        if process.poll() is None and environment.get("TUIZ_STORE", "postgres") != "memory":
            check_replays(server, environment["TUIZ_SERVICE_KEY"])
    finally:
        server.kill()


def check_replays(server: ServerProcess, service_key: str) -> None:
    """Every finished game of the test, rebuilt from its event log alone, ends with the
    scores the live game had: nothing was applied that was not persisted."""
    auth = {"authorization": f"Bearer {service_key}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=auth) as http:
        listed = http.get("/games", params={"limit": 200})
        assert listed.status_code == 200, listed.text
        for game in listed.json()["games"]:
            if game["status"] != "finished":
                continue
            report = http.get(f"/games/{game['id']}/report")
            if report.status_code == 404:
                continue  # made by SQL in the test, without an event log
            assert report.status_code == 200, report.text
            live = report.json()["players"]
            replayed = http.get(f"/games/{game['id']}/replay").json()["leaderboard"]
            assert {r["player_id"]: r["score"] for r in replayed} == {
                r["player_id"]: r["score"] for r in live
            }, f"game {game['id']}: replay differs from the live game"
