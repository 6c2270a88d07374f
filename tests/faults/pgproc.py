"""A PostgreSQL of a test's own, on a loopback port, that the test may stop hard and restart.

The session's server (`pg_server_url`) is shared by every test, so a test that takes the
database away starts this one instead: pgserver's binaries on a data directory in the test's
tmp folder (`EmbeddedPostgres` runs initdb, as an unprivileged user when we are root), then
`pg_ctl` with a fixed TCP port so the URL stays the same across restarts.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import psutil
from pgserver._commands import POSTGRES_BIN_PATH

from tests.servers import free_port
from tuiz.store.embedded import EmbeddedPostgres

PG_USER = "postgres"


class PostgresProcess:
    """`start()`, `stop()` (immediate: like a crash, no checkpoint) and `start()` again."""

    def __init__(self, workdir: Path) -> None:
        self.data_dir = (workdir / "pgdata").resolve()
        self.port = free_port()
        # initdb and postgres refuse to run as root; pgserver creates this user for them.
        self.run_as = "pgserver" if os.geteuid() == 0 else None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            user=self.run_as,
        )

    def start(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            initialised = EmbeddedPostgres(self.data_dir, cleanup="stop")
            initialised.start()
            initialised.stop()
        self.starts += 1
        self._pg_ctl(
            "-w",
            "-t", "60",
            "-l", str(self.data_dir / f"server-{self.starts}.log"),
            "-o", f"-h 127.0.0.1 -p {self.port} -k ''",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every connection cut at once, as in a crash; `fast`: a clean stop
        (sessions told "terminating connection due to administrator command")."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def _processes(self) -> list[psutil.Process]:
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def freeze(self) -> None:
        """SIGSTOP the server and its backends: connections stay open but nothing answers,
        as when the network to the database is lost (no error, only silence)."""
        for process in self._processes():
            process.suspend()

    def thaw(self) -> None:
        for process in self._processes():
            process.resume()

    def destroy(self) -> None:
        """Stop if running (the data directory goes with the test's tmp folder)."""
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(psutil.Error):
                self.thaw()
            self._pg_ctl("-w", "-m", "immediate", "stop")
