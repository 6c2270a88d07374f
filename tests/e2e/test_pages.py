"""The host, player and admin pages in Chromium against a real tuiz server and PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jwt
import pytest
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.e2e.axe import audit_screen
from tests.e2e.conftest import JWT_SECRET, SERVICE_KEY, Pages, QuestionSpec, db_fetch, insert_quiz
from tests.e2e.flows import Shot, host_game, host_next, in_screen, join, open_answering, seat
from tests.servers import ServerProcess

GAME_QUIZ = [
    QuestionSpec(
        "multiple_choice",
        "What is the capital of Japan?",
        [("Osaka", False), ("Tokyo", True), ("Kyoto", False), ("Sapporo", False)],
        explanation=("Tokyo", "Tokyo has been the capital since 1868."),
    ),
    QuestionSpec(
        "multi_select",
        "Which of these are prime numbers?",
        [("2", True), ("3", True), ("4", False), ("9", False)],
    ),
    QuestionSpec("type_answer", "Which planet is the largest?", accepted=["Jupiter"]),
]

SHORT_QUIZ = [
    QuestionSpec(
        "true_false", "The Pacific is the largest ocean.", [("True", True), ("False", False)]
    ),
    QuestionSpec("poll", "Which season do you like best?", [("Spring", False), ("Autumn", False)]),
]


@pytest.fixture(scope="module")
def quizzes(server: ServerProcess, module_db_url: str) -> dict[str, str]:
    return {
        "game": insert_quiz(module_db_url, "E2E three questions", GAME_QUIZ),
        "short": insert_quiz(module_db_url, "E2E short", SHORT_QUIZ),
        "one_seat": insert_quiz(
            module_db_url, "E2E one seat", SHORT_QUIZ[:1], play_settings={"max_players": 1}
        ),
    }


def scores_in_db(db_url: str, game_id: str) -> dict[str, int]:
    rows = db_fetch(
        db_url,
        "SELECT player_id::text AS player_id, score FROM public.game_player_data"
        " WHERE game_id = $1::uuid",
        game_id,
    )
    return {r["player_id"]: r["score"] for r in rows}


def wait_for_db_scores(db_url: str, game_id: str, expected: dict[str, int]) -> dict[str, int]:
    """The projection is written shortly after the events; poll PostgreSQL (not the page)."""
    import time

    deadline = time.monotonic() + 15
    found = scores_in_db(db_url, game_id)
    while found != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        found = scores_in_db(db_url, game_id)
    return found


def test_full_game_one_host_three_phones(
    pages: Pages, quizzes: dict[str, str], module_db_url: str, shot: Shot
) -> None:
    host, pin = host_game(pages, quizzes["game"], shot)
    shot(host, "host-02-lobby-empty")
    aki = join(pages, pin, "Aki", shot)
    ben = join(pages, pin, "Ben")
    chika = join(pages, pin, "Chika")
    players = [aki, ben, chika]
    shot(aki, "player-02-waiting")
    expect(host.locator("#player-list li")).to_have_count(3)
    expect(host.locator("#qr")).to_have_attribute("src", re.compile(r"^data:image/"))
    expect(host.locator("#join-url")).to_have_attribute("href", re.compile(rf"/play\?pin={pin}$"))
    shot(host, "host-03-lobby")
    game_id = seat(aki)["gameId"]

    host.get_by_role("button", name="Start game").click()

    # Q1 multiple choice: Aki and Chika right, Ben wrong.
    open_answering(host, players, GAME_QUIZ[0].text)
    expect(aki.get_by_role("button", name="Tokyo")).to_be_visible()
    shot(aki, "player-03-multiple-choice")
    shot(host, "host-04-question")
    aki.get_by_role("button", name="Tokyo").click()
    expect(aki.get_by_text("Answer received")).to_be_visible()
    shot(aki, "player-04-answer-received")
    expect(host.locator("#hq-answered")).to_have_text("1 of 3 answered")
    ben.get_by_role("button", name="Osaka").click()
    chika.get_by_role("button", name="Tokyo").click()
    # Everyone answered: answering closes early and the reveal shows the distribution.
    expect(in_screen(host, "reveal")).to_be_visible()
    correct_row = host.locator("#hr-chart .bar-row.correct")
    expect(correct_row).to_have_count(1)
    expect(correct_row).to_contain_text("Tokyo")
    expect(correct_row).to_have_attribute("data-count", "2")
    expect(host.locator('#hr-chart .bar-row[data-correct="false"]').first).to_have_attribute(
        "data-count", "1"
    )
    shot(host, "host-05-reveal")
    host.reload()  # the host page comes back to the same reveal, correct answer marked
    expect(host.locator("#hr-chart .bar-row.correct")).to_contain_text("Tokyo")
    expect(host.locator("#hr-chart .bar-row.correct")).to_have_attribute("data-count", "2")
    expect(aki.locator("#result-headline")).to_have_text("Correct!")
    expect(ben.locator("#result-headline")).to_have_text("Incorrect")
    expect(ben.locator("#result-points")).to_have_text("+0 points")
    shot(aki, "player-05-correct")
    shot(ben, "player-06-incorrect")
    host_next(host)
    expect(host.locator("#hr-explanation")).to_be_visible()
    expect(host.locator("#hr-expl-text")).to_have_text("Tokyo has been the capital since 1868.")
    expect(aki.locator("#result-explanation")).to_be_visible()
    shot(host, "host-06-explanation")
    host_next(host)
    expect(in_screen(host, "leaderboard")).to_be_visible()
    expect(host.locator("#hl-list li")).to_have_count(3)
    expect(in_screen(aki, "leaderboard")).to_be_visible()
    shot(host, "host-07-leaderboard")
    shot(aki, "player-07-leaderboard")
    host_next(host)

    # Q2 multi-select: Aki exactly right, Ben partly, Chika wrong.
    open_answering(host, players, GAME_QUIZ[1].text)
    for p, picks in ((aki, ["2", "3"]), (ben, ["2"]), (chika, ["4", "9"])):
        for label in picks:
            p.get_by_role("button", name=label, exact=True).click()
            expect(p.get_by_role("button", name=label, exact=True)).to_have_attribute(
                "aria-pressed", "true"
            )
        if p is aki:
            shot(aki, "player-08-multi-select")
        p.get_by_role("button", name="Submit answer").click()
        if p is not chika:  # the last answer closes answering at once
            expect(p.get_by_text("Answer received")).to_be_visible()
    expect(in_screen(host, "reveal")).to_be_visible()
    expect(host.locator("#hr-chart .bar-row.correct")).to_have_count(2)
    expect(aki.locator("#result-headline")).to_have_text("Correct!")
    expect(chika.locator("#result-headline")).to_have_text("Incorrect")
    host_next(host)  # no explanation: straight to the leaderboard
    expect(in_screen(host, "leaderboard")).to_be_visible()
    host_next(host)

    # Q3 type answer: matched trimmed and case-insensitively.
    open_answering(host, players, GAME_QUIZ[2].text)
    for p, text in ((aki, "jupiter"), (ben, " Jupiter "), (chika, "Saturn")):
        box = p.get_by_role("textbox", name="Your answer")
        box.fill(text)
        if p is aki:
            shot(aki, "player-09-type-answer")
        p.get_by_role("button", name="Submit answer").click()
        if p is not chika:
            expect(p.get_by_text("Answer received")).to_be_visible()
    expect(in_screen(host, "reveal")).to_be_visible()
    expect(host.locator("#hr-accepted")).to_contain_text("Jupiter")
    expect(ben.locator("#result-headline")).to_have_text("Correct!")
    expect(chika.locator("#result-headline")).to_have_text("Incorrect")
    host_next(host)  # after the last question's reveal: the podium

    # Podium: host and phones show the final scores, and they are PostgreSQL's.
    expect(in_screen(host, "podium")).to_be_visible()
    expect(host.locator("#hp-podium .step")).to_have_count(3)
    expect(host.locator("#report table").first).to_be_visible()
    rows = host.locator("#hp-list li")
    expect(rows).to_have_count(3)
    shown_host = {
        rows.nth(i).get_attribute("data-player-id"): int(rows.nth(i).get_attribute("data-score"))
        for i in range(3)
    }
    shown_phones = {}
    for p in players:
        expect(in_screen(p, "final")).to_be_visible()
        final = p.locator("#final-me")
        expect(final).to_have_attribute("data-score", re.compile(r"^\d+$"))
        shown_phones[seat(p)["playerId"]] = int(final.get_attribute("data-score"))
    shot(host, "host-08-podium")
    shot(aki, "player-10-final")
    assert shown_host == shown_phones
    assert shown_host[seat(aki)["playerId"]] > shown_host[seat(ben)["playerId"]] > 0
    assert wait_for_db_scores(module_db_url, game_id, shown_host) == shown_host

    with host.expect_download() as download:
        host.get_by_role("button", name="Download CSV").click()
    csv_text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "Aki" in csv_text and "Chika" in csv_text


def test_reload_mid_question_keeps_seat_score_and_answer(
    pages: Pages, quizzes: dict[str, str], module_db_url: str, shot: Shot
) -> None:
    host, pin = host_game(pages, quizzes["short"])
    dana = join(pages, pin, "Dana")
    eri = join(pages, pin, "Eri")
    expect(host.locator("#player-list li")).to_have_count(2)
    before = seat(dana)
    host.get_by_role("button", name="Start game").click()

    open_answering(host, [dana, eri], SHORT_QUIZ[0].text)
    dana.get_by_role("button", name="True").click()
    expect(dana.get_by_text("Answer received")).to_be_visible()
    host.get_by_role("button", name="Skip (close answers)").click()
    expect(dana.locator("#result-headline")).to_have_text("Correct!")
    score = int(dana.locator("#result-score").get_attribute("data-value") or "0")
    assert score > 0
    host_next(host)
    expect(in_screen(host, "leaderboard")).to_be_visible()
    host_next(host)

    open_answering(host, [dana, eri], SHORT_QUIZ[1].text)
    host.get_by_role("button", name="Pause").click()
    expect(dana.get_by_text("The game is paused.")).to_be_visible()
    expect(dana.get_by_role("button", name="Autumn")).to_be_disabled()
    expect(host.locator("#hq-paused")).to_be_visible()
    shot(dana, "player-paused")
    host.get_by_role("button", name="Resume").click()
    expect(dana.get_by_text("The game is paused.")).to_be_hidden()
    dana.get_by_role("button", name="Autumn").click()
    expect(dana.get_by_text("Answer received")).to_be_visible()
    expect(dana.locator("#q-score")).to_have_attribute("data-value", str(score))

    dana.reload()
    expect(in_screen(dana, "question")).to_be_visible()
    expect(dana.get_by_text("Answer received")).to_be_visible()
    expect(dana.locator("#q-number")).to_have_text(f"Question 2 of {len(SHORT_QUIZ)}")
    expect(dana.locator("#q-timer")).to_have_text(re.compile(r"^\d+$"))
    expect(dana.locator("#q-my-answer")).to_have_text("Autumn")
    expect(dana.locator("#q-score")).to_have_attribute("data-value", str(score))
    expect(dana.locator("#q-text")).to_have_text(SHORT_QUIZ[1].text)
    shot(dana, "player-11-after-reload")
    after = seat(dana)
    assert after["playerId"] == before["playerId"]
    assert after["gameId"] == before["gameId"]
    expect(host.locator("#hq-answered")).to_have_text("1 of 2 answered")

    host.get_by_role("button", name="Skip (close answers)").click()
    expect(in_screen(host, "reveal")).to_be_visible()
    expect(host.locator('#hr-chart .bar-row[data-count="1"]')).to_contain_text("Autumn")
    expect(dana.locator("#result-headline")).to_have_text("Thanks for voting")
    expect(dana.locator("#result-score")).to_have_attribute("data-value", str(score))
    dana.reload()  # during the reveal: the result is drawn from the snapshot
    expect(dana.locator("#result-headline")).to_have_text("Thanks for voting")
    expect(dana.locator("#result-score")).to_have_attribute("data-value", str(score))
    ids = db_fetch(
        module_db_url,
        "SELECT id::text AS id FROM public.players WHERE game_id = $1::uuid AND NOT is_host",
        before["gameId"],
    )
    assert len(ids) == 2  # the reload did not create a second seat


def test_wrong_pin_locked_game_taken_nickname_and_kick(
    pages: Pages, quizzes: dict[str, str], shot: Shot
) -> None:
    host, pin = host_game(pages, quizzes["short"])
    wrong = "100000" if pin != "100000" else "100001"

    visitor = pages.new("visitor")
    visitor.goto("/play")
    visitor.get_by_label("Game PIN").fill(wrong)
    visitor.get_by_label("Nickname").fill("Fumi")
    visitor.get_by_role("button", name="Join").click()
    expect(visitor.get_by_role("alert")).to_have_text(
        "No game with that PIN. Check the number and try again."
    )
    shot(visitor, "player-12-wrong-pin")

    gen = join(pages, pin, "Gen")
    visitor.get_by_label("Game PIN").fill(pin)
    visitor.get_by_label("Nickname").fill("Gen")
    visitor.get_by_role("button", name="Join").click()
    expect(visitor.get_by_role("alert")).to_have_text(
        "That nickname is already taken. Choose another."
    )

    host.get_by_role("button", name="Lock game").click()
    expect(host.locator("#lock-status")).to_have_text("Locked: no new players can join.")
    shot(host, "host-09-locked")
    visitor.get_by_label("Nickname").fill("Fumi")
    visitor.get_by_role("button", name="Join").click()
    expect(visitor.get_by_role("alert")).to_have_text(
        "This game is locked. Ask the host to unlock it."
    )
    shot(visitor, "player-13-locked")

    # The host page reloaded: same game, same lobby, still locked.
    host.reload()
    expect(host.locator("#lobby-pin")).to_have_text(pin)
    expect(host.locator("#lock-status")).to_have_text("Locked: no new players can join.")
    expect(host.locator("#player-list li")).to_have_count(1)
    host.get_by_role("button", name="Kick Gen").click()
    expect(in_screen(gen, "kicked")).to_be_visible()
    expect(gen.get_by_role("heading")).to_have_text("The host removed you from the game.")
    expect(host.locator("#player-list li")).to_have_count(0)
    shot(gen, "player-14-kicked")
    # The kicked seat is gone from storage: a reload shows the join form, not the game.
    gen.reload()
    expect(in_screen(gen, "join")).to_be_visible()


def test_landing_and_language_switch(pages: Pages, shot: Shot) -> None:
    page = pages.new("landing", locale="ja-JP")
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("ライブクイズ")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    shot(page, "landing-ja")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live quiz games")
    expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live quiz games")
    shot(page, "landing-en")
    page.get_by_role("link", name="Join a game").click()
    expect(page).to_have_url(re.compile(r"/play$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Join a game")
    page.get_by_role("button", name="日本語").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("ゲームに参加する")
    expect(page.get_by_label("ニックネーム")).to_be_visible()
    expect(page).to_have_title("ゲームに参加する · tuiz")
    shot(page, "player-join-ja")


def test_admin_dashboard_and_report_page(pages: Pages, quizzes: dict[str, str], shot: Shot) -> None:
    host, pin = host_game(pages, quizzes["one_seat"])
    rin = join(pages, pin, "Rin")
    game_id = seat(rin)["gameId"]
    host.get_by_role("button", name="Start game").click()
    open_answering(host, [rin], SHORT_QUIZ[0].text)
    rin.get_by_role("button", name="True").click()
    expect(in_screen(host, "reveal")).to_be_visible()
    host_next(host)
    expect(in_screen(host, "podium")).to_be_visible()

    admin = pages.new("admin", phone=False)
    admin.goto("/admin")
    admin.get_by_label("Service key").fill(SERVICE_KEY)
    admin.get_by_role("button", name="Open dashboard").click()
    expect(in_screen(admin, "dashboard")).to_be_visible()
    expect(admin.locator("#active")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(admin.locator("#daily svg rect").first).to_be_visible()
    expect(admin.locator("#completion li").first).to_contain_text("Quiz: ")
    row = admin.locator("#recent tbody tr", has_text=pin)
    expect(row).to_contain_text("Finished")
    shot(admin, "admin-dashboard")
    assert admin.evaluate("sessionStorage.getItem('tuiz_service_key')") == SERVICE_KEY
    assert admin.evaluate("localStorage.getItem('tuiz_service_key')") is None

    # The report opens as a page, the host's report view, not as raw JSON.
    report_link = admin.get_by_role("link", name=f"Report of game {pin}")
    expect(report_link).to_have_attribute("href", f"/report?game={game_id}")
    report_link.click()
    expect(admin).to_have_url(re.compile(rf"/report\?game={game_id}$"))
    expect(in_screen(admin, "report")).to_be_visible()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Report")
    expect(admin).to_have_title("Report · tuiz")
    expect(admin.locator("#report-summary")).to_contain_text("E2E one seat")
    expect(admin.locator("#report-summary")).to_contain_text(pin)
    players = admin.locator("table.report-players tbody tr")
    expect(players).to_have_count(1)
    expect(players.first).to_contain_text("Rin")
    expect(admin.locator("table.report-questions tbody tr").first).to_contain_text(
        SHORT_QUIZ[0].text
    )
    shot(admin, "admin-report")
    with admin.expect_download() as download:
        admin.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == f"tuiz-{pin}.csv"
    assert "Rin" in Path(download.value.path()).read_text(encoding="utf-8")
    admin.get_by_role("button", name="日本語").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("レポート")
    expect(admin.locator("table.report-players th").nth(1)).to_have_text("参加者")
    expect(admin.locator("#report-summary")).to_contain_text("終了")
    shot(admin, "admin-report-ja")
    admin.get_by_role("link", name="ダッシュボードに戻る").click()
    expect(in_screen(admin, "dashboard")).to_be_visible()
    expect(admin.get_by_role("heading", level=1)).to_have_text("管理")
    expect(row).to_contain_text("終了")
    expect(admin.locator("#completion li").first).to_contain_text("クイズ：")
    shot(admin, "admin-dashboard-ja")
    with admin.expect_download() as download:
        admin.get_by_role("link", name=f"ゲーム{pin}のCSV").click()
    assert "Rin" in Path(download.value.path()).read_text(encoding="utf-8")

    # The host's own device reads it with its host token; anyone else is told to use the key.
    host.goto(f"/report?game={game_id}")
    expect(host.locator("table.report-players tbody tr").first).to_contain_text("Rin")
    stranger = pages.new("stranger", phone=False)
    stranger.goto(f"/report?game={game_id}")
    expect(in_screen(stranger, "error")).to_be_visible()
    expect(stranger.get_by_role("alert")).to_contain_text("open it from the admin page")
    expect(stranger.locator("table")).to_have_count(0)


def test_game_full(pages: Pages, quizzes: dict[str, str]) -> None:
    _, pin = host_game(pages, quizzes["one_seat"])
    join(pages, pin, "Hana")
    late = pages.new("late")
    late.goto(f"/play?pin={pin}")
    late.get_by_label("Nickname").fill("Iku")
    late.get_by_role("button", name="Join").click()
    expect(late.get_by_role("alert")).to_have_text("This game is full.")


def test_host_ends_the_game_early(pages: Pages, quizzes: dict[str, str], shot: Shot) -> None:
    host, pin = host_game(pages, quizzes["short"])
    lena = join(pages, pin, "Lena")
    host.get_by_role("button", name="Start game").click()
    open_answering(host, [lena], SHORT_QUIZ[0].text)
    host.get_by_role("button", name="End game").click()
    host.get_by_role("button", name="Press again to end the game for everyone").click()
    expect(in_screen(host, "podium")).to_be_visible()
    expect(host.get_by_role("heading", level=1)).to_have_text("The game was ended.")
    expect(in_screen(lena, "final")).to_be_visible()
    expect(lena.get_by_role("heading", level=1)).to_have_text("The host ended the game.")
    shot(lena, "player-ended-by-host")


def test_network_loss_returns_to_the_same_seat(pages: Pages, quizzes: dict[str, str]) -> None:
    host, pin = host_game(pages, quizzes["short"])
    jun = join(pages, pin, "Jun")
    kai = join(pages, pin, "Kai")
    before = seat(jun)
    host.get_by_role("button", name="Start game").click()
    expect(jun.locator("#q-text")).to_have_text(SHORT_QUIZ[0].text)

    # Offline when answering opens: the catch-up brings the live events, countdown included.
    jun.context.set_offline(True)
    expect(jun.get_by_text("Connection lost. Reconnecting…")).to_be_visible()
    open_answering(host, [kai], SHORT_QUIZ[0].text)
    jun.context.set_offline(False)
    expect(jun.get_by_text("Connection lost. Reconnecting…")).to_be_hidden()
    expect(jun.locator("#q-number")).to_have_text(f"Question 1 of {len(SHORT_QUIZ)}")
    expect(jun.locator("#q-timer")).to_have_text(re.compile(r"^\d+$"))

    jun.context.set_offline(True)
    expect(jun.get_by_text("Connection lost. Reconnecting…")).to_be_visible()
    jun.get_by_role("button", name="True").click()  # answered while offline: kept and sent later
    jun.context.set_offline(False)
    expect(jun.get_by_text("Connection lost. Reconnecting…")).to_be_hidden()
    expect(jun.get_by_text("Answer received")).to_be_visible()
    assert seat(jun)["playerId"] == before["playerId"]
    expect(host.locator("#hq-answered")).to_have_text("1 of 2 answered")
    host.get_by_role("button", name="Skip (close answers)").click()
    expect(jun.locator("#result-headline")).to_have_text("Correct!")


def test_signed_in_host_uploads_a_quiz_and_hosts_it(
    pages: Pages, module_db_url: str, tmp_path: Path, shot: Shot
) -> None:
    user_id = db_fetch(
        module_db_url,
        "INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'uploader@example.test')"
        " RETURNING id::text AS id",
    )[0]["id"]
    token = jwt.encode(
        {"sub": user_id, "role": "authenticated", "exp": int(time.time()) + 3600},
        JWT_SECRET,
        algorithm="HS256",
    )
    quiz_file = tmp_path / "quiz.json"
    quiz_file.write_text(
        json.dumps(
            {
                "version": 1,
                "title": "Uploaded colours",
                "questions": [
                    {
                        "question_text": "Which colour is the sky on a clear day?",
                        "question_type": "multiple_choice",
                        "answers": [
                            {"answer_text": "Blue", "is_correct": True},
                            {"answer_text": "Green", "is_correct": False},
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    host = pages.new("uploader", phone=False)
    host.goto("/")
    host.evaluate(
        "token => localStorage.setItem('tuiz_session', JSON.stringify({access_token: token}))",
        token,
    )
    host.goto("/host")
    host.get_by_label("Or upload a quiz (JSON file)").set_input_files(str(quiz_file))
    host.get_by_role("button", name="Upload", exact=True).click()
    expect(host.locator("#upload-status")).to_have_text('Quiz "Uploaded colours" uploaded.')
    expect(host.locator("#quiz-select option:checked")).to_contain_text("Uploaded colours")
    shot(host, "host-uploaded")
    host.get_by_role("button", name="Create game").click()
    expect(in_screen(host, "lobby")).to_be_visible()
    expect(host.locator("#lobby-pin")).to_have_text(re.compile(r"^\d{6}$"))


def test_guest_host_uploads_a_quiz_without_an_account(
    pages: Pages, tmp_path: Path, shot: Shot
) -> None:
    quiz_file = tmp_path / "guest-quiz.json"
    quiz_file.write_text(
        json.dumps(
            {
                "version": 1,
                "title": "Guest colours",
                "questions": [
                    {
                        "question_text": "Which colour is grass?",
                        "question_type": "multiple_choice",
                        "answers": [
                            {"answer_text": "Green", "is_correct": True},
                            {"answer_text": "Red", "is_correct": False},
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    host = pages.new("guest-uploader", phone=False)
    host.goto("/host")
    host.get_by_label("Or upload a quiz (JSON file)").set_input_files(str(quiz_file))
    host.get_by_role("button", name="Upload", exact=True).click()
    expect(host.locator("#upload-status")).to_contain_text('Quiz "Guest colours" is ready')
    expect(host.locator("#quiz-select option:checked")).to_contain_text("Guest colours")
    host.get_by_role("button", name="Create game").click()
    expect(in_screen(host, "lobby")).to_be_visible()
    expect(host.locator("#lobby-pin")).to_have_text(re.compile(r"^\d{6}$"))
    shot(host, "host-guest-upload")


def test_host_back_from_reload_and_network_loss_shows_count_and_countdown(
    pages: Pages, quizzes: dict[str, str]
) -> None:
    """The host page offline while answering opens (a second window of the same host presses
    Next), then reloaded: both times "Question 1 of 2" and a running countdown."""
    host, pin = host_game(pages, quizzes["short"])
    olga = join(pages, pin, "Olga")
    host.get_by_role("button", name="Start game").click()
    expect(host.locator("#hq-ready")).to_be_visible()
    expect(host.locator("#hq-number")).to_contain_text(f"Question 1 of {len(SHORT_QUIZ)}")

    host.context.set_offline(True)
    expect(host.get_by_text("Connection lost. Reconnecting…")).to_be_visible()
    remote = pages.new("host remote", phone=False, storage_state=host.context.storage_state())
    remote.goto("/host")
    expect(remote.locator("#hq-ready")).to_be_visible()
    host_next(remote)
    expect(olga.locator("#q-timer")).to_have_text(re.compile(r"^\d+$"))
    host.context.set_offline(False)
    expect(host.get_by_text("Connection lost. Reconnecting…")).to_be_hidden()
    expect(host.locator("#hq-ready")).to_be_hidden()
    expect(host.locator("#hq-number")).to_contain_text(f"Question 1 of {len(SHORT_QUIZ)}")
    expect(host.locator("#hq-timer")).to_have_text(re.compile(r"^[1-9]\d*$"))
    first = int(host.locator("#hq-timer").inner_text())
    expect(host.locator("#hq-timer")).not_to_have_text(str(first))  # it counts down

    host.reload()
    expect(in_screen(host, "question")).to_be_visible()
    expect(host.locator("#hq-number")).to_contain_text(f"Question 1 of {len(SHORT_QUIZ)}")
    expect(host.locator("#hq-timer")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(host.locator("#hq-answered")).to_have_text("0 of 1 answered")
    olga.get_by_role("button", name="True").click()
    expect(in_screen(host, "reveal")).to_be_visible()
    expect(host.locator("#hr-title")).to_have_text(f"Question 1 of {len(SHORT_QUIZ)}")


def reopen(context: BrowserContext, pages: Pages, name: str) -> Page:
    """The same phone (browser profile, so the same stored seat) opens /play again."""
    page = context.new_page()
    pages.watch(page, name)
    page.goto("/play")
    return page


def test_host_sees_players_drop_and_come_back(
    pages: Pages, quizzes: dict[str, str], shot: Shot
) -> None:
    host, pin = host_game(pages, quizzes["short"])
    pia = join(pages, pin, "Pia")
    quinn = join(pages, pin, "Quinn")
    pia_id, quinn_id = seat(pia)["playerId"], seat(quinn)["playerId"]
    row = host.locator(f'#player-list li[data-player-id="{quinn_id}"]')
    expect(row).to_have_attribute("data-status", "connected")
    expect(row.locator(".badge")).to_have_count(0)

    # Lobby: Quinn's phone closes the page, then opens it again.
    quinn.close()
    expect(row).to_have_attribute("data-status", "disconnected")
    expect(row.locator(".badge")).to_have_text("Disconnected")
    audit_screen(host, "host: lobby with a disconnected player")
    shot(host, "host-lobby-disconnected")
    quinn = reopen(quinn.context, pages, "player Quinn again")
    expect(in_screen(quinn, "waiting")).to_be_visible()
    expect(row).to_have_attribute("data-status", "reconnected")
    expect(row.locator(".badge")).to_have_text("Reconnected")
    expect(host.locator("#player-list li")).to_have_count(2)
    # Connection status is the host's alone: the phones show no one's.
    expect(pia.get_by_text("Disconnected")).to_have_count(0)
    expect(pia.get_by_text("Reconnected")).to_have_count(0)

    # In the game: the summary counts who is away; the list marks them.
    host.get_by_role("button", name="Start game").click()
    expect(host.locator("#game-players-summary")).to_have_text("2 players · all connected")
    pia.close()
    expect(host.locator("#game-players-summary")).to_have_text("2 players · 1 disconnected")
    host.locator("#game-players-summary").click()
    game_row = host.locator(f'#game-player-list li[data-player-id="{pia_id}"]')
    expect(game_row).to_have_attribute("data-status", "disconnected")
    expect(game_row).to_contain_text("Disconnected")
    audit_screen(host, "host: question with the player list open")
    shot(host, "host-question-players")
    pia = reopen(pia.context, pages, "player Pia again")
    expect(pia.locator("#q-text")).to_have_text(SHORT_QUIZ[0].text)
    expect(game_row).to_have_attribute("data-status", "reconnected")
    expect(game_row).to_contain_text("Reconnected")
    expect(host.locator("#game-players-summary")).to_have_text("2 players · all connected")
    expect(quinn.get_by_text("Reconnected")).to_have_count(0)


def test_a_join_whose_reply_is_lost_gets_its_seat_on_reconnect(
    pages: Pages, quizzes: dict[str, str]
) -> None:
    """The connection drops with the join's acknowledgement in flight (the seat is taken):
    back online, the page sends the same join with the same key and gets that seat."""
    host, pin = host_game(pages, quizzes["short"])
    player = pages.new("player Mio")
    lost: list[str] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            is_join_ack = isinstance(message, str) and message.startswith("43")
            if not lost and is_join_ack and '"resumeToken"' in str(message):
                lost.append(str(message))
                ws.close()  # the phone's network drops with the reply in flight
                return
            ws.send(message)

        server.on_message(to_page)

    player.route_web_socket(re.compile(r"/socket\.io/"), route)
    player.goto(f"/play?pin={pin}")
    player.get_by_label("Nickname").fill("Mio")
    player.get_by_role("button", name="Join").click()
    expect(in_screen(player, "waiting")).to_be_visible()
    expect(player.locator("#waiting-name")).to_contain_text("Mio")
    assert len(lost) == 1
    first = json.loads(lost[0][lost[0].index("[") :])[0]
    assert seat(player)["playerId"] == first["playerId"]
    assert player.evaluate("sessionStorage.getItem('tuiz_pending_join')") is None
    expect(host.locator("#player-list li")).to_have_count(1)  # one seat, not two
