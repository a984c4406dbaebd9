"""A real `memorymesh serve` and Debian's chromium driven by Playwright (not Playwright's own
browser, whose download is not reachable from every host: `make browser` installs chromium).

Every page is opened in a context that aborts and records any request to another origin:
the pages must load whole from the service itself. Console errors (a script failing, a
Content-Security-Policy violation) are recorded too. Screenshots go to .artifacts/screenshots
(not committed), to be looked at."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
ADMIN_KEY = "browser-admin-key-00000000001"
ACME_KEY = "browser-acme-key-000000000001"
GLOBEX_KEY = "browser-globex-key-0000000001"
# As the machine's probe found: without the background-networking flags chromium tries to
# reach Google's hosts at every start (refused here, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    found = os.environ.get("MEMORY_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium: `make browser` installs Debian's (apt-get install chromium)"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped, not session-scoped: while Playwright's sync API is open it keeps an event
    loop of its own on this thread, and every asyncio test after it would fail to run."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    process = ServerProcess(
        data_dir,
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme,{GLOBEX_KEY}:globex",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output


class Watched:
    """A page whose requests to other origins are aborted and listed, with its console errors."""

    def __init__(self, context: BrowserContext, page: Page, origin: str) -> None:
        self.context = context
        self.page = page
        self.origin = origin
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.refused: list[tuple[int, str]] = []  # (status, path) of every answer >= 400
        self.dialogs: list[str] = []
        self.bytes_received = 0

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self, refusals: set[tuple[int, str]] = frozenset()) -> None:  # type: ignore[assignment]
        """Nothing left the host, no script failed, and the API refused only what the test expects."""
        assert self.foreign == [], f"requests left the host: {self.foreign}"
        assert self.errors == [], f"console errors: {self.errors}"
        assert set(self.refused) <= set(refusals), f"unexpected refusals: {set(self.refused) - set(refusals)}"
        if self.page.locator("main").count():  # the console (/docs has none): no value shown as "null" & co
            shown = self.page.locator("main").inner_text()
            assert not re.search(r"(?<![A-Za-z])null|undefined|\bNaN\b|\[object Object\]", shown), shown[:500]


@pytest.fixture
def watched(browser: Browser, server: ServerProcess) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    origin = server.url
    seen = Watched(context, page, origin)

    def guard(route, request) -> None:  # type: ignore[no-untyped-def]
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == origin:
            route.continue_()
        else:
            seen.foreign.append(request.url)
            route.abort()

    context.route("**/*", guard)
    page.on("console", lambda message: _console(seen, message))
    page.on("pageerror", lambda error: seen.errors.append(f"page error: {error}"))
    page.on("response", lambda response: _count(seen, response))
    yield seen
    context.close()


def _console(seen: Watched, message) -> None:  # type: ignore[no-untyped-def]
    # The browser logs every answer >= 400 as "Failed to load resource": those are checked by
    # status and path (Watched.refused), against what each test expects the API to refuse.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        seen.errors.append(message.text)


def _count(seen: Watched, response) -> None:  # type: ignore[no-untyped-def]
    if response.status >= 400:
        seen.refused.append((response.status, urlsplit(response.url).path))
    with contextlib.suppress(Exception):  # a response without a body (204, aborted, redirect)
        seen.bytes_received += len(response.body())


def sign_in(seen: Watched, key: str) -> None:
    page = seen.page
    page.goto(f"{seen.origin}/console")
    page.fill("#api-key", key)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")
