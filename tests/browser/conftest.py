"""Browser tests of the officials' console: Debian's Chromium driven by Playwright for Python.

- `chromium`: one browser per run, `/usr/bin/chromium --no-sandbox` (Playwright's own browser
  download cannot work on these machines and is never used).
- `open_console(base_url)`: a fresh browser context (its own cookies and sessionStorage) and page,
  watched: any console error, uncaught page error, failed request, or response >= 400 that the
  test did not announce (`watched.expect_status(403)`) FAILS the test at teardown.
- Every page the browser lands on is photographed into `.run/screenshots/` (git-ignored; emptied
  at the start of a run): `<test>-<nn>-<what>.png`. `watched.snap(name)` takes one on demand (an
  open dialog, say); landings are taken automatically after each navigation settles.
- `fake_console`: the console router, a stand-in of review's `/api` (fake_api.py) and the local
  issuer's development login in one loopback server, for page tests without the platform.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response, async_playwright

from deploy.embedded.dev_users import DEV_USERS
from deploy.embedded.issuer_login import login_router
from deploy.embedded.processes import free_port
from services.review.console.routes import ConsoleConfig
from services.review.console.routes import router as console_router
from subsidy.identity.local_issuer import LocalIssuer
from subsidy.identity.verifier import TokenVerifier
from tests.browser import fake_api

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".run" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        # An official's browser runs in Chinese: `--lang` sets the UI language, but date inputs take
        # their format (年/月/日, not mm/dd/yyyy) from LANGUAGE. Not LANG: with no zh_CN locale on
        # the machine, Chromium could no longer name a download 待办_....xlsx (it says "download").
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=zh-CN"],
                                          env={**os.environ, "LANGUAGE": "zh_CN"})
        yield browser
        await browser.close()


@dataclass
class Watched:
    page: Page
    test: str
    folder: Path
    problems: list[str] = field(default_factory=list)
    expected: set[int] = field(default_factory=set)
    shots: int = 0
    landed: list[str] = field(default_factory=list)
    photographed: set[str] = field(default_factory=set)

    def expect_status(self, *codes: int) -> None:
        """This test visits pages that answer these statuses on purpose (the 无权限 page, say)."""
        self.expected.update(codes)

    async def snap(self, what: str) -> Path:
        self.shots += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", what).strip("-")[:60] or "page"
        path = self.folder / f"{self.test}-{self.shots:02d}-{safe}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        self.photographed.add(self.page.url)
        return path

    async def settle(self, what: str) -> None:
        """After an action that navigates: wait for the page, photograph it."""
        await self.page.wait_for_load_state("load")
        await self.snap(what)

    async def goto(self, url: str, what: str) -> Response | None:
        response = await self.page.goto(url)
        await self.snap(what)
        return response

    async def click(self, selector: str, what: str) -> None:
        """Click something that loads a new page, wait for it, photograph it."""
        async with self.page.expect_navigation():
            await self.page.click(selector)
        await self.snap(what)


@pytest.fixture
async def open_console(chromium: Browser, screenshots_dir: Path, request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[Watched]]]:
    opened: list[tuple[Any, Watched]] = []
    test = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:60]

    async def open_page(base_url: str, *, label: str | None = None) -> Watched:
        context = await chromium.new_context(base_url=base_url, viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
        page = await context.new_page()
        watched = Watched(page, f"{test}{'-' + label if label else ''}", screenshots_dir)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                status = re.search(r"status of (\d{3})", message.text)
                if status and int(status.group(1)) in watched.expected:
                    return
                watched.problems.append(f"console error on {page.url}: {message.text}")

        def on_request_failed(req: Request) -> None:
            failure = req.failure or ""
            if "ERR_ABORTED" in failure and req.resource_type == "document":
                return  # a navigation replaced by the next one (a download, a redirect chain)
            watched.problems.append(f"request failed: {req.method} {req.url} ({failure})")

        def on_response(response: Response) -> None:
            if response.status >= 400 and response.status not in watched.expected:
                watched.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

        def on_navigated(frame: Any) -> None:
            if frame == page.main_frame:
                watched.landed.append(frame.url)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: watched.problems.append(f"page error on {page.url}: {exc}"))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        page.on("framenavigated", on_navigated)
        opened.append((context, watched))
        return watched

    yield open_page
    problems: list[str] = []
    for context, watched in opened:
        problems += watched.problems
        # every page the browser landed on was photographed
        unseen = [u for u in dict.fromkeys(watched.landed) if u not in watched.photographed and u != "about:blank"]
        if unseen:
            problems.append(f"{watched.test}: pages visited without a screenshot: {unseen}")
        await context.close()
    assert not problems, "the browser saw problems:\n" + "\n".join(problems)


# --- the console against a stand-in API ------------------------------------------------------


@dataclass
class FakeConsole:
    base_url: str
    world: fake_api.World
    issuer: LocalIssuer

    def token(self, subject: str, ttl_s: int = 3600) -> str:
        user = next(u for u in DEV_USERS if u.subject == subject)
        return self.issuer.mint(subject=user.subject, roles=user.roles, programs=user.programs, name=user.name,
                                window=user.window, ttl_s=ttl_s)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread
        pass


@pytest.fixture
def fake_console(tmp_path: Path) -> Iterator[FakeConsole]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    issuer = LocalIssuer.for_run_dir(tmp_path, f"{base}/issuer")

    async def jwks() -> dict[str, Any]:
        return issuer.jwks()

    world = fake_api.seeded()
    app = FastAPI()
    app.state.verifier = TokenVerifier(issuer=issuer.issuer, audience=issuer.audience, fetch_jwks=jwks)
    app.state.console_config = ConsoleConfig.for_issuer(issuer.issuer)
    app.include_router(console_router())
    app.include_router(login_router(issuer, DEV_USERS), prefix="/issuer")
    fake_api.install(app, world)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake console did not start"
        time.sleep(0.05)
    try:
        yield FakeConsole(base, world, issuer)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def login_as(watched: Watched, subject: str, path: str = "/console/") -> None:
    """Through the development login page, as an official would: open the console, pick the user."""
    await watched.page.goto(path)
    await watched.page.wait_for_selector(f'button[data-subject="{subject}"]')
    await watched.snap("login-page")
    async with watched.page.expect_navigation(url=re.compile(r"/console/(?!callback)")):
        await watched.page.click(f'button[data-subject="{subject}"]')
    await watched.page.wait_for_load_state("load")
    await watched.snap(f"after-login-{subject}")


