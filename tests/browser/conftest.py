"""Browser tests: headless Chromium (Debian's package) driven by Playwright.

One ``ensemble serve --demo`` process serves every test of this package (a
fresh database, its own data directory); each test opens its own browser
contexts, so cookies and storage never leak between tests.  Playwright's
sync API runs beside pytest-trio: these tests are plain ``def``.

Server and browser are package-scoped, not session-scoped: the demo's
printers keep printing (CPU the rest of the suite should have), and while
Playwright's sync API is open the main thread counts as running an asyncio
loop, so a later ``asyncio.run`` (ScratchPostgres) would refuse to start.

Chromium comes from the system (``/usr/bin/chromium``; ``.ci/run`` installs
it), never from ``playwright install``.  Without it the tests skip, except in
CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ensemble.testing import ScratchPostgres

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
START_TIMEOUT_S = 120
DEMO_READY_TIMEOUT_S = 60


def chromium_path() -> str | None:
    for candidate in (os.environ.get("ENSEMBLE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _require_browser() -> str:
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("browser tests need Chromium and Playwright in CI (.ci/run installs them)")
        pytest.skip("Chromium or Playwright not installed (apt-get install chromium; pip install playwright)")
    return path


@dataclass
class DemoServer:
    url: str
    database_url: str
    data_dir: Path
    users: dict[str, dict[str, str]]  # role -> {"email", "password"}, one per role
    technicians: list[dict[str, str]]
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")[-4000:]

    def http(self, role: str = "owner") -> httpx.Client:
        """An httpx client logged in as the demo user with ``role`` (use it in ``with``)."""
        who = self.technicians[0] if role == "technician" else self.users[role]
        r = httpx.post(f"{self.url}/api/v1/auth/login", json={"email": who["email"], "password": who["password"]},
                       timeout=30)
        r.raise_for_status()
        token = r.json()["data"]["access_token"]
        return httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def _read_credentials(data_dir: Path) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    raw: Any = json.loads((data_dir / "demo-credentials.json").read_text())
    entries = raw["users"] if isinstance(raw, dict) and "users" in raw else raw
    if isinstance(entries, dict):
        entries = [{"role": role, **value} for role, value in entries.items()]
    by_role: dict[str, dict[str, str]] = {}
    technicians: list[dict[str, str]] = []
    for entry in entries:
        user = {"email": entry["email"], "password": entry["password"], "role": entry["role"],
                "name": entry.get("name", entry["email"])}
        by_role.setdefault(user["role"], user)
        if user["role"] == "technician":
            technicians.append(user)
    return by_role, technicians


@pytest.fixture(scope="package")
def demo_server(postgres: ScratchPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    _require_browser()
    database_url = postgres.create_migrated_database(prefix="ens_browser")
    data_dir = tmp_path_factory.mktemp("demo-server")
    port_file = data_dir / "port.json"
    env = {
        **os.environ,
        "ENSEMBLE_DATA_DIR": str(data_dir),
        "ENSEMBLE_DATABASE_URL": database_url,
        "ENSEMBLE_LOG_FORMAT": "json",
        "ENSEMBLE_ARGON2_TIME_COST": "1",
        "ENSEMBLE_ARGON2_MEMORY_KIB": "1024",
        "ENSEMBLE_ARGON2_PARALLELISM": "1",
        "ENSEMBLE_RATE_LIMIT_AUTH_PER_MINUTE": "100000",
        "ENSEMBLE_RATE_LIMIT_USER_PER_MINUTE": "100000",
        "ENSEMBLE_RATE_LIMIT_TENANT_PER_MINUTE": "100000",
    }
    env.pop("ANTHROPIC_API_KEY", None)  # the offline answerer, never the network
    with open(data_dir / "server.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ensemble.cli", "serve", "--demo", "--host", "127.0.0.1", "--port", "0",
             "--port-file", str(port_file)],
            env=env, stdout=log, stderr=log,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.exists() and (data_dir / "demo-credentials.json").exists()):
            if process.poll() is not None:
                raise AssertionError(f"demo server exited:\n{(data_dir / 'server.log').read_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"demo server not up in {START_TIMEOUT_S} s")
            time.sleep(0.1)
        url = json.loads(port_file.read_text())["url"]
        users, technicians = _read_credentials(data_dir)
        server = DemoServer(url=url, database_url=database_url, data_dir=data_dir, users=users, technicians=technicians, process=process)
        _wait_for_printers(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for_printers(server: DemoServer) -> None:
    """The demo is ready when its hub reported its three printers."""
    deadline = time.monotonic() + DEMO_READY_TIMEOUT_S
    with server.http("owner") as client:
        while True:
            printers = client.get("/api/v1/printers").json().get("data", [])
            if len(printers) >= 3:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"demo printers did not appear in {DEMO_READY_TIMEOUT_S} s:\n{server.log()}")
            time.sleep(0.25)


@pytest.fixture(scope="package")
def console_url(demo_server: DemoServer) -> str:
    return demo_server.url


@pytest.fixture(scope="package")
def demo_users(demo_server: DemoServer) -> dict[str, dict[str, str]]:
    return demo_server.users


@pytest.fixture(scope="package")
def browser(demo_server: DemoServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _require_browser()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser: Any, console_url: str) -> Iterator[Callable[..., Any]]:
    """Open browser contexts (separate storage: separate people); closed after the test.

    Console errors and uncaught page errors are collected on ``context.errors``.
    """
    contexts: list[Any] = []

    def open_context(*, width: int = 1280, height: int = 800) -> Any:
        # Reduced motion: progress bars jump to their value, so what a test
        # reads and what a screenshot shows is the settled page.
        context = browser.new_context(base_url=console_url, viewport={"width": width, "height": height},
                                      reduced_motion="reduce")
        context.set_default_timeout(15_000)
        context.errors = []
        context.on("page", lambda page: _watch(page, context.errors))
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


def _watch(page: Any, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)


@pytest.fixture
def page(new_context: Callable[..., Any]) -> Any:
    return new_context().new_page()


@pytest.fixture
def login(demo_server: DemoServer) -> Callable[..., Any]:
    """``login(page, "owner")`` (or a user dict): sign in through the form, land on the dashboard."""

    def sign_in(page: Any, who: str | dict[str, str] = "owner", *, technician: int = 0) -> dict[str, str]:
        if isinstance(who, str):
            user = demo_server.technicians[technician] if who == "technician" else demo_server.users[who]
        else:
            user = who
        page.goto("/#/login")
        page.get_by_label("Email").fill(user["email"])
        page.get_by_label("Password").fill(user["password"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_function("() => !location.hash.startsWith('#/login')")
        page.locator("#account-name").wait_for(state="visible")
        return user

    return sign_in


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """``screenshot(page, "dashboard")`` writes docs/screenshots/dashboard.png (linked from the README)."""

    def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 5_000, "an empty screenshot"
        return path

    return take
