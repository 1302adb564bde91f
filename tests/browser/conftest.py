"""Browser tests: Playwright driving Debian's Chromium (the `chromium` package), headless.

Without that browser (or without the `playwright` package) the tests are skipped, and the end
of the run says so in one line: a silent skip would read as a pass.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path(os.environ.get("PROMPTPILOT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    return None


MISSING = _missing()
if importlib.util.find_spec("playwright") is None:
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "viewport(width, height): the browser window size")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if MISSING is None:
        return
    # Every test in this folder, marked or not (the hook sees the whole session's items).
    skip = pytest.mark.skip(reason=f"browser tests skipped: {MISSING}")
    here = Path(__file__).resolve().parent
    for item in items:
        if item.get_closest_marker("browser") or item.path.resolve().is_relative_to(here):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MISSING is not None:
        terminalreporter.write_sep("!", f"browser tests skipped: {MISSING}", yellow=True,
                                   bold=True)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh browser context (1280x900, or `@pytest.mark.viewport(w, h)`); its last screen is
    saved as test-artifacts/screenshots/<test>.png."""
    marker = request.node.get_closest_marker("viewport")
    width, height = marker.args if marker else (1280, 900)
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name.replace("/", "_")
        try:
            await tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        finally:
            await context.close()
