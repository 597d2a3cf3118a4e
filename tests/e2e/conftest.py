"""Browser tests: a real ``streamlit run app.py`` server driven by Debian's chromium through Playwright.

Fixtures
- ``server`` (session): one server for the whole session, with its own runs folder.
- ``fresh_server`` (function): a server started just for one test (deep links on a fresh process);
  ``fresh_server_no_worker`` for a test that trains nothing.
- ``browser`` (session): /usr/bin/chromium, headless. Missing chromium fails the tests, loudly.
- ``page`` (function): a new browser context (new Streamlit session), downloads accepted.

Waiting is done with Playwright's auto-waiting ``expect`` and bounded polling, never fixed sleeps.
The launch flags follow docs/keras-streamlit-facts.md (the way Streamlit's own e2e_playwright suite runs).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
# Playwright's default 5 s per expectation is too short on a busy 2-core CI machine, where a page that
# loads plotly.js for the first time can take longer than that to draw its first chart.
expect.set_options(timeout=20_000)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HEALTH_TIMEOUT_S = 60
VIEWPORT = {"width": 1400, "height": 1000}

CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
STATUS_WIDGET = "[data-testid='stStatusWidget']"
RUN_ID_RE = re.compile(r"[?&]run=([0-9a-f]{32})(?:&|$)")


# ------------------------------------------------------------------------------------------------
# The server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """``streamlit run app.py`` in a subprocess, with its own runs folder and log file."""

    def __init__(self, runs_dir: Path, log_path: Path, *, config_only: bool = False, cwd: Path = ROOT):
        """``config_only``: no command-line overrides, so .streamlit/config.toml alone decides the
        address and usage statistics, as with ``make run``. ``cwd``: the checkout whose app runs
        (a benchmark compares this one with an earlier commit's)."""
        self.cwd = cwd
        self.runs_dir = runs_dir
        self.config_only = config_only
        self.log_path = log_path
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.cmd: list[str] = []
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StreamlitServer:
        self.launch()
        self.wait_healthy()
        return self

    def launch(self) -> StreamlitServer:
        """Starts the process without waiting for it to answer."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        env = dict(os.environ, ESLAB_RUNS_DIR=str(self.runs_dir), TF_CPP_MIN_LOG_LEVEL="2")
        self.cmd = cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(self.port),
            "--server.fileWatcherType",
            "none",
        ]
        if not self.config_only:
            cmd += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"\n==== start port {self.port} at {time.ctime()}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if (code := self.proc.poll()) is not None:
                self.stop()
                raise RuntimeError(
                    f"streamlit exited with code {code} before it was healthy:\n" + self.log_tail()
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    body = resp.read().decode(errors="replace").strip()
                if body == "ok":
                    return
                last_error = f"health said {body!r}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last_error = repr(exc)
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"streamlit not healthy after {HEALTH_TIMEOUT_S} s ({last_error}):\n" + self.log_tail()
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> StreamlitServer:
        """A new process on a new port, same runs folder (runs that were live become interrupted)."""
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def _serve(tmp_path_factory, name: str) -> Iterator[StreamlitServer]:
    base = tmp_path_factory.mktemp(name)
    srv = StreamlitServer(base / "runs", base / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[StreamlitServer]:
    yield from _serve(tmp_path_factory, "e2e-server")


@pytest.fixture
def fresh_server(tmp_path_factory) -> Iterator[StreamlitServer]:
    """A server started just for one test (deep links on a fresh process, kill -9 and restart)."""
    yield from _serve(tmp_path_factory, "e2e-fresh-server")


@pytest.fixture
def fresh_server_no_worker(monkeypatch, request) -> StreamlitServer:
    """A fresh server for a test that trains nothing: ``ESLAB_TRAIN_IN=thread``, so the pages do not
    start a training process in the background (its TensorFlow import and warm-up fit cost ~6 s of
    CPU, for nothing here). What a page draws is the same in both modes."""
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")
    return request.getfixturevalue("fresh_server")


# ------------------------------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install chromium). "
            "Playwright's own browser downloads are not used.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


def new_context(browser):
    return browser.new_context(accept_downloads=True, viewport=VIEWPORT)


@pytest.fixture
def page(browser, request, tmp_path_factory):
    context = new_context(browser)
    pg = context.new_page()
    try:
        yield pg
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            shot = tmp_path_factory.mktemp("e2e-failure") / "page.png"
            try:
                pg.screenshot(path=str(shot))
                print(f"\nscreenshot of the failing page: {shot}\nURL: {pg.url}")
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                print(f"\n(no screenshot: {exc})")
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


# ------------------------------------------------------------------------------------------------
# Helpers shared by the tests


def wait_connected(page, timeout: float = 60_000) -> None:
    """Connected to the server, and no script run in progress (the app is idle)."""
    page.wait_for_selector(CONNECTED, state="attached", timeout=timeout)
    page.wait_for_selector(IDLE, state="attached", timeout=timeout)
    page.wait_for_selector(STATUS_WIDGET, state="hidden", timeout=timeout)


def record_run(runs_dir: Path, cfg) -> str:
    """Trains ``cfg`` into a server's runs folder from the test process, as another process of the
    user's would (``python -m core train`` does the same through the same Trainer; tests/engine covers
    the command itself). In this process: no second TensorFlow import (~4.7 s of CPU) per run."""
    from core.engine.queue import Trainer
    from core.store.runs import FINISHED, RunStore

    trainer = Trainer(RunStore(runs_dir), train_in="thread")
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED, snap.message
    return snap.id


def run_id_of(url: str) -> str | None:
    ids = parse_qs(urlparse(url).query).get("run")
    return ids[0] if ids else None


def set_number(page, label: str, value: int) -> None:
    """Types into a number input and waits until the app has taken the value."""
    box = page.get_by_role("spinbutton", name=label, exact=True)
    for _ in range(2):
        # Under load a rerun already in flight (an upload's) can redraw the box with the value it had
        # (seen in CI: "2" typed, "200" shown): the user would type again, and so does this.
        box.fill(str(value))
        box.press("Enter")
        wait_connected(page)
        if box.input_value() == str(value):
            break
    expect(box).to_have_value(str(value))
    wait_connected(page)


def choose(page, label: str, option: str) -> None:
    """Picks ``option`` in the selectbox or multiselect labelled ``label``; opens the list again if a
    rerun redrew the widget and closed it (seen under load), and closes a multiselect's list after."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    wait_connected(page)
    box, choice = page.get_by_label(label, exact=True), page.get_by_role("option", name=option)
    for attempt in range(3):
        box.click()
        try:
            choice.click(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            wait_connected(page)
            if attempt == 2:
                raise
    page.keyboard.press("Escape")  # a multiselect keeps its list open; a closed selectbox ignores it
    wait_connected(page)


def early_stopping_off(page) -> None:
    page.get_by_text("Use EarlyStopping", exact=True).click()
    expect(page.get_by_text("Off: training runs to max epochs unless you stop it.")).to_be_visible()
    wait_connected(page)
