"""Shared parts of the browser tests: Debian's Chromium, screenshots and the vendored axe-core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

# The tests run on two workers, so a page may wait for a busy CPU: assertions retry for 15 s, not Playwright's
# default 5 s (a passing assertion returns as soon as it holds; only a failing one takes the whole wait).
expect.set_options(timeout=15_000)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
SCREENSHOTS = ROOT / "var" / "screenshots"
"""Where the browser tests leave their screenshots (``/var/`` is git-ignored)."""
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 360, "height": 640}


def shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.0/2.1 A and AA rules, best practices).

    The page's Content-Security-Policy forbids injected scripts: open it in a context made with
    ``bypass_csp=True``."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations'],"
        " runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result["violations"]]
