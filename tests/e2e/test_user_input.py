"""User text in a real browser: a run named like an image never makes the browser fetch it, and shows
as typed; and a double-click on Start starts one run."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from core.presets import quick_digits
from core.store.runs import RunStore
from tests.e2e.conftest import StreamlitServer, record_run, wait_connected

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-user-input")]  # its module fixture: one worker


@pytest.fixture(scope="module")
def own_server(tmp_path_factory) -> Iterator[StreamlitServer]:
    """A server of this module's own, warm by the time of the double-click tests: on a server whose
    first page load competes with its training process's TensorFlow import, both clicks of a
    double-click were once lost (no run at all; noted, not fixed)."""
    base = tmp_path_factory.mktemp("e2e-user-input")
    srv = StreamlitServer(base / "runs", base / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()


class _Listener:
    """A local port that counts every connection made to it (an image fetch would be one)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


def _record(server: StreamlitServer, name: str) -> str:
    cfg = quick_digits()
    cfg.name = name
    cfg.fit.max_epochs = 3
    return record_run(server.runs_dir, cfg)


def _page_text(page: Page) -> str:
    # ui.text puts invisible word joiners (U+2060) into URLs so GFM does not autolink them.
    # Inputs (a selectbox shows its choice in one) have their text in their value.
    text = page.evaluate(
        "() => [document.body.innerText, ...[...document.querySelectorAll('input')].map(i => i.value)]"
        ".join('\\n')"
    )
    return text.replace("\u2060", "")


def _open(page: Page, url: str, heading: str) -> None:
    page.goto(url)
    wait_connected(page)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_an_image_markdown_run_name_is_never_fetched_and_shows_as_typed(own_server, page: Page, tmp_path):
    listener = _Listener()
    try:
        name = f"![x](http://127.0.0.1:{listener.port}/p.png) **bold** :red[x] $x^2$"
        a = _record(own_server, "will-be-renamed")
        b = _record(own_server, "the-other")
        RunStore(own_server.runs_dir).rename(a, name)  # as the Runs page's rename does
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))

        _open(page, f"{own_server.url}/Train?run={a}", "Train")
        expect(page.get_by_test_id("stMetric").filter(has_text="Epochs trained")).to_be_visible()
        assert name in _page_text(page), "the live view's header shows the name as typed"

        _open(page, f"{own_server.url}/Runs", "Runs")
        page.get_by_label("Select runs to act on", exact=True).click()
        page.get_by_role("option", name=f"({a[:6]})", exact=False).click()
        page.keyboard.press("Escape")
        wait_connected(page)
        expect(page.get_by_label("Rename", exact=True)).to_have_value(name)
        assert name in _page_text(page)

        _open(page, f"{own_server.url}/Compare?runs={a},{b}", "Compare runs")
        chart = page.locator(".js-plotly-plot").first
        expect(chart).to_be_visible(timeout=60_000)
        legend = chart.evaluate("gd => [...gd.querySelectorAll('.legendtext')].map(e => e.textContent)")
        assert f"{name} ({a[:6]})" in legend, legend  # Plotly shows the entities as the characters
        assert chart.locator("a, image").count() == 0
        assert f"{name} ({a[:6]})" in _page_text(page)  # the caption

        _open(page, f"{own_server.url}/What_if?run={a}", "What-if replay")
        expect(page.get_by_test_id("stMetric").filter(has_text="Stops at epoch")).to_be_visible()
        assert name in _page_text(page)  # the run picker

        assert page.locator("strong", has_text="bold").count() == 0  # **bold** stayed text
        assert page.locator(".katex").count() == 0  # $x^2$ stayed text
        time.sleep(1)  # any late fetch
        assert listener.connections == 0
        assert not [u for u in requests if f":{listener.port}/" in u], requests
    finally:
        listener.close()


def _start_button(page: Page):
    return page.get_by_role("button", name="Start training")


def _burst(page: Page, how: str) -> None:
    button = _start_button(page)
    expect(button).to_be_enabled()
    if how == "dblclick":
        button.dblclick()
    else:
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        for _ in range(3):
            page.mouse.click(x, y)
            page.wait_for_timeout(40)


def _wait_for_new_run(store: RunStore, before: set[str], seconds: float) -> set[str]:
    deadline = time.monotonic() + seconds
    while not set(store.ids()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    return set(store.ids()) - before


@pytest.mark.parametrize("how", ["dblclick", "three rapid clicks"])
def test_a_double_click_on_start_starts_one_run(own_server, page: Page, how):
    """A burst of clicks starts one run, never two.

    Known and not fixed (2026-12-07): on a loaded machine a whole burst was twice seen to start
    nothing (every click's callback lost, the page left on /Train with Start enabled), which a user
    answers by clicking again. This test is about the second run, so it clicks again once, as the user
    would, and says so in its output; a second lost burst still fails it.
    """
    store = RunStore(own_server.runs_dir)
    before = set(store.ids())
    _open(page, f"{own_server.url}/Train", "Train")
    _burst(page, how)
    if not _wait_for_new_run(store, before, 30):
        print(f"\n{how}: the burst started no run (all its clicks lost); clicking again")
        wait_connected(page)
        _burst(page, how)
        assert _wait_for_new_run(store, before, 30), "no run started, after two bursts"
    expect(page).to_have_url(re.compile(r"[?&]run=[0-9a-f]{32}"))
    wait_connected(page)
    page.wait_for_timeout(1500)  # a second run would be recorded by now
    wait_connected(page)
    new = set(store.ids()) - before
    assert len(new) == 1, f"{len(new)} runs started"  # (a digits run: it ends on its own in seconds)
