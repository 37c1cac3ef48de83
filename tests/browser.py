"""The console under test: a server serving it, Debian's Chromium driven by Playwright, a
``Tab`` that records script errors and any request leaving the server, and a ``Line`` through
which the page's WebSocket is routed (to watch it, or to drop it).

No browser is ever downloaded: Playwright starts the Chromium that apt installed
(``CHROMIUM``, default ``/usr/bin/chromium``). Where there is none the browser tests are
skipped with the reason — except in CI (``CI=true``), where that fails. Screenshots go to
``SCREENSHOT_DIR`` (default ``build/screenshots``, which git ignores).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, WebSocketRoute, async_playwright

from graph.server.console import PATH, console_routes
from graph.server.settings import Settings
from tests.databases import require
from tests.live import LiveServer

ROOT = Path(__file__).parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "build" / "screenshots"))
#: a quiet browser: nothing of its own goes out (updates, sync, safe browsing, first-run pages)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)


def console_server(settings: Settings) -> LiveServer:
    """A started server that serves the console (its routes added where the app lacks them)."""
    live = LiveServer(settings)
    if not any(getattr(route, "path", None) == PATH for route in live.app.router.routes):
        live.app.router.routes.extend(console_routes())
    return live.start()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium under Playwright; skips (fails in CI) where it is not installed."""
    require(None if CHROMIUM.exists() else f"no Chromium at {CHROMIUM} (apt-get install chromium)", "browser")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_path(name: str) -> Path:
    """Where a screenshot called ``name`` goes (the folder is made on first use)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


@dataclass
class Tab:
    """A page of its own (fresh sessionStorage) and what went wrong on it."""

    page: Page
    origin: str
    problems: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on("console", self._console)
        self.page.on("request", lambda request: self._address(request.url))
        self.page.on("websocket", lambda socket: self._address(socket.url))

    def _console(self, message: ConsoleMessage) -> None:
        # the sign-in probe is an anonymous request a server with keys answers 401: expected
        if message.type == "error" and "status of 401" not in message.text:
            self.problems.append(f"console error: {message.text}")

    def _address(self, url: str) -> None:
        if not re.match(rf"^(http|ws)://{re.escape(self.origin)}/", url):
            self.problems.append(f"a request outside the server: {url}")


@asynccontextmanager
async def opened(browser: Browser, server: LiveServer) -> AsyncIterator[Tab]:
    """A tab of its own at desktop size; on leaving, nothing may have gone wrong on it."""
    context = await browser.new_context(viewport=DESKTOP)
    tab = Tab(await context.new_page(), server.url.removeprefix("http://"))
    tab.watch()
    try:
        yield tab
    finally:
        await context.close()
    assert tab.problems == []


@dataclass
class Line:
    """The page's WebSocket, routed through the test: what the page sends on each connection,
    and a switch that holds back what the server says (as a dead link would)."""

    connections: list[WebSocketRoute] = field(default_factory=list)
    sent: list[list[dict]] = field(default_factory=list)
    received: list[list[dict]] = field(default_factory=list)
    holding: bool = False
    swallowed: list[dict] = field(default_factory=list)

    def route(self, page_side: WebSocketRoute) -> None:
        sent: list[dict] = []
        received: list[dict] = []
        self.connections.append(page_side)
        self.sent.append(sent)
        self.received.append(received)

        def to_server(message: str | bytes) -> None:
            sent.append(json.loads(message))
            server_side.send(message)

        page_side.on_message(to_server)  # before connecting: no message may pass unseen
        server_side = page_side.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if self.holding:
                self.swallowed.append(json.loads(message))
            else:
                received.append(json.loads(message))
                page_side.send(message)

        server_side.on_message(to_page)

    async def swallow_one(self) -> dict:
        """Hold back what the server says until one message has been lost; that message."""
        self.holding = True
        for _ in range(300):  # at most 15 s
            if self.swallowed:
                self.holding = False
                return self.swallowed[0]
            await asyncio.sleep(0.05)
        raise AssertionError("the server said nothing while the line was held")
