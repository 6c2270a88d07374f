"""The quiz editor and account pages in Chromium against a real tuiz server and PostgreSQL:
a signed-in host builds a quiz with images and plays it with three phones to the podium; a
guest downloads and plays a quiz; the sample spreadsheet imports; the library duplicates and
deletes. Their screens pass the axe audit (tests/e2e/axe.py) where these flows reach them: both
languages, phone and desktop sizes."""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable
from itertools import count
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.e2e.axe import audit_screen
from tests.e2e.conftest import Pages, db_fetch
from tests.e2e.test_pages import host_next, in_screen, join, open_answering, seat

Shot = Callable[[Page, str], None]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PASSWORD = "correct horse battery staple"
_accounts = count(1)


def png(path: Path, width: int, height: int, rgb: tuple[int, int, int]) -> Path:
    """A solid-colour PNG written with the standard library (a real image the server keeps)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


def sign_up(pages: Pages, name: str, shot: Shot | None = None, page: Page | None = None) -> Page:
    """A new account made on /account (`page`, already there, or a new one); the page lands on
    the editor's library."""
    if page is None:
        page = pages.new(f"editor {name}", phone=False)
        page.goto("/account?next=/editor")
    form = page.locator("#signup-form")
    form.get_by_label("Display name (optional)").fill(name)
    form.get_by_label("E-mail").fill(f"{name.lower()}-{next(_accounts)}@example.test")
    form.get_by_label("Password").fill(PASSWORD)
    if shot:
        shot(page, "editor-00-account")
    form.get_by_role("button", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/editor$"))
    expect(page.locator("#who")).to_contain_text(f"Signed in as {name}")
    return page


def card(page: Page, n: int) -> Locator:
    return page.locator("#questions > li").nth(n - 1)


def set_type(page: Page, n: int, label: str) -> None:
    card(page, n).get_by_label("Type").select_option(label=label)


def add_question(page: Page, text: str, kind: str | None = None) -> Locator:
    page.get_by_role("button", name="Add a question").click()
    n = page.locator("#questions > li").count()
    if kind:
        set_type(page, n, kind)
    q = card(page, n)
    q.get_by_label("Question", exact=True).fill(text)
    return q


def fill_answers(q: Locator, texts: list[str]) -> None:
    for i, text in enumerate(texts, start=1):
        q.get_by_label(f"Answer {i}", exact=True).fill(text)


def question_texts(page: Page) -> list[str]:
    return [
        card(page, i + 1).get_by_label("Question", exact=True).input_value()
        for i in range(page.locator("#questions > li").count())
    ]


def forgive(pages: Pages, status: int, path: str) -> None:
    """Chromium logs every 4xx answer as a console error; this one (`path` a regex) was the
    test's intent. Called once the page has shown the error, so the log has it already."""
    expected = f"status of {status} "
    pages.errors[:] = [
        e for e in pages.errors if not (expected in e and re.search(rf"'url': '[^']*{path}'", e))
    ]


def image_loaded(img: Locator) -> bool:
    return bool(img.evaluate("i => i.complete && i.naturalWidth > 0"))


def test_signed_in_editor_builds_a_quiz_with_images_and_plays_it_to_the_podium(
    pages: Pages, module_db_url: str, tmp_path: Path, shot: Shot
) -> None:
    editor = sign_up(pages, "Hana")
    editor.get_by_role("button", name="New quiz").click()
    expect(in_screen(editor, "edit")).to_be_visible()
    editor.get_by_label("Title", exact=True).fill("Editor planets")

    # Q1 multiple choice with an image for the question and one for a choice.
    q1 = card(editor, 1)
    q1.get_by_label("Question", exact=True).fill("Which planet is red?")
    fill_answers(q1, ["Venus", "Mars", "Earth"])
    q1.get_by_role("button", name="Remove answer 4").click()
    q1.get_by_label("Correct").nth(1).check()
    question_png = png(tmp_path / "q.png", 320, 180, (200, 40, 40))
    q1.get_by_label("Question image").set_input_files(str(question_png))
    expect(q1.locator(".image-preview")).to_have_count(1)
    answer_png = png(tmp_path / "a.png", 64, 64, (180, 60, 20))
    q1.get_by_label("Image for answer 2").set_input_files(str(answer_png))
    expect(q1.locator(".image-preview")).to_have_count(2)
    q1.locator("summary").click()
    q1.get_by_label("Explanation title").fill("Iron oxide")
    q1.get_by_label("Explanation", exact=True).fill("Rust in its soil makes Mars red.")

    q2 = add_question(editor, "The Sun is a star.", "True or false")
    expect(q2.get_by_label("Answer 1", exact=True)).to_have_value("True")
    q3 = add_question(editor, "Which planet is the largest?", "Type the answer")
    q3.get_by_label("Accepted answers").fill("Jupiter\nthe gas giant")
    q4 = add_question(editor, "Which of these have rings?", "Multiple answers")
    fill_answers(q4, ["Saturn", "Uranus", "Mercury", "Venus"])
    q4.get_by_label("Correct").nth(0).check()
    q4.get_by_label("Correct").nth(1).check()
    q5 = add_question(editor, "Which planet would you visit?", "Poll")
    fill_answers(q5, ["Mars", "Titan (a moon)"])
    q5.get_by_role("button", name="Remove answer 4").click()
    q5.get_by_role("button", name="Remove answer 3").click()
    expect(q5.get_by_label("Points")).to_be_disabled()

    # A mistake is shown next to its field (the API names it on 422); nothing is saved.
    q4.get_by_label("Answer 4", exact=True).fill("")
    editor.get_by_role("button", name="Save", exact=True).click()
    bad = q4.get_by_label("Answer 4", exact=True)
    expect(bad).to_have_attribute("aria-invalid", "true")
    note = q4.locator(".field-error")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("at least 1 character")
    assert note.get_attribute("id") in (bad.get_attribute("aria-describedby") or "")
    shot(editor, "editor-03-field-error")
    # One screen holds every question type, a question and a choice image preview, an open
    # explanation and a field error; switching the language keeps the error by its field.
    audit_screen(editor, "editor: every question type, images, field error")
    expect(bad).to_have_attribute("aria-invalid", "true")
    expect(note).to_contain_text("at least 1 character")
    forgive(pages, 422, "/quiz-sets/[0-9a-f-]{36}")
    q4.get_by_role("button", name="Remove answer 4").click()

    # Reorder by keyboard (Alt+Down on the handle) and back by pointer (drag the handle).
    card(editor, 2).get_by_role("button", name=re.compile(r"^Move question 2 \(drag")).press(
        "Alt+ArrowDown"
    )
    assert question_texts(editor)[1:3] == ["Which planet is the largest?", "The Sun is a star."]
    expect(card(editor, 3).locator(".drag-handle")).to_be_focused()
    handle = card(editor, 3).locator(".drag-handle").bounding_box()
    target = card(editor, 2).bounding_box()
    assert handle and target
    editor.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    editor.mouse.down()
    editor.mouse.move(handle["x"] + 10, target["y"] + 10, steps=8)
    editor.mouse.up()
    order = question_texts(editor)
    assert order == [
        "Which planet is red?",
        "The Sun is a star.",
        "Which planet is the largest?",
        "Which of these have rings?",
        "Which planet would you visit?",
    ]
    shot(editor, "editor-02-questions")

    editor.get_by_role("button", name="Save", exact=True).click()
    expect(editor.locator("#save-status")).to_have_text('"Editor planets" is saved.')
    stored = db_fetch(
        module_db_url,
        "SELECT q.question_text, q.question_type::text AS kind, q.image_url"
        " FROM public.questions q JOIN public.quiz_sets s ON s.id = q.question_set_id"
        " WHERE s.title = 'Editor planets' AND q.deleted_at IS NULL ORDER BY q.order_index",
    )
    assert [r["question_text"] for r in stored] == order
    assert [r["kind"] for r in stored] == [
        "multiple_choice",
        "true_false",
        "type_answer",
        "multi_select",
        "poll",
    ]
    assert re.search(r"/uploads/quizzes/[0-9a-f-]{36}/[\w-]+\.png$", stored[0]["image_url"])

    # Host it from the editor; three phones play it to the podium.
    editor.get_by_label("Advance automatically").uncheck()
    editor.get_by_role("button", name="Host a game with it").click()
    host = editor
    expect(in_screen(host, "lobby")).to_be_visible()
    pin = host.locator("#lobby-pin")
    expect(pin).to_have_text(re.compile(r"^\d{6}$"))
    aki, ben, chika = players = [join(pages, pin.inner_text(), n) for n in ("Aki", "Ben", "Chika")]
    expect(host.locator("#player-list li")).to_have_count(3)
    host.get_by_role("button", name="Start game").click()

    open_answering(host, players, "Which planet is red?")
    for screen in (host, *players):
        image = in_screen(screen, "question").locator(".q-image")
        expect(image).to_be_visible()
        assert image_loaded(image)
        choice_images = screen.locator(".choice .choice-image")
        expect(choice_images).to_have_count(1)
        assert image_loaded(choice_images.first)
    box = aki.locator(".q-image").bounding_box()
    assert box and box["width"] <= 390 and box["height"] <= 844 * 0.3 + 1  # bounded on a phone
    shot(host, "editor-04-host-images")
    shot(aki, "editor-05-phone-images")
    # Before the reveal nothing on a phone marks the right choice.
    assert aki.locator(".choice.correct, [data-correct]").count() == 0
    aki.get_by_role("button", name="Mars").click()
    ben.get_by_role("button", name="Venus").click()
    chika.get_by_role("button", name="Mars").click()
    expect(host.locator("#hr-chart .bar-row.correct")).to_contain_text("Mars")
    expect(in_screen(host, "reveal").locator(".q-image")).to_be_visible()
    expect(aki.locator("#result-headline")).to_have_text("Correct!")
    host_next(host)
    expect(host.locator("#hr-expl-text")).to_have_text("Rust in its soil makes Mars red.")
    host_next(host)
    expect(in_screen(host, "leaderboard")).to_be_visible()
    host_next(host)

    open_answering(host, players, "The Sun is a star.")
    expect(in_screen(host, "question").locator(".q-image")).to_have_count(0)  # none left
    for p in players:
        p.get_by_role("button", name="True", exact=True).click()
    expect(in_screen(host, "reveal")).to_be_visible()
    host_next(host)
    host_next(host)

    open_answering(host, players, "Which planet is the largest?")
    for p, text in ((aki, "jupiter"), (ben, "The gas giant"), (chika, "Saturn")):
        p.get_by_role("textbox", name="Your answer").fill(text)
        p.get_by_role("button", name="Submit answer").click()
    expect(in_screen(host, "reveal")).to_be_visible()
    expect(ben.locator("#result-headline")).to_have_text("Correct!")
    host_next(host)
    host_next(host)

    open_answering(host, players, "Which of these have rings?")
    for p in players:
        for label in ("Saturn", "Uranus"):
            p.get_by_role("button", name=label, exact=True).click()
        p.get_by_role("button", name="Submit answer").click()
    expect(in_screen(host, "reveal")).to_be_visible()
    expect(host.locator("#hr-chart .bar-row.correct")).to_have_count(2)
    host_next(host)
    host_next(host)

    open_answering(host, players, "Which planet would you visit?")
    for p in players:
        p.get_by_role("button", name="Mars", exact=True).click()
    expect(in_screen(host, "reveal")).to_be_visible()
    host_next(host)

    expect(in_screen(host, "podium")).to_be_visible()
    expect(host.locator("#hp-list li")).to_have_count(3)
    for p in players:
        expect(in_screen(p, "final")).to_be_visible()
    scores = {
        seat(p)["playerId"]: int(p.locator("#final-me").get_attribute("data-score") or -1)
        for p in players
    }
    assert scores[seat(aki)["playerId"]] > scores[seat(chika)["playerId"]] > 0


def test_guest_makes_a_quiz_downloads_it_and_hosts_it(pages: Pages, shot: Shot) -> None:
    editor = pages.new("guest editor", phone=False)
    editor.goto("/")
    editor.get_by_role("link", name="Make a quiz").click()
    expect(editor).to_have_url(re.compile(r"/editor$"))
    expect(editor.locator("#who")).to_contain_text("You are not signed in")
    editor.get_by_role("button", name="New quiz").click()
    expect(editor.get_by_role("button", name="Save", exact=True)).to_be_hidden()
    expect(editor.get_by_label("Question image")).to_have_count(0)  # images need an account
    expect(editor.locator("#guest-images")).to_be_visible()
    audit_screen(editor, "editor: guest, sign-in prompt for images")
    editor.get_by_label("Title", exact=True).fill("Guest colours")
    q1 = card(editor, 1)
    q1.get_by_label("Question", exact=True).fill("Which colour is grass?")
    fill_answers(q1, ["Green", "Red"])
    q1.get_by_role("button", name="Remove answer 4").click()
    q1.get_by_role("button", name="Remove answer 3").click()
    editor.reload()  # the draft stays in this browser
    expect(card(editor, 1).get_by_label("Answer 2", exact=True)).to_have_value("Red")
    editor.get_by_role("button", name="Back to the list").click()
    editor.get_by_role("button", name="Continue editing “Guest colours”").click()
    expect(card(editor, 1).get_by_label("Answer 1", exact=True)).to_have_value("Green")
    shot(editor, "editor-06-guest")

    with editor.expect_download() as download:
        editor.get_by_role("button", name="Download JSON").click()
    assert download.value.suggested_filename == "Guest colours.json"
    saved = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert saved["title"] == "Guest colours"
    assert saved["questions"][0]["answers"] == [
        {"answer_text": "Green", "is_correct": True, "image_url": None},
        {"answer_text": "Red", "is_correct": False, "image_url": None},
    ]

    # A mistake found by the server when hosting is shown by its field too.
    card(editor, 1).get_by_label("Question", exact=True).fill("")
    editor.get_by_role("button", name="Host a game with it").click()
    expect(card(editor, 1).get_by_label("Question", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    forgive(pages, 422, "/games")
    card(editor, 1).get_by_label("Question", exact=True).fill("Which colour is grass?")
    editor.get_by_label("Advance automatically").uncheck()
    editor.get_by_role("button", name="Host a game with it").click()
    expect(in_screen(editor, "lobby")).to_be_visible()
    pin = editor.locator("#lobby-pin")
    expect(pin).to_have_text(re.compile(r"^\d{6}$"))
    player = join(pages, pin.inner_text(), "Gin")
    editor.get_by_role("button", name="Start game").click()
    open_answering(editor, [player], "Which colour is grass?")
    player.get_by_role("button", name="Green").click()
    expect(player.locator("#result-headline")).to_have_text("Correct!")


def test_sample_spreadsheet_imports_and_exports_in_the_browser(
    pages: Pages, tmp_path: Path, shot: Shot
) -> None:
    editor = pages.new("importer", phone=False)
    editor.goto("/editor")
    bad = tmp_path / "bad.csv"
    bad.write_text("Question,Answer 1,Answer 2,Time limit,Correct\nQ,a,b,20,7\n", encoding="utf-8")
    field = editor.get_by_label("Import a spreadsheet (Kahoot template: xlsx or CSV)")
    field.set_input_files(str(bad))
    expect(editor.locator(".field-error")).to_have_text(
        "row 2, Correct answer(s): 7 is not the number of an answer with text"
    )
    expect(field).to_have_attribute("aria-invalid", "true")
    audit_screen(editor, "editor: library (guest), import error")
    forgive(pages, 422, "/quiz-sheets/import")

    field.set_input_files(str(FIXTURES / "kahoot-template-sample.xlsx"))
    expect(in_screen(editor, "edit")).to_be_visible()
    expect(editor.get_by_label("Title", exact=True)).to_have_value("kahoot-template-sample")
    expect(editor.locator("#questions > li")).to_have_count(3)
    assert question_texts(editor) == [
        "Which planet is known as the red planet?",
        "Which of these are mammals?",
        "Mount Fuji is the highest mountain in Japan.",
    ]
    types = [card(editor, i).get_by_label("Type").input_value() for i in (1, 2, 3)]
    assert types == ["multiple_choice", "multi_select", "true_false"]
    expect(card(editor, 1).get_by_label("Time limit (seconds)")).to_have_value("20")
    expect(card(editor, 1).get_by_label("Correct").nth(1)).to_be_checked()
    expect(card(editor, 2).get_by_label("Correct").nth(2)).to_be_checked()
    expect(editor.locator("#save-status")).to_contain_text("Imported 3 questions")
    shot(editor, "editor-07-imported")

    with editor.expect_download() as download:
        editor.get_by_role("button", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[2] == '2,Which of these are mammals?,Whale,Shark,Bat,Trout,30,"1,3"'


def test_account_and_library_edit_duplicate_and_delete(
    pages: Pages, module_db_url: str, shot: Shot
) -> None:
    account = pages.new("editor Ren", phone=False)
    account.goto("/account?next=/editor")
    expect(account.locator("#signup-form")).to_be_visible()
    audit_screen(account, "account: sign in, sign up")
    # A wrong sign-in (401, in the form's box) and a weak password (422, by its field).
    signin = account.locator("#signin-form")
    signin.get_by_label("E-mail").fill("nobody@example.test")
    signin.get_by_label("Password").fill(PASSWORD)
    signin.get_by_role("button", name="Sign in").click()
    expect(account.locator("#signin-error")).to_have_text("The e-mail or password is wrong.")
    signup = account.locator("#signup-form")
    signup.get_by_label("E-mail").fill("weak@example.test")
    signup.get_by_label("Password").fill("abc")
    signup.get_by_role("button", name="Create an account").click()
    expect(signup.locator(".field-error")).to_contain_text("at least")
    expect(signup.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    audit_screen(account, "account: errors shown")
    expect(account.locator("#signin-error")).to_have_text("The e-mail or password is wrong.")
    forgive(pages, 401, "/auth/login")
    forgive(pages, 422, "/auth/register")

    editor = sign_up(pages, "Ren", shot, page=account)
    expect(editor.locator("#mine-empty")).to_be_visible()
    audit_screen(editor, "editor: library (signed in, empty)")
    editor.get_by_role("button", name="New quiz").click()
    editor.get_by_label("Title", exact=True).fill("Ren's quiz")
    q1 = card(editor, 1)
    q1.get_by_label("Question", exact=True).fill("1 + 1?")
    fill_answers(q1, ["2", "3", "4", "5"])
    editor.get_by_role("button", name="Save", exact=True).click()
    expect(editor.locator("#save-status")).to_contain_text("is saved")
    editor.get_by_role("button", name="Back to the list").click()
    items = editor.locator("#quiz-list li")
    expect(items).to_have_count(1)

    editor.get_by_role("button", name="Duplicate Ren's quiz").click()
    expect(items).to_have_count(2)
    shot(editor, "editor-01-library")
    audit_screen(editor, "editor: library (signed in, two quizzes)")
    editor.get_by_role("button", name="Edit Ren's quiz").first.click()
    expect(card(editor, 1).get_by_label("Answer 4", exact=True)).to_have_value("5")
    editor.get_by_role("button", name="Back to the list").click()

    editor.once("dialog", lambda dialog: dialog.accept())
    editor.get_by_role("button", name="Delete Ren's quiz").first.click()
    expect(items).to_have_count(1)
    live = db_fetch(
        module_db_url,
        "SELECT count(*) AS n FROM public.quiz_sets WHERE title = $1 AND deleted_at IS NULL",
        "Ren's quiz",
    )
    assert live[0]["n"] == 1

    editor.goto("/account")
    expect(editor.locator("#signed-in-as")).to_have_text("Signed in as Ren.")
    audit_screen(editor, "account: signed in")


def test_editor_and_account_pages_in_japanese(pages: Pages, shot: Shot) -> None:
    page = pages.new("editor ja", locale="ja-JP")
    page.goto("/editor")
    expect(page.get_by_role("heading", level=1)).to_have_text("クイズエディター")
    page.get_by_role("button", name="新しいクイズ").click()
    q1 = card(page, 1)
    expect(q1.get_by_label("問題文")).to_be_visible()
    q1.get_by_label("形式").select_option(label="○×")
    expect(q1.get_by_label("選択肢1", exact=True)).to_have_value("○")
    shot(page, "editor-08-phone-ja")
    page.goto("/account")
    expect(page.get_by_role("heading", level=1)).to_have_text("アカウント")
    signup = page.locator("#signup-form")
    expect(signup.get_by_role("button")).to_have_text("アカウントを作成")
    # The server's typed password error, in the page's language.
    signup.get_by_label("メールアドレス").fill("weak-ja@example.test")
    signup.get_by_label("パスワード").fill("abc")
    signup.get_by_role("button").click()
    expect(signup.locator(".field-error")).to_have_text("8文字以上にしてください。")
    forgive(pages, 422, "/auth/register")
