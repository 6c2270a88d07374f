"""nginx with the project's own config (deploy/nginx.conf) in front of N `tuiz serve`
processes on loopback: what tests and `bench.game_load --cluster` run."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import asyncpg

from tests.servers import ServerProcess, free_port, run_server, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise RuntimeError("nginx is not installed: run `make nginx`")
    return found


def nginx_config(workdir: Path, listen: int, ports: list[int]) -> Path:
    """The shipped site, with this run's ports, inside a main config of the test's own."""
    site = SHIPPED.read_text()
    shipped_ports = [f"127.0.0.1:{8001 + i}" for i in range(3)]
    assert len(ports) == len(shipped_ports), "the shipped config names three processes"
    for old, port in zip(shipped_ports, ports, strict=True):
        site = site.replace(old, f"127.0.0.1:{port}")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen} reuseport;")
    temp = workdir / "nginx-temp"
    temp.mkdir(parents=True, exist_ok=True)
    # Two workers: each holds a client's and a process's connection per socket, so a worker
    # with the machine's open-files limit (20,000 here) stops near 10,000 sockets.
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    files = 65536 if files == resource.RLIM_INFINITY else files
    user = "user root root;" if os.geteuid() == 0 else ""
    main = f"""
{user}
worker_processes 2;
worker_rlimit_nofile {files};
error_log {workdir}/nginx-error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections {files - 200}; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{site}
}}
"""
    path = workdir / "nginx.conf"
    path.write_text(main)
    return path


@contextmanager
def run_nginx(workdir: Path, ports: list[int], timeout: float = 15) -> Iterator[str]:
    """nginx on a free loopback port in front of `ports`; yields its URL."""
    listen = free_port()
    config = nginx_config(workdir, listen, ports)
    log = (workdir / "nginx.out").open("wb")
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(workdir), "-c", str(config), "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{listen}"
    try:
        wait_ready(url, process, workdir / "nginx.out", timeout)  # a process's /ready, through it
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()


class Cluster:
    """Three tuiz processes (nodes n1..n3) behind nginx; a process may be killed and restarted."""

    def __init__(self, stack: ExitStack, db_url: str, workdir: Path, redis_url: str, **env: str):
        self.stack = stack
        self.db_url = db_url
        self.workdir = workdir
        self.env = {
            "REDIS_URL": redis_url,
            "TUIZ_LOAD_SAMPLE": "false",
            "TUIZ_TRUSTED_PROXIES": "127.0.0.1/32",
            **env,
        }
        self.ports = [free_port() for _ in range(3)]
        self.servers: list[ServerProcess] = self._start_all()
        self.url = stack.enter_context(run_nginx(workdir, self.ports))

    def _server(self, index: int) -> AbstractContextManager[ServerProcess]:
        return run_server(
            self.db_url,
            self.workdir / f"n{index + 1}",
            port=self.ports[index],
            TUIZ_NODE=f"n{index + 1}",
            **self.env,
        )

    def _start_all(self) -> list[ServerProcess]:
        """The three start side by side (each waits for its own readiness)."""
        managers = [self._server(i) for i in range(3)]
        with ThreadPoolExecutor(3) as pool:
            starts = [pool.submit(m.__enter__) for m in managers]
        for manager, start in zip(managers, starts, strict=True):
            if start.exception() is None:
                self.stack.push(manager.__exit__)
        return [start.result() for start in starts]

    def restart(self, index: int) -> ServerProcess:
        self.servers[index] = self.stack.enter_context(self._server(index))
        return self.servers[index]

    def index_of_pid(self, pid: int) -> int:
        return next(i for i, s in enumerate(self.servers) if s.process.pid == pid)

    async def owner_index(self, game_id: str) -> int | None:
        """The process holding the game's lease (None: nobody, or not one of these)."""
        conn = await asyncpg.connect(self.db_url)
        try:
            owner = await conn.fetchval(
                "SELECT owner FROM public.game_owners WHERE game_id = $1", uuid.UUID(game_id)
            )
        finally:
            await conn.close()
        pid = int(owner.split(":")[1]) if owner else None
        found = [i for i, s in enumerate(self.servers) if s.process.pid == pid]
        return found[0] if found else None


def node_of(eio_sid: str) -> int:
    """The index of the process holding an Engine.IO session (its id starts with `nK.`)."""
    return int(eio_sid.split(".", 1)[0][1:]) - 1
