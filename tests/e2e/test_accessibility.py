"""axe-core on every screen of every page, in Japanese and English, at phone and desktop sizes.

One game walks through every screen: a host, a phone that plays, one that never answers (so the
"answer received" screen stays up) and one that is kicked. Each screen is audited in all four
combinations by switching the page's language and viewport in place, so the whole audit costs
one game. A screen fails on any serious or critical violation (tests/e2e/axe.py lists them).
New pages add their screens with `audit_screen(page, label)`; the editor's and account page's
are audited in the flows of tests/e2e/test_editor.py, which already reach them.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.axe import AxeViolations, audit, audit_screen
from tests.e2e.conftest import SERVICE_KEY, Pages, QuestionSpec, insert_quiz
from tests.e2e.flows import host_game, host_next, in_screen, join, open_answering, seat
from tests.servers import ServerProcess

QUIZ = [
    QuestionSpec(
        "multi_select",
        "Which of these are prime numbers?",
        [("2", True), ("3", True), ("4", False), ("9", False)],
        explanation=("Primes", "2 and 3 have no divisors but 1 and themselves."),
    ),
    QuestionSpec("type_answer", "Which planet is the largest?", accepted=["Jupiter"]),
]


@pytest.fixture(scope="module")
def quiz_id(server: ServerProcess, module_db_url: str) -> str:
    return insert_quiz(module_db_url, "E2E accessibility", QUIZ)


def test_every_screen_has_no_serious_violations(pages: Pages, quiz_id: str) -> None:
    home = pages.new("home", phone=False)
    home.goto("/")
    expect(home.get_by_role("heading", level=1)).to_be_visible()
    audit_screen(home, "home")
    home.goto("/admin")
    expect(in_screen(home, "key")).to_be_visible()
    audit_screen(home, "admin: key")
    home.goto("/host")
    expect(home.locator(f'#quiz-select option[value="{quiz_id}"]')).to_have_count(1)
    audit_screen(home, "host: setup")

    visitor = pages.new("visitor")
    visitor.goto("/play")
    expect(in_screen(visitor, "join")).to_be_visible()
    audit_screen(visitor, "play: join")

    host, pin = host_game(pages, quiz_id)
    audit_screen(host, "host: lobby (empty)")
    aki = join(pages, pin, "Aki")
    game_id = seat(aki)["gameId"]
    join(pages, pin, "Nao")  # never answers: Aki's answer leaves answering open
    ken = join(pages, pin, "Ken")
    expect(host.locator("#player-list li")).to_have_count(3)
    audit_screen(host, "host: lobby")
    audit_screen(aki, "play: lobby")
    host.get_by_role("button", name="Kick Ken").click()
    expect(in_screen(ken, "kicked")).to_be_visible()
    audit_screen(ken, "play: kicked")

    host.get_by_role("button", name="Start game").click()
    expect(host.locator("#hq-ready")).to_be_visible()
    expect(aki.locator("#q-ready")).to_be_visible()
    audit_screen(host, "host: question (get ready)")
    audit_screen(aki, "play: question (get ready)")
    host_next(host)
    expect(aki.get_by_role("button", name="Submit answer")).to_be_visible()
    audit_screen(host, "host: question (answering)")
    aki.get_by_role("button", name="2", exact=True).click()
    audit_screen(aki, "play: question (multi-select)")
    host.get_by_role("button", name="Pause").click()
    expect(aki.get_by_text("The game is paused.")).to_be_visible()
    audit_screen(host, "host: question (paused)")
    audit_screen(aki, "play: question (paused)")
    host.get_by_role("button", name="Resume").click()
    expect(aki.get_by_text("The game is paused.")).to_be_hidden()
    aki.get_by_role("button", name="3", exact=True).click()
    aki.get_by_role("button", name="Submit answer").click()
    expect(aki.get_by_text("Answer received")).to_be_visible()
    expect(host.locator("#hq-answered")).to_have_text("1 of 2 answered")
    audit_screen(aki, "play: answered")
    audit_screen(host, "host: question (1 of 2 answered)")
    host.get_by_role("button", name="Skip (close answers)").click()

    expect(in_screen(host, "reveal")).to_be_visible()
    expect(aki.locator("#result-headline")).to_have_text("Correct!")
    audit_screen(host, "host: reveal")
    audit_screen(aki, "play: result")
    host_next(host)
    expect(host.locator("#hr-explanation")).to_be_visible()
    expect(aki.locator("#result-explanation")).to_be_visible()
    audit_screen(host, "host: explanation")
    audit_screen(aki, "play: explanation")
    host_next(host)
    expect(in_screen(host, "leaderboard")).to_be_visible()
    expect(in_screen(aki, "leaderboard")).to_be_visible()
    audit_screen(host, "host: leaderboard")
    audit_screen(aki, "play: leaderboard")
    host_next(host)

    open_answering(host, [aki], QUIZ[1].text)
    box = aki.get_by_role("textbox", name="Your answer")
    expect(box).to_be_visible()
    audit_screen(aki, "play: question (type answer)")
    box.fill("Jupiter")
    aki.get_by_role("button", name="Submit answer").click()
    expect(aki.get_by_text("Answer received")).to_be_visible()
    host.get_by_role("button", name="Skip (close answers)").click()
    expect(in_screen(host, "reveal")).to_be_visible()
    audit_screen(host, "host: reveal (type answer)")
    host_next(host)

    expect(in_screen(host, "podium")).to_be_visible()
    expect(host.locator("#report table").first).to_be_visible()
    expect(in_screen(aki, "final")).to_be_visible()
    audit_screen(host, "host: podium and report")
    audit_screen(aki, "play: podium")

    home.goto("/admin")
    home.get_by_label("Service key").fill(SERVICE_KEY)
    home.get_by_role("button", name="Open dashboard").click()
    expect(in_screen(home, "dashboard")).to_be_visible()
    expect(home.locator("#recent tbody tr").first).to_be_visible()
    audit_screen(home, "admin: dashboard")
    home.get_by_role("link", name=f"Report of game {pin}").click()
    expect(home.locator("table.report-players tbody tr")).to_have_count(2)
    audit_screen(home, "report page")
    visitor.goto(f"/report?game={game_id}")
    expect(in_screen(visitor, "error")).to_be_visible()
    audit_screen(visitor, "report page: no key")


def test_the_audit_fails_on_a_bad_page(browser: Browser) -> None:
    """The helper itself: a page with an unlabelled image and low-contrast text fails, and the
    failure names both rules and the offending elements."""
    page = browser.new_page()
    try:
        page.set_content(
            '<!doctype html><html lang="en"><head><title>bad</title></head><body><main>'
            '<img src="data:," id="no-alt">'
            '<p id="faint" style="color:#bbb;background:#fff">faint text</p></main></body></html>'
        )
        with pytest.raises(AxeViolations) as failure:
            audit(page, "bad page")
        message = str(failure.value)
        assert "bad page: 2 serious/critical" in message
        assert "image-alt" in message and "#no-alt" in message
        assert "color-contrast" in message and "#faint" in message
        page.set_content(
            '<!doctype html><html lang="en"><head><title>good</title></head><body><main>'
            '<img src="data:," alt="nothing"><p>plain text</p></main></body></html>'
        )
        audit(page, "good page")
    finally:
        page.close()
