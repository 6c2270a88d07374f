"""Play one game in the real, unchanged TUIZ web client against this tuiz (not part of `make test`).

Needs a production build of github:PandaDev0069/tuiz-frontend (outside this repo, never committed)
at `TUIZ_FRONTEND` (default /work/tuiz-frontend), built as issue 12 says:
`npm ci --ignore-scripts`, then `npx next build` with `NEXT_PUBLIC_API_BASE=http://127.0.0.1:<port>`
and the two `NEXT_PUBLIC_SUPABASE_*` variables set to any value, in the environment or in the
build's `.env.production.local` (this script reads the API base from the same places).
Run: `.venv/bin/python -m tests.e2e.tuiz_frontend_check`.

The browser talks to tuiz the way a person's browser does: tuiz listens on the port baked into
the build, with the client's page origin in `TUIZ_CORS_ORIGINS`, and nothing is intercepted or
rewritten (Playwright only watches: requests, page loads, socket frames, console). The host signs
up and signs in through the client's own pages; the quiz is imported into the host's account.
After the game the host makes a quiz in the editor (`TUIZ_CHECK_ONLY=editor`: only that).
Each step prints `works` or `FAILS`; screenshots and logs go to test-output/tuiz-frontend/.
"""

# A script that starts its own servers: blocking start-up calls are fine here.
# ruff: noqa: ASYNC210, ASYNC220, ASYNC230, ASYNC240

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from playwright.async_api import Page, Request, WebSocket, async_playwright

from tests.api.test_client_contract_host import png
from tests.servers import free_port, run_server
from tuiz.store.embedded import EmbeddedPostgres, database_url
from tuiz.store.quizzes import import_quiz

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
        lines = str(exc).splitlines()
        waited = next((line.strip() for line in lines if "waiting for" in line), "")
        ok, detail = (
            False,
            f"{type(exc).__name__}: {lines[0][:200] if lines else ''} {waited[:160]}",
        )
    if page is not None:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
        await page.screenshot(path=str(OUT / f"{len(RESULTS) + 1:02d}-{slug}.png"))
    RESULTS.append((name, ok, detail))
    print(f"{'works' if ok else 'FAILS'}  {name}  {detail}", flush=True)
    return ok


def baked_api_base(frontend: Path) -> str:
    """The API base the build was made with (environment first, as `next build` reads it)."""
    if base := os.environ.get("NEXT_PUBLIC_API_BASE"):
        return base.rstrip("/")
    env_file = frontend / ".env.production.local"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("NEXT_PUBLIC_API_BASE="):
                return line.split("=", 1)[1].strip().strip("'\"").rstrip("/")
    return "http://127.0.0.1:8123"


async def main() -> int:
    frontend = Path(os.environ.get("TUIZ_FRONTEND", "/work/tuiz-frontend"))
    api = baked_api_base(frontend)
    api_port = int(api.rsplit(":", 1)[1])
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
            start_new_session=True,  # npx runs next-server as a child: stop the whole group
        )
        try:
            with run_server(db, Path(tmp), port=api_port, **env) as server:
                server_log = server.log_path
                for _ in range(120):
                    try:
                        if httpx.get(origin, timeout=2).status_code < 500:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                try:
                    return await play(server.url, origin, db)
                finally:
                    (OUT / "server.log").write_bytes(Path(server_log).read_bytes())
        finally:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(10)
            (OUT / "next.log").write_bytes((Path(tmp) / "next.log").read_bytes())
            pg.stop()


def watch(page: Page, label: str, frames: Any, net: Any, console: Any) -> None:
    """Record what the page does without touching it: console, document loads, the Next.js
    router's RSC fetches with their outcome, failed requests and the socket's frames."""

    def write(out: Any, text: str) -> None:
        out.write(f"{asyncio.get_running_loop().time():10.3f} {label} {text}\n")
        out.flush()

    def rsc(request: Request) -> bool:
        return "_rsc=" in request.url or request.headers.get("rsc") == "1"

    def on_request(request: Request) -> None:
        if request.resource_type == "document" and request.frame == page.main_frame:
            write(frames, f"page load {request.url.split('?')[0]}")
            write(net, f"document {request.url[:200]}")
        elif rsc(request):
            write(net, f"rsc request {request.url[:200]}")

    def on_response(response: Any) -> None:
        if rsc(response.request):
            write(net, f"rsc {response.status} {response.url[:200]}")
        elif response.status >= 400 or "/upload" in response.url:
            write(net, f"{response.request.method} {response.status} {response.url[:200]}")

    def on_failed(request: Request) -> None:
        write(frames, f"request failed {request.url[:160]} {request.failure}")
        write(net, f"failed {request.resource_type} {request.url[:200]} {request.failure}")

    def on_socket(ws: WebSocket) -> None:
        tag = f"ws {ws.url.split('?')[0][-40:]}#{id(ws) % 10000}"
        write(frames, f"{tag} opened")

        def received(payload: str | bytes) -> None:
            if isinstance(payload, str) and payload[:2] == "42":
                write(frames, f"{tag} <- {payload[2:200]}")

        def sent(payload: str | bytes) -> None:
            if isinstance(payload, str) and payload[:2] == "42":
                write(frames, f"{tag} -> {payload[2:200]}")

        ws.on("framereceived", received)
        ws.on("framesent", sent)
        ws.on("close", lambda _ws: write(frames, f"{tag} closed"))

    page.on("console", lambda m: write(console, f"{m.type}: {m.text[:300]}"))
    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("websocket", on_socket)


async def play(api: str, origin: str, db: str) -> int:
    http = httpx.AsyncClient(base_url=api, timeout=20)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        frames = (OUT / "frames.log").open("w")
        net = (OUT / "network.log").open("w")
        console = (OUT / "console.log").open("w")
        contexts = [
            await browser.new_context(
                **({"viewport": {"width": 1280, "height": 900}} if kind == "host" else PHONE)
            )
            for kind in ("host", "p1", "p2")
        ]
        for ctx in contexts:  # errors survive a full page load (Playwright drops them on unload)
            await ctx.add_init_script(ERROR_TRAP)
        host, p1, p2 = [await c.new_page() for c in contexts]
        for label, page in (("host", host), ("p1", p1), ("p2", p2)):
            watch(page, label, frames, net, console)
        email, password = "host@example.test", "a-long-password-1"

        async def sign_up() -> None:
            # A first browser signs up; the host's browser signs in below.
            ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await ctx.new_page()
            watch(page, "signup", frames, net, console)
            try:
                await page.goto(f"{origin}/auth/register")
                await page.wait_for_load_state("networkidle")  # hydrated, as a person waits
                await page.get_by_placeholder("例: user@example.com").fill(email)
                await page.get_by_placeholder("例: tanaka_taro").fill("host_aki")
                await page.get_by_placeholder("例: 田中太郎").fill("Host Aki")
                await page.get_by_placeholder("6文字以上のパスワード").fill(password)
                await page.get_by_placeholder("パスワードを再入力").fill(password)
                await page.locator("button[type=submit]").click()
                await page.wait_for_url(re.compile(r"/dashboard"), timeout=30000)
            finally:
                await page.screenshot(path=str(OUT / "00-sign-up.png"))
                await ctx.close()

        if not await step("host signs up (sign-up page → dashboard)", None, sign_up):
            return report()

        async def sign_in() -> None:
            await host.goto(f"{origin}/auth/login")
            await host.wait_for_load_state("networkidle")
            await host.get_by_placeholder("example@email.com").fill(email)
            await host.get_by_placeholder("パスワードを入力").fill(password)
            await host.locator("button[type=submit]").click()
            await host.wait_for_url(re.compile(r"/dashboard"), timeout=30000)

        if not await step("host signs in (sign-in page → dashboard)", host, sign_in):
            return report()
        session = json.loads(await host.evaluate("localStorage.getItem('tuiz_user') || '{}'"))
        conn = await asyncpg.connect(db)
        try:
            await import_quiz(conn, uuid.UUID(session["id"]), QUIZ)
        finally:
            await conn.close()
        if os.environ.get("TUIZ_CHECK_ONLY") == "editor":  # the host's side alone
            await author(host, origin)
            await browser.close()
            return report()
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
            await page.wait_for_load_state("networkidle")
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
                # The reveal screen: the right answer marked and how many chose each answer.
                await page.wait_for_url(re.compile(r"phase=answer_reveal"), timeout=20000)
                await page.get_by_text("総回答数: 2人").first.wait_for(timeout=10000)

            await step(
                f"Q{n}: player 1 sees the reveal with answer counts", p1, lambda: seen_result(p1)
            )
            await step(
                f"Q{n}: player 2 sees the reveal with answer counts", p2, lambda: seen_result(p2)
            )

            async def next_phase(label: str) -> None:
                await host.get_by_role("button", name=label).first.click()
                await asyncio.sleep(2)

            async def points(page: Page, where: str) -> None:
                # Both names, and each player's points as the server counted them.
                await page.wait_for_url(re.compile(where), timeout=15000)
                board = (await http.get(f"/games/{game['id']}/leaderboard")).json()["entries"]
                for entry in board:
                    await page.get_by_text(entry["player_name"], exact=True).first.wait_for(
                        timeout=10000
                    )
                    shown = re.compile(rf"^\s*({entry['score']}|{entry['score']:,})\s*$")
                    await page.get_by_text(shown).first.wait_for(timeout=10000)

            if index == 0:
                await step("Q1: host → leaderboard", host, lambda: next_phase("ランキングへ"))
                for label, page in (("1", p1), ("2", p2)):
                    await step(
                        f"Q1: player {label} sees the leaderboard with points",
                        page,
                        lambda page=page: points(page, "phase=leaderboard"),
                    )
                await step("Q1: host → explanation", host, lambda: next_phase("解説へ"))
                for label, page in (("1", p1), ("2", p2)):
                    await step(
                        f"Q1: player {label} sees the explanation",
                        page,
                        lambda page=page: page.wait_for_url(
                            re.compile("phase=explanation"), timeout=15000
                        ),
                    )
                await step(
                    "Q1: host → next question (countdown)", host, lambda: next_phase("次の問題へ")
                )
            else:
                await step("Q2: host → podium", host, lambda: next_phase("表彰台へ"))

        async def podium(page: Page) -> None:
            await page.wait_for_url(re.compile("phase=(podium|ended)"), timeout=45000)
            await points(page, "phase=(podium|ended)")

        await step("player 1 sees the podium with points", p1, lambda: podium(p1))
        await step("player 2 sees the podium with points", p2, lambda: podium(p2))
        board = (await http.get(f"/games/{game['id']}/leaderboard")).json()
        print("final leaderboard:", json.dumps(board["entries"], ensure_ascii=False), flush=True)
        await author(host, origin)
        events = await http.get(
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


async def author(host: Page, origin: str) -> None:
    """The host's side after the game: a quiz with images made in the editor, published, found
    in the dashboard and the library, its thumbnail shown."""
    title = "Editor check quiz"
    image = {"name": "picture.png", "mimeType": "image/png", "buffer": png(64, 48)}

    async def basics() -> None:
        await host.goto(f"{origin}/create")
        await host.wait_for_load_state("networkidle")
        await host.get_by_placeholder("例: JavaScript基礎知識クイズ").fill(title)
        await host.get_by_placeholder(re.compile("このクイズでは")).fill("Made by the check.")
        # difficulty and category keep the editor's defaults (easy, general knowledge)
        await host.locator("#thumbnail-upload").set_input_files(image)
        await host.get_by_role("button", name="次へ進む").click()
        await host.get_by_placeholder("問題文を入力してください...").wait_for(timeout=20000)

    async def question() -> None:
        await host.get_by_placeholder("問題文を入力してください...").fill("Which is red?")
        # The editor writes the whole question back when its upload returns: wait for that,
        # as a person sees the picture appear, before typing the choices.
        async with host.expect_response(re.compile(r"/upload/question-image/")) as uploaded:
            await host.locator("#question_image_0").set_input_files(image)
        assert (await uploaded.value).status == 201
        # The form shows the image's preview once it has written the question back.
        await host.get_by_alt_text("Question image").wait_for(timeout=20000)
        choices = host.get_by_placeholder(re.compile(r"選択肢 \d+ のテキストを入力"))
        for i in range(await choices.count()):
            await choices.nth(i).fill(["Apple", "Sky", "Grass", "Snow"][i % 4])
        await host.get_by_role("button", name="次へ進む").click()
        await host.get_by_role("button", name="次へ進む").wait_for(timeout=20000)
        await host.get_by_role("button", name="次へ進む").click()  # play settings as they are
        await host.get_by_role("button", name="クイズを公開").wait_for(timeout=20000)

    async def publish() -> None:
        await host.get_by_role("button", name="クイズを公開").click()
        await host.wait_for_url(re.compile(r"/dashboard$"), timeout=30000)
        await host.get_by_text(title).first.wait_for(timeout=20000)

    async def library() -> None:
        await host.goto(f"{origin}/dashboard/library")
        await host.get_by_text(title).first.wait_for(timeout=20000)

    async def thumbnail() -> None:
        await host.wait_for_function(
            """() => [...document.images].some((i) => decodeURIComponent(i.src)
                .includes('/uploads/') && i.complete && i.naturalWidth > 0)""",
            timeout=15000,
        )

    async def served() -> None:
        # What the image proxy was asked for is tuiz's URL; tuiz itself serves the picture.
        urls = await host.evaluate(
            """() => [...document.images].map((i) => new URL(i.src).searchParams.get('url'))
                .filter((u) => u && u.includes('/uploads/'))"""
        )
        assert urls, "no uploaded image on the page"
        got = httpx.get(urls[0], timeout=10)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png", got

    steps = (
        ("editor: title, description and a thumbnail → question step", basics),
        ("editor: a question with an image and its choices → publish step", question),
        ("editor: publish → the dashboard lists the quiz", publish),
        ("library: the quiz is in my library", library),
        ("library: its uploaded thumbnail is served by tuiz at its URL", served),
        ("library: its uploaded thumbnail is shown", thumbnail),
    )
    for n, (name, run) in enumerate(steps):
        if not await step(name, host, run) and n < 3:
            return  # each later step needs this one


def report() -> int:
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)}/{len(RESULTS)} steps work", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
