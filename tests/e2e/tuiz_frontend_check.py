"""Play one game in the real, unchanged TUIZ web client against this tuiz (not part of `make test`).

Needs a production build of github:PandaDev0069/tuiz-frontend made with
`NEXT_PUBLIC_API_BASE=http://127.0.0.1:8123` (see its BUILD-NOTES.txt) at `TUIZ_FRONTEND`.
Run: `TUIZ_FRONTEND=/work/tuiz-frontend .venv/bin/python -m tests.e2e.tuiz_frontend_check`.

It runs its own tuiz, PostgreSQL and `next start` on free ports, so it never disturbs a server
already on 8123/3100: the browser's calls to the baked-in 8123 are routed to this tuiz by
Playwright (HTTP by `page.route`, the Socket.IO websocket by `route_web_socket`). Until the
account and `/quiz/*` routes land (another branch), the test supplies what they would: a user
and quiz seeded in SQL, the session stored the way the client stores it, `GET /quiz/:id`
answered from `/quiz-sets/:id`, and CORS headers on REST. Each step prints `works` or `FAILS`;
screenshots go to test-output/tuiz-frontend/.
"""

# A script that starts its own servers: blocking start-up calls are fine here.
# ruff: noqa: ASYNC210, ASYNC220, ASYNC230, ASYNC240

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import websockets
from playwright.async_api import BrowserContext, Page, Route, WebSocketRoute, async_playwright

from tests.factories import make_user
from tests.servers import free_port, run_server
from tuiz.store.embedded import EmbeddedPostgres, database_url
from tuiz.store.quizzes import import_quiz

BAKED = "127.0.0.1:8123"
ERROR_TRAP = """(() => {
  const keep = (text) => { try {
    const kept = JSON.parse(localStorage.getItem('__check_errors') || '[]');
    kept.push(new Date().toISOString() + ' ' + location.pathname + location.search.slice(0, 60)
      + ' ' + text.slice(0, 900));
    localStorage.setItem('__check_errors', JSON.stringify(kept.slice(-80)));
  } catch (e) {} };
  const error = console.error;
  console.error = function (...args) {
    keep(args.map((a) => (a && a.stack) || String(a)).join(' | '));
    return error.apply(this, args);
  };
  addEventListener('error', (e) => keep('uncaught ' + ((e.error && e.error.stack) || e.message)));
  addEventListener('unhandledrejection', (e) => keep('rejection ' + String(e.reason)));
  addEventListener('pagehide', () => keep('pagehide'));
})();"""
SECRET = "frontend-check-jwt-secret-0123456789abcdef"
OUT = Path(__file__).resolve().parents[2] / "test-output" / "tuiz-frontend"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
QUIZ: dict[str, Any] = {
    "version": 1,
    "title": "Frontend check",
    "status": "published",
    "is_public": False,
    "questions": [
        {
            "question_text": text,
            "question_type": "multiple_choice",
            "show_question_time": 3,
            "answering_time": 20,
            "show_explanation_time": 5,
            "points": 1000,
            "explanation_title": "Why" if n == 0 else None,
            "explanation_text": "Because it is." if n == 0 else None,
            "answers": [
                {"answer_text": right, "is_correct": True},
                {"answer_text": wrong, "is_correct": False},
            ],
        }
        for n, (text, right, wrong) in enumerate(
            [("Capital of Japan?", "Tokyo", "Osaka"), ("2 + 2?", "Four", "Five")]
        )
    ],
}
RESULTS: list[tuple[str, bool, str]] = []
TASKS: set[asyncio.Future[Any]] = set()


def spawn(awaitable: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(awaitable)
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)


async def step(name: str, page: Page | None, run: Callable[[], Awaitable[Any]]) -> bool:
    """Run one user step; record works/FAILS with a screenshot either way."""
    detail = ""
    try:
        await run()
        ok = True
    except Exception as exc:  # a failed step is a finding, not a crash
        ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if page is not None:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
        await page.screenshot(path=str(OUT / f"{len(RESULTS) + 1:02d}-{slug}.png"))
    RESULTS.append((name, ok, detail))
    print(f"{'works' if ok else 'FAILS'}  {name}  {detail}", flush=True)
    return ok


class Bridge:
    """The browser's calls to the baked-in API base, sent to this run's tuiz."""

    def __init__(self, api: str, origin: str) -> None:
        self.api, self.origin = api, origin
        self.http = httpx.AsyncClient(base_url=api, timeout=20)
        self.has_quiz_routes = True
        self.label = ""
        self.count = 0
        self.frames: Any = None

    def note(self, text: str) -> None:
        if self.frames is not None:
            self.frames.write(text + "\n")

    def cors(self) -> dict[str, str]:
        return {
            "access-control-allow-origin": self.origin,
            "access-control-allow-headers": "authorization, content-type",
            "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            "vary": "Origin",
        }

    async def route(self, route: Route) -> None:
        request = route.request
        if request.method == "OPTIONS":
            await route.fulfill(status=204, headers=self.cors())
            return
        path = request.url.split(BAKED, 1)[1]
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization",)}
        headers["content-type"] = "application/json"
        quiz = re.match(r"^/quiz/([0-9a-f-]{36})(\?.*)?$", path)
        if quiz and not self.has_quiz_routes:  # before /quiz/* existed: from /quiz-sets/:id
            got = await self.http.get(f"/quiz-sets/{quiz.group(1)}", headers=headers)
            body = got.text
            if got.status_code == 200:
                body = json.dumps(quiz_complete(got.json()))
            await route.fulfill(
                status=got.status_code,
                body=body,
                headers={**self.cors(), "content-type": "application/json"},
            )
            return
        try:
            got = await self.forward(request.method, path, headers, request.post_data_buffer)
        except httpx.HTTPError as exc:  # never leave the browser's request hanging
            self.note(f"{self.label} bridge {request.method} {path[:80]} failed: {exc!r}")
            await route.abort()
            return
        keep = {k: v for k, v in got.headers.items() if k.lower() in ("content-type",)}
        await route.fulfill(
            status=got.status_code, body=got.content, headers={**keep, **self.cors()}
        )

    async def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> httpx.Response:
        """One call to tuiz. A kept-alive connection the server closed while idle fails before
        any response (`RemoteProtocolError`); a browser retries that on a new connection, and so
        does this (a request that got no answer was never processed)."""
        for attempt in range(3):
            try:
                return await self.http.request(method, path, headers=headers, content=body)
            except httpx.RemoteProtocolError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def websocket(self, ws: WebSocketRoute) -> None:
        url = ws.url.replace(f"ws://{BAKED}", self.api.replace("http://", "ws://"))
        server = await websockets.connect(url)
        self.count += 1
        tag = f"{self.label}#{self.count}"

        ws.on_message(lambda message: spawn(server.send(message)))
        ws.on_close(lambda *_: (spawn(server.close()), self.note(f"{tag} closed by page")))

        async def pump() -> None:
            with contextlib.suppress(Exception):
                async for message in server:
                    if self.frames is not None and isinstance(message, str) and message[:2] == "42":
                        self.frames.write(f"{tag} <- {message[2:200]}\n")
                        self.frames.flush()
                    ws.send(message)
            with contextlib.suppress(Exception):
                await ws.close()

        spawn(pump())


def quiz_complete(doc: dict[str, Any]) -> dict[str, Any]:
    """tuiz's quiz document in the client's QuizSetComplete names (ordered, with ids)."""
    quiz = dict(doc)
    questions = []
    for i, q in enumerate(doc.get("questions", [])):
        answers = [
            {**a, "order_index": a.get("order_index", j)}
            for j, a in enumerate(q.get("answers", []))
        ]
        questions.append({**q, "order_index": q.get("order_index", i), "answers": answers})
    quiz["questions"] = questions
    quiz.setdefault("play_settings", {})
    return quiz


async def seed(db: str, api: str) -> tuple[uuid.UUID, dict[str, Any]]:
    """A host account (`POST /auth/register`, as the sign-up page does) owning the quiz."""
    async with httpx.AsyncClient(base_url=api, timeout=20) as http:
        got = await http.post(
            "/auth/register",
            json={
                "email": "host@example.test",
                "password": "a-long-password-1",
                "username": "host",
            },
        )
        if got.status_code == 404:  # before accounts existed: a user row and a signed token
            conn = await asyncpg.connect(db)
            try:
                owner = await make_user(conn, "host@example.test")
            finally:
                await conn.close()
            now = int(time.time())
            token = jwt.encode(
                {"sub": str(owner), "role": "authenticated", "exp": now + 7200},
                SECRET,
                algorithm="HS256",
            )
            auth = {
                "user": {"id": str(owner), "email": "host@example.test", "username": "host"},
                "session": {"access_token": token, "expires_in": 7200, "expires_at": now + 7200},
            }
        else:
            assert got.status_code in (200, 201), got.text
            auth = got.json()
            owner = uuid.UUID(auth["user"]["id"])
    conn = await asyncpg.connect(db)
    try:
        return await import_quiz(conn, owner, QUIZ), auth
    finally:
        await conn.close()


async def signed_in_host(ctx: BrowserContext, auth: dict[str, Any]) -> None:
    """The session stored the way the client's sign-in stores it."""
    script = (
        f"localStorage.setItem('tuiz_session', {json.dumps(json.dumps(auth['session']))});"
        f"localStorage.setItem('tuiz_user', {json.dumps(json.dumps(auth['user']))});"
    )
    await ctx.add_init_script(script)


async def main() -> int:
    frontend = Path(os.environ.get("TUIZ_FRONTEND", "/work/tuiz-frontend"))
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuiz-fe-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", cleanup="delete")
        admin = pg.start()
        conn = await asyncpg.connect(admin)
        await conn.execute('CREATE DATABASE "frontend_check"')
        await conn.close()
        db = database_url(admin, "frontend_check")
        web_port = free_port()
        origin = f"http://127.0.0.1:{web_port}"
        env = {"TUIZ_JWT_SECRET": SECRET, "TUIZ_CORS_ORIGINS": origin, "TUIZ_LOAD_SAMPLE": "false"}
        next_log = open(Path(tmp) / "next.log", "wb")  # noqa: SIM115
        web = subprocess.Popen(
            ["npx", "next", "start", "-p", str(web_port), "-H", "127.0.0.1"],
            cwd=frontend,
            env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1"},
            stdout=next_log,
            stderr=subprocess.STDOUT,
        )
        try:
            with run_server(db, Path(tmp), **env) as server:
                quiz_id, auth = await seed(db, server.url)
                server_log = server.log_path
                for _ in range(120):
                    try:
                        if httpx.get(origin, timeout=2).status_code < 500:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                try:
                    return await play(server.url, origin, quiz_id, auth)
                finally:
                    (OUT / "server.log").write_bytes(Path(server_log).read_bytes())
        finally:
            web.terminate()
            web.wait(10)
            pg.stop()


async def play(api: str, origin: str, quiz_id: uuid.UUID, auth: dict[str, Any]) -> int:
    bridge = Bridge(api, origin)
    probe = await bridge.http.get(f"/quiz/{quiz_id}")
    bridge.has_quiz_routes = probe.status_code != 404 or "quiz" in probe.text.lower()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        contexts = []
        frames = (OUT / "frames.log").open("w")
        for kind in ("host", "p1", "p2"):
            ctx = await browser.new_context(
                **({"viewport": {"width": 1280, "height": 900}} if kind == "host" else PHONE)
            )
            await ctx.route(re.compile(rf"^http://{re.escape(BAKED)}/.*"), bridge.route)
            mine = Bridge(api, origin)
            mine.has_quiz_routes, mine.label, mine.frames = bridge.has_quiz_routes, kind, frames
            await ctx.route_web_socket(re.compile(rf"^ws://{re.escape(BAKED)}/.*"), mine.websocket)
            contexts.append(ctx)
        for ctx in contexts:  # errors survive a full page load (Playwright drops them on unload)
            await ctx.add_init_script(ERROR_TRAP)
        await signed_in_host(contexts[0], auth)
        host, p1, p2 = [await c.new_page() for c in contexts]
        console = (OUT / "console.log").open("w")
        for label, page in (("host", host), ("p1", p1), ("p2", p2)):
            page.on(
                "console",
                lambda m, label=label: (
                    console.write(f"{label} {m.type}: {m.text[:300]}\n"),
                    console.flush(),
                ),
            )
            page.on(
                "requestfailed",
                lambda r, label=label: (
                    frames.write(f"{label} request failed {r.url[:160]} {r.failure}\n"),
                    frames.flush(),
                ),
            )
            # A full page load (not a client-side route change) drops the page's socket.
            page.on(
                "request",
                lambda r, label=label: (
                    r.resource_type == "document"
                    and r.frame == r.frame.page.main_frame
                    and (frames.write(f"{label} page load {r.url.split('?')[0]}\n"), frames.flush())
                ),
            )
        game: dict[str, Any] = {}

        async def create() -> None:
            # The dashboard lists the host's published quiz; its start button creates the game.
            await host.goto(f"{origin}/dashboard")
            await host.get_by_text(QUIZ["title"]).first.wait_for(timeout=30000)
            await host.get_by_role("button", name=re.compile("ゲーム開始")).first.click()
            await host.wait_for_url(re.compile(r"host-waiting-room"), timeout=30000)
            query = dict(
                part.split("=", 1) for part in host.url.split("?", 1)[1].split("&") if "=" in part
            )
            game.update(id=query["gameId"], game_code=query["code"])
            await host.get_by_text(game["game_code"]).first.wait_for(timeout=20000)

        if not await step(
            "host: signed in, starts the quiz from the dashboard; waiting room shows PIN",
            host,
            create,
        ):
            return report()

        async def join(page: Page, name: str) -> None:
            await page.goto(f"{origin}/join")
            await page.get_by_placeholder("あなたの名前").fill(name)
            await page.get_by_placeholder("123456").fill(game["game_code"])
            await page.locator("button[type=submit]").click()
            await page.wait_for_url(re.compile(r"waiting-room"), timeout=20000)
            await host.get_by_text(name).first.wait_for(timeout=20000)

        await step("player 1 joins by PIN (host lobby lists them)", p1, lambda: join(p1, "Aki"))
        await step("player 2 joins by PIN (host lobby lists them)", p2, lambda: join(p2, "Ben"))

        async def start() -> None:
            await host.get_by_text("クイズ開始").first.click()
            await host.get_by_role("button", name="ゲーム開始").last.click()
            await host.wait_for_url(re.compile(r"game-host"), timeout=20000)
            for page in (p1, p2):
                await page.wait_for_url(re.compile(r"game-player"), timeout=20000)

        await step("host starts; players move to the game", host, start)

        picks = [("Tokyo", "Osaka"), ("Four", "Five")]
        for index, (right, wrong) in enumerate(picks):
            n = index + 1

            async def answer(page: Page, text: str) -> None:
                button = page.get_by_role("button", name=re.compile(re.escape(text)))
                await button.first.wait_for(timeout=30000)
                await asyncio.sleep(0.5)
                await button.first.click()

            await step(
                f"Q{n}: player 1 sees the choices and answers right",
                p1,
                lambda right=right: answer(p1, right),
            )
            if index == 1:

                async def reload(wrong: str = wrong) -> None:
                    await p2.reload()
                    await p2.get_by_role("button", name=re.compile(wrong)).first.wait_for(
                        timeout=30000
                    )

                await step(
                    "Q2: player 2 reloads mid-question and gets the question back", p2, reload
                )
            await step(f"Q{n}: player 2 answers wrong", p2, lambda wrong=wrong: answer(p2, wrong))

            async def reveal() -> None:
                # Everyone answered, so the server closed the question and the host page is
                # at the reveal already; otherwise the host presses the button.
                button = host.get_by_text("答えを表示").first
                with contextlib.suppress(Exception):
                    await button.click(timeout=3000)
                await host.get_by_role(
                    "button", name=re.compile("ランキングへ|表彰台へ|解説へ")
                ).first.wait_for(timeout=15000)

            await step(f"Q{n}: host reveals", host, reveal)

            async def seen_result(page: Page) -> None:
                await page.wait_for_url(re.compile(r"phase=answer_reveal"), timeout=20000)

            await step(f"Q{n}: player 1 sees the reveal", p1, lambda: seen_result(p1))
            await step(f"Q{n}: player 2 sees the reveal", p2, lambda: seen_result(p2))

            async def next_phase(label: str) -> None:
                await host.get_by_role("button", name=label).first.click()
                await asyncio.sleep(2)

            if index == 0:
                await step("Q1: host → leaderboard", host, lambda: next_phase("ランキングへ"))
                await step(
                    "Q1: player leaderboard",
                    p1,
                    lambda: p1.wait_for_url(re.compile("leaderboard"), timeout=15000),
                )
                await step("Q1: host → explanation", host, lambda: next_phase("解説へ"))
                await step(
                    "Q1: player explanation",
                    p1,
                    lambda: p1.wait_for_url(re.compile("explanation"), timeout=15000),
                )
                await step(
                    "Q1: host → next question (countdown)", host, lambda: next_phase("次の問題へ")
                )
            else:
                await step("Q2: host → podium", host, lambda: next_phase("表彰台へ"))

        async def podium(page: Page) -> None:
            await page.wait_for_url(re.compile("podium|ended"), timeout=45000)
            await asyncio.sleep(3)

        await step("player 1 sees the podium", p1, lambda: podium(p1))
        await step("player 2 sees the podium", p2, lambda: podium(p2))
        board = (await bridge.http.get(f"/games/{game['id']}/leaderboard")).json()
        print("final leaderboard:", json.dumps(board["entries"], ensure_ascii=False), flush=True)
        events = await bridge.http.get(
            f"/games/{game['id']}/events?limit=500",
            headers={"authorization": "Bearer servers-replay-check-key"},
        )
        with (OUT / "events.log").open("w") as out:
            for e in events.json().get("items", []):
                payload = e.get("payload") or {}
                out.write(f"{e.get('seq')} {e.get('event_type')} {payload.get('phase', '')}\n")
        with (OUT / "errors.log").open("w") as out:
            for label, page in (("host", host), ("p1", p1), ("p2", p2)):
                kept = await page.evaluate("localStorage.getItem('__check_errors') || '[]'")
                out.writelines(f"{label} {line}\n" for line in json.loads(kept))
        await browser.close()
    return report()


def report() -> int:
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)}/{len(RESULTS)} steps work", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
