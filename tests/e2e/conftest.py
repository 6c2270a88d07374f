"""Browser tests: a real `tuiz serve`, real PostgreSQL, and Debian's Chromium driven by Playwright.

Chromium is the system one (`/usr/bin/chromium`, installed by `make test` when missing); the
Playwright package only drives it. Every page records console errors and uncaught exceptions,
and a test fails if any page logged one. Screenshots go to `test-output/screenshots/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.servers import ServerProcess, run_server

CHROMIUM = os.environ.get("TUIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
SERVICE_KEY = "e2e-service-key-0123456789"
JWT_SECRET = "e2e-jwt-secret-0123456789abcdef0123456789"

OFFLINE_ERROR = "net::ERR_INTERNET_DISCONNECTED"

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 860}}

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a sync test (Playwright's sync API owns no event loop we can use)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def db_fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return run_async(go())


@dataclass
class QuestionSpec:
    kind: str
    text: str
    answers: list[tuple[str, bool]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    points: int = 1000
    answering_time: int = 60
    explanation: tuple[str, str] | None = None


async def _insert_quiz(
    url: str, title: str, questions: list[QuestionSpec], play_settings: dict[str, Any]
) -> UUID:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            owner = await conn.fetchval(
                "INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), $1) RETURNING id",
                f"e2e-{title.lower().replace(' ', '-')}@example.test",
            )
            quiz_id: UUID = await conn.fetchval(
                """
                INSERT INTO public.quiz_sets
                    (user_id, title, status, is_public, play_settings, total_questions)
                VALUES ($1, $2, 'published', true, $3::text::jsonb, $4) RETURNING id
                """,
                owner,
                title,
                json.dumps(play_settings),
                len(questions),
            )
            for index, q in enumerate(questions):
                question_id = await conn.fetchval(
                    """
                    INSERT INTO public.questions
                        (question_set_id, question_text, question_type, order_index,
                         show_question_time, answering_time, points, accepted_answers,
                         explanation_title, explanation_text)
                    VALUES ($1, $2, $3::public.question_type, $4, 1, $5, $6, $7, $8, $9)
                    RETURNING id
                    """,
                    quiz_id,
                    q.text,
                    q.kind,
                    index,
                    q.answering_time,
                    0 if q.kind == "poll" else q.points,
                    q.accepted,
                    q.explanation[0] if q.explanation else None,
                    q.explanation[1] if q.explanation else None,
                )
                await conn.executemany(
                    """
                    INSERT INTO public.answers (question_id, answer_text, is_correct, order_index)
                    VALUES ($1, $2, $3, $4)
                    """,
                    [(question_id, a, ok, i) for i, (a, ok) in enumerate(q.answers)],
                )
        return quiz_id
    finally:
        await conn.close()


def insert_quiz(
    url: str,
    title: str,
    questions: list[QuestionSpec],
    play_settings: dict[str, Any] | None = None,
) -> str:
    return str(run_async(_insert_quiz(url, title, questions, play_settings or {})))


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the browser tests. Package scope, not session: Playwright's sync API
    keeps an event loop running while it is open, which would break every async test after."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
            "(apt-get install -y chromium)"
        )
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("e2e-server")
    with run_server(
        module_db_url,
        tmp,
        TUIZ_SERVICE_KEY=SERVICE_KEY,
        TUIZ_LOAD_SAMPLE="false",
        TUIZ_JWT_SECRET=JWT_SECRET,
    ) as proc:
        yield proc


class Pages:
    """Opens browser contexts and pages; collects every console error and page exception."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def new(
        self,
        name: str,
        *,
        phone: bool = True,
        locale: str = "en-US",
        storage_state: Any = None,
    ) -> Page:
        """A page in a fresh context; `storage_state` (from `context.storage_state()`) makes it
        the same browser profile as another context: same device id, seat or host game."""
        options: dict[str, Any] = dict(PHONE if phone else DESKTOP)
        if storage_state is not None:
            options["storage_state"] = storage_state
        context = self.browser.new_context(base_url=self.base_url, locale=locale, **options)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        self.watch(page, name)
        return page

    def watch(self, page: Page, name: str) -> None:
        def on_console(message: ConsoleMessage) -> None:
            # Chromium's own log line for a reconnect attempt made while a test has the
            # context offline (set_offline): the network the test cut, not a page error.
            if message.type == "error" and OFFLINE_ERROR not in message.text:
                self.errors.append(f"{name}: console error: {message.text} @ {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"{name}: page error: {exc}"))

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, server: ServerProcess) -> Iterator[Pages]:
    opened = Pages(browser, server.url)
    try:
        yield opened
        assert not opened.errors, "pages logged errors:\n" + "\n".join(opened.errors)
    finally:
        opened.close()


@pytest.fixture
def shot() -> Callable[[Page, str], None]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        safe = re.sub(r"[^a-z0-9_-]+", "-", name.lower())
        page.screenshot(path=str(SCREENSHOTS / f"{safe}.png"), full_page=True, scale="css")

    return take
