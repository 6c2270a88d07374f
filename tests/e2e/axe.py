"""An axe-core accessibility audit for the browser tests: `audit(page, label)` on one screen,
`audit_screen(page, label)` on one screen in both languages at phone and desktop sizes.

axe-core comes from npm (`node_modules/axe-core`, pinned in package.json, installed by the
Makefile's `npm ci`) and is injected into the page under test by Playwright; the pages never
load it themselves. A screen passes with no violation of impact "serious" or "critical" (the
WCAG 2.x A/AA rules and axe's best practices); the failure lists every such violation with its
rule, help text and the offending elements. Lesser findings are returned, not failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
LANGUAGES = ("en", "ja")
VIEWPORTS: dict[str, dict[str, int]] = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 860},
}

# Runs axe on the whole document; returns the violations in a compact, JSON-safe shape.
_RUN = """async () => {
  const result = await window.axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.join(' '), html: n.html.slice(0, 200), summary: n.failureSummary || '',
    })),
  }));
}"""


class AxeViolations(AssertionError):
    """A screen had serious or critical accessibility violations."""


def _inject(page: Page) -> None:
    if not AXE_JS.is_file():
        raise AxeViolations(
            f"{AXE_JS} is missing: run `npm ci` (make test does) to install axe-core"
        )
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))


def _format(label: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{label}: {len(violations)} serious/critical accessibility violation(s)"]
    for v in violations:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:5]:
            lines.append(f"      {node['target']}: {node['html']}")
            if node["summary"]:
                lines.append("        " + node["summary"].replace("\n", "\n        "))
        if len(v["nodes"]) > 5:
            lines.append(f"      … and {len(v['nodes']) - 5} more")
    return "\n".join(lines)


def violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (all impacts)."""
    _inject(page)
    found: list[dict[str, Any]] = page.evaluate(_RUN)
    return found


def audit(page: Page, label: str) -> list[dict[str, Any]]:
    """Fail with the list of serious/critical violations on the screen as shown; returns the
    lesser ones (moderate, minor) for whoever wants to look at them."""
    found = violations(page)
    blocking = [v for v in found if v["impact"] in BLOCKING]
    if blocking:
        raise AxeViolations(_format(label, blocking))
    return [v for v in found if v["impact"] not in BLOCKING]


def set_language(page: Page, lang: str) -> None:
    """Switch a tuiz page's language with its own switch (no reload) and wait until applied."""
    page.locator(f'#lang-switch button[data-lang="{lang}"]').click()
    expect(page.locator("html")).to_have_attribute("lang", lang)


def audit_screen(
    page: Page,
    label: str,
    *,
    languages: tuple[str, ...] = LANGUAGES,
    viewports: tuple[str, ...] = tuple(VIEWPORTS),
) -> None:
    """Audit one screen in every language and viewport size, then restore the page's own
    language and size; one failure lists every combination that failed.

    The language switch is the page's own (#lang-switch), so the screen is re-rendered in
    place: one game serves every combination.
    """
    original_lang = page.locator("html").get_attribute("lang") or "en"
    original_size = page.viewport_size
    failures: list[str] = []
    try:
        for lang in languages:
            set_language(page, lang)
            for size in viewports:
                page.set_viewport_size(VIEWPORTS[size])
                try:
                    audit(page, f"{label} [{lang}, {size}]")
                except AxeViolations as failure:
                    failures.append(str(failure))
    finally:
        if original_size is not None:
            page.set_viewport_size(original_size)
        set_language(page, original_lang)
    if failures:
        raise AxeViolations("\n".join(failures))
