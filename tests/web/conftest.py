"""The dashboard in a real browser: Debian's Chromium driven by Playwright against real
`batchgate serve` processes (scripts/test installs Chromium when it is missing).

Screenshots of each view go to $BATCHGATE_SCREENSHOTS when it is set (docs/ui.md was made with
`BATCHGATE_SCREENSHOTS=docs/ui`), else to the test's temporary folder.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from conftest import Server, simple_request
from key_commands import create_key

CHROMIUM = os.environ.get("BATCHGATE_CHROMIUM", "/usr/bin/chromium")


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread
# until it stops, and tests of other folders call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: `apt-get install chromium` (scripts/test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@dataclass(frozen=True)
class Dashboard:
    """A server with keys: `blue` and its read-only `viewer`, and `red`, another workspace.
    A third of the requests fail (invalid_request_error, never retried)."""

    server: Server
    blue: str
    viewer: str
    red: str

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/ui"

    def client(self, key: str | None = None) -> anthropic.Anthropic:
        return self.server.client(key or self.blue)

    def create(self, count: int, prefix: str = "req", webhook_url: str | None = None) -> str:
        requests = [simple_request(f"{prefix}-{i}", f"Question {i}") for i in range(count)]
        extra = {"webhook_url": webhook_url} if webhook_url else None
        return self.client().messages.batches.create(requests=requests, extra_body=extra).id  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    directory = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{directory / 'batchgate.db'}"
    blue, viewer = create_key(url, "blue"), create_key(url, "blue", read_only=True)
    red = create_key(url, "red")
    server = Server(
        directory,
        database_url=url,
        simulator_latency_ms="100",
        max_concurrency="8",
        simulator_fault_rate="0.3",
        simulator_fault_types="invalid_request_error",
        webhook_allow_private_addresses="1",  # the tests' receivers listen on loopback
    ).start()
    yield Dashboard(server, blue.key, viewer.key, red.key)
    server.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser session: no cookies."""
    fresh = browser.new_context(viewport={"width": 1280, "height": 800})
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())  # the actions' confirmations
    return opened


@pytest.fixture
def shoot(tmp_path: Path) -> "Screenshots":
    return Screenshots(Path(os.environ.get("BATCHGATE_SCREENSHOTS") or tmp_path))


class Screenshots:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    def __call__(self, page: Page, name: str) -> None:
        page.screenshot(path=self.folder / f"{name}.png", full_page=True)


def sign_in(page: Page, dashboard: Dashboard, key: str) -> None:
    page.goto(f"{dashboard.url}/batches")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{dashboard.url}/batches")


def post_form(context: BrowserContext, url: str, csrf: bool = True) -> int:
    """Posts a form as the page's own would, with the browser's cookies (and its token)."""
    token = next(c["value"] for c in context.cookies() if c["name"] == "batchgate_csrf")
    form = {"csrf": token} if csrf else {}
    return context.request.post(url, form=form, max_redirects=0).status
