"""Browser tests: a real web server (gunicorn, DEBUG off, WhiteNoise) and a real qcluster on the test
database, driven by Debian's Chromium through Playwright."""

import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection, connections

from tests.support import ROOT, Process, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
PASSWORD = "pw-browser-123"
# Two shared cores and other suites running: be patient with the browser.
TIMEOUT_MS = 60_000


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    def __init__(self, tmp_path, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            [sys.executable, "-m", "gunicorn", "jobsite.wsgi", "-c", str(ROOT / "gunicorn.conf.py"),
             "-b", f"127.0.0.1:{self.port}"],
            Path(tmp_path) / "web.log", WEB_CONCURRENCY=1, WEB_THREADS=8, DEBUG=0, **env,
        )
        wait_until(self._up, timeout=60, interval=0.25, message=f"the web server; log:\n{self.output()}")

    def _up(self):
        if self.process.proc.poll() is not None:
            raise AssertionError(f"the web server exited; log:\n{self.output()}")
        try:
            with urllib.request.urlopen(self.url + "/login/", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def output(self):
        return self.process.output()

    def stop(self):
        self.process.stop()


@pytest.fixture
def web(transactional_db, tmp_path):
    """Starts the web server (extra environment as keyword arguments); stopped after the test."""
    started = []

    def start(**env):
        server = WebServer(tmp_path, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    if started:
        wait_for_other_sessions_to_close()


def wait_for_other_sessions_to_close(timeout=15):
    """PostgreSQL drops a killed server's sessions a moment later; dropping the test database before that
    fails. SQLite has no sessions to wait for."""
    if connection.vendor != "postgresql":
        return

    def others():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    wait_until(lambda: others() == 0, timeout=timeout, interval=0.2, message="the web server's sessions to close")


@pytest.fixture
def browser_user(django_user_model, settings):
    # The server process checks passwords with the project's hashers, not the tests' fast MD5 one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return django_user_model.objects.create_user("pat", password=PASSWORD)


@pytest.fixture
def browser(monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread. The ORM calls the tests make
    # between browser steps are ordinary synchronous code and safe; but while that loop runs, Django keeps
    # its connections per context rather than per thread, so they are other connections than the test's
    # own and must be closed here (PostgreSQL will not drop a test database that still has sessions).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        connections.close_all()
        browser.close()


@pytest.fixture
def new_page(browser):
    """new_page(base_url, width=1280, height=900): a page with generous timeouts; JS errors fail the test."""
    pages = []

    def make(base_url, width=1280, height=900):
        context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda error: page.js_errors.append(str(error)))
        pages.append(page)
        return page

    yield make
    errors = [error for page in pages for error in page.js_errors]
    for page in pages:
        page.context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


def log_in(page, username, password=PASSWORD, next_path="/"):
    """Through the login page, as a person would."""
    page.goto(next_path)
    page.wait_for_url("**/login/**")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
