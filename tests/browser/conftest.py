"""Browser tests: Debian's Chromium driven by Playwright (sync API).

One browser per test session; every test gets fresh contexts (no shared cookies), a
1280x800 viewport, and a screenshot of each of its pages in tests/artifacts/ when it
ends (suffixed ``FAILED`` when it failed). Named screenshots of the main pages are taken
with the ``shot`` fixture; ``docs=True`` ones are also copied to docs/screenshots/ (kept
in git, shown by the README) when missing there or when ``IDP_UPDATE_SCREENSHOTS=1``.

Never ``playwright install``: the browser is /usr/bin/chromium. No sleeps: Playwright
auto-waits, and a FrozenClock stands in for time passing.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.helpers import Dialogs
from tests.conftest import make_config
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer, live_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
DOCS_MAX_BYTES = 200_000
TIMEOUT_MS = 10_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keeps each phase's report on the item so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def _backend_id(request: pytest.FixtureRequest) -> str:
    callspec = getattr(request.node, "callspec", None)
    return str(callspec.params.get("backend", "")) if callspec else ""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture
def new_context(
    browser: Browser, request: pytest.FixtureRequest, dialogs: Dialogs
) -> Iterator[Callable[..., BrowserContext]]:
    """Makes fresh browser contexts; screenshots their pages and closes them at the end."""
    contexts: list[BrowserContext] = []

    def make(**kwargs: Any) -> BrowserContext:
        kwargs.setdefault("viewport", VIEWPORT)
        context = browser.new_context(**kwargs)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("page", lambda page: page.on("dialog", dialogs.record))
        contexts.append(context)
        return context

    yield make

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    status = "FAILED" if _failed(request) else "end"
    name = _slug(request.node.name)
    for i, context in enumerate(contexts):
        for j, page in enumerate(context.pages):
            suffix = "" if (i, j) == (0, 0) else f"-{i}.{j}"
            try:
                page.screenshot(path=ARTIFACTS / f"{name}-{status}{suffix}.png")
            except Exception as exc:  # a crashed page must not hide the test's own error
                print(f"no screenshot of {page.url}: {exc}")
        context.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """shot(page, "login", docs=True): a named screenshot of the viewport."""
    backend = _backend_id(request)

    def take(page: Page, name: str, *, docs: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / (f"{name}.{backend}.png" if backend else f"{name}.png")
        page.screenshot(path=path)
        if docs:
            assert path.stat().st_size < DOCS_MAX_BYTES, f"{path} is too big for the docs"
            target = DOCS_SCREENSHOTS / f"{name}.png"
            if os.environ.get("IDP_UPDATE_SCREENSHOTS") == "1" or not target.exists():
                DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        return path

    return take


@pytest.fixture
def server(
    backend: dict[str, Any], tmp_path: Path, app: Flask, clock: FrozenClock
) -> Iterator[LiveServer]:
    """idp over HTTP on the ``app`` fixture's (emptied) storage and its FrozenClock.

    The clock starts at the real time of the test, so relying apps that check
    ``iat``/``exp`` accept the tokens; tests move it forward to make a login stale.
    """
    with live_server(make_config(backend, tmp_path), clock=clock) as live:
        yield live
