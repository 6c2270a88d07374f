"""Steps the browser tests share: host a game, join from a phone, advance, read the seat."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Pages

Shot = Callable[[Page, str], None]


def in_screen(page: Page, name: str) -> Any:
    return page.locator(f'section[data-screen="{name}"]')


def host_game(pages: Pages, quiz_id: str, shot: Shot | None = None) -> tuple[Page, str]:
    """Open /host, create a game from `quiz_id` (advanced by Next); returns the page and PIN."""
    host = pages.new("host", phone=False)
    host.goto("/host")
    expect(in_screen(host, "setup")).to_be_visible()
    expect(host.locator(f'#quiz-select option[value="{quiz_id}"]')).to_have_count(1)
    host.select_option("#quiz-select", quiz_id)
    host.get_by_label("Advance automatically").uncheck()
    if shot:
        shot(host, "host-01-setup")
    host.get_by_role("button", name="Create game").click()
    expect(in_screen(host, "lobby")).to_be_visible()
    pin = host.locator("#lobby-pin")
    expect(pin).to_have_text(re.compile(r"^\d{6}$"))
    return host, pin.inner_text()


def join(pages: Pages, pin: str, name: str, shot: Shot | None = None) -> Page:
    player = pages.new(f"player {name}")
    player.goto(f"/play?pin={pin}")
    expect(player.get_by_label("Game PIN")).to_have_value(pin)
    player.get_by_label("Nickname").fill(name)
    if shot:
        shot(player, "player-01-join")
    player.get_by_role("button", name="Join").click()
    expect(in_screen(player, "waiting")).to_be_visible()
    expect(player.locator("#waiting-name")).to_contain_text(name)
    return player


def seat(player: Page) -> dict[str, Any]:
    value: dict[str, Any] = player.evaluate("JSON.parse(localStorage.getItem('tuiz_seat'))")
    return value


def host_next(host: Page) -> None:
    host.get_by_role("button", name="Next", exact=True).click()


def open_answering(host: Page, players: list[Page], text: str) -> None:
    """The question is shown (waiting for Next without auto-advance); Next opens answering."""
    expect(host.locator("#hq-text")).to_have_text(text)
    expect(host.locator("#hq-ready")).to_be_visible()
    for p in players:
        expect(p.locator("#q-text")).to_have_text(text)
    host_next(host)
    expect(host.locator("#hq-ready")).to_be_hidden()
