"""The Train page in a real browser against a real server: deep links, settings, live curves, stop,
download, reload/shared link, and screenshots for the docs (the epoch-to-browser delay is measured by
bench/epoch_to_browser_delay.py).

Every run here is the offline digits MLP (seconds per run). Runs train one at a time on the server,
so each test waits for its run to end before it returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from ui.nav import APP

from .conftest import CONNECTED, ROOT, VIEWPORT, choose, new_context, run_id_of, set_number, wait_connected
from .conftest import early_stopping_off as switch_early_stopping_off

pytestmark = pytest.mark.e2e

SCREENSHOTS = os.environ.get("ESLAB_SCREENSHOTS") == "1"
RUN_URL = re.compile(r"[?&]run=[0-9a-f]{32}(&|$)")
LIVE = ("queued", "running", "stopping")
ENDED = "Epochs trained"  # the first metric of a run's summary, drawn once the run has ended
STATUSES = r"(queued|running|stopping|finished|stopped by user|failed|interrupted)"

START_TIMEOUT = 30_000  # click -> ?run=<id> in the URL
FIRST_EPOCH_TIMEOUT = 60_000  # includes the server's first TensorFlow import
RUN_TIMEOUT = 120_000  # a digits run from start to summary

# Number of points of one trace of the loss chart. Streamlit 1.67 remounts a Plotly chart whose figure
# changed (its element id hashes the spec), so for a moment the old (stale) and the new chart are
# both in the page, or neither is: take the largest count over the loss charts present, -1 if none.
# Plotly keeps numpy series as typed-array specs ({dtype, bdata}) in gd.data; count those too.
_POINTS_JS = """
(name) => {
  const sizes = {i1: 1, u1: 1, u1c: 1, i2: 2, u2: 2, i4: 4, u4: 4, f4: 4, f8: 8};
  const count = (x) => {
    if (x == null) return 0;
    if (typeof x.length === 'number') return x.length;
    if (x._inputArray && typeof x._inputArray.length === 'number') return x._inputArray.length;
    if (typeof x.bdata === 'string') {
      if (x.shape !== undefined) return Number(String(x.shape).split(',')[0]);
      return atob(x.bdata).length / (sizes[x.dtype] || 8);
    }
    return 0;
  };
  let best = -1;
  // The live charts sit in same-origin component iframes (ui/live_chart); other charts do not.
  const docs = [document];
  for (const frame of document.querySelectorAll('iframe')) {
    try { if (frame.contentDocument) docs.push(frame.contentDocument); } catch (e) { /* cross-origin */ }
  }
  const plots = docs.flatMap((doc) => Array.from(doc.querySelectorAll('.js-plotly-plot')));
  for (const gd of plots) {
    const title = gd.layout && gd.layout.title;
    const text = String((title && (title.text !== undefined ? title.text : title)) || '');
    if (text.replace(/<[^>]*>/g, '').trim() !== 'Loss') continue;
    const trace = (gd.data || []).find((t) => t.name === name);
    best = Math.max(best, trace ? count(trace.x) : 0);
  }
  return [best, Date.now()];
}
"""


# ------------------------------------------------------------------------------------------------
# Helpers


_LOSS_CHART_IN_VIEW_JS = """() => {
  const frame = [...document.querySelectorAll('iframe')].find((f) => {
    try {
      return f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
    } catch (e) {
      return false;
    }
  });
  if (!frame) return false;
  const box = frame.getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}"""


def loss_points(page: Page, trace: str = "validation") -> int:
    """Points of ``trace`` in the loss chart now (-1: no loss chart on the page)."""
    return page.evaluate(_POINTS_JS, trace)[0]


def wait_loss_points(page: Page, server, run_id: str, at_least: int, timeout: float) -> int:
    """Waits for ``at_least`` validation points in the loss chart; on timeout, fails with the run log."""
    # Also returns early when the run ended (its summary appeared), e.g. a run that failed.
    condition = f"(n) => ({_POINTS_JS})('validation')[0] >= n || document.body.innerText.includes('{ENDED}')"
    try:
        page.wait_for_function(condition, arg=at_least, timeout=timeout, polling=50).dispose()
    except PlaywrightTimeoutError:
        pass
    points = loss_points(page)
    if points < at_least:
        pytest.fail(
            f"the loss chart did not reach {at_least} validation point(s) within {timeout / 1000:.0f} s "
            f"(it shows {points}). The run's log:\n{run_log(server, run_id)}",
            pytrace=False,
        )
    return points


def run_log(server, run_id: str, lines: int = 15) -> str:
    try:
        text = (server.runs_dir / run_id / "log.txt").read_text(errors="replace")
    except OSError:
        return "(no log.txt yet)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def open_train(page: Page, url: str) -> None:
    page.goto(url)
    wait_connected(page)
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


def early_stopping_off(page: Page) -> None:
    switch_early_stopping_off(page)
    expect(patience_slider(page)).to_have_count(0)


def patience_slider(page: Page):
    return page.get_by_test_id("stSlider").filter(has=page.get_by_text("Patience", exact=True))


_started: list[str] = []  # runs started by the current test


def start_run(page: Page) -> str:
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(RUN_URL, timeout=START_TIMEOUT)
    run_id = run_id_of(page.url)
    assert run_id and re.fullmatch(r"[0-9a-f]{32}", run_id), page.url
    _started.append(run_id)
    return run_id


def run_status(server, run_id: str) -> str | None:
    """The run's status in the store's index (read-only), None if not there (yet)."""
    db = server.runs_dir / "runs.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
        row = con.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


@pytest.fixture(autouse=True)
def _stop_leftover_runs(request):
    """After a test, stops the runs it left live (a failed test), so the next test's run is not
    queued behind them (the server trains one run at a time)."""
    _started.clear()
    yield
    if "server" not in request.fixturenames or not _started:
        return
    server, browser = request.getfixturevalue("server"), request.getfixturevalue("browser")
    live = [rid for rid in _started if run_status(server, rid) in LIVE]
    if not live:
        return
    context = new_context(browser)
    try:
        pg = context.new_page()
        for rid in live:
            pg.goto(f"{server.url}/Train?run={rid}")
            pg.wait_for_selector(CONNECTED, state="attached", timeout=30_000)
            try:
                pg.get_by_role("button", name="Stop", exact=True).click(timeout=30_000)
            except PlaywrightTimeoutError:
                pass
            deadline = time.monotonic() + 60
            while run_status(server, rid) in LIVE and time.monotonic() < deadline:
                time.sleep(0.2)
            print(f"\nleftover run {rid}: stopped after the test, now {run_status(server, rid)}")
    finally:
        context.close()


def run_header(page: Page, run_id: str):
    """The live view's first line: '<name> · <status> · <id[:8]>'."""
    return page.get_by_test_id("stMarkdownContainer").filter(has=page.locator("code", has_text=run_id[:8]))


def expect_run_shown(page: Page, run_id: str, name: str, timeout: float = 30_000) -> str:
    header = run_header(page, run_id)
    expect(header).to_have_text(
        re.compile(rf"^{re.escape(name)} · {STATUSES} · {run_id[:8]}$"), timeout=timeout
    )
    return header.inner_text()


def wait_summary(page: Page, server, run_id: str, timeout: float = RUN_TIMEOUT) -> None:
    """The run ended and its summary is drawn; a failed or slow run fails the test with its log."""
    try:
        expect(page.get_by_text(ENDED, exact=True)).to_be_visible(timeout=timeout)
    except AssertionError:
        pytest.fail(
            f"no summary within {timeout / 1000:.0f} s. The run's log:\n{run_log(server, run_id)}",
            pytrace=False,
        )
    header = run_header(page, run_id).inner_text()
    if " · failed · " in header:
        alerts = page.get_by_test_id("stAlert").all_inner_texts()
        pytest.fail(f"the run failed: {header!r}; alerts: {alerts}\n{run_log(server, run_id)}", pytrace=False)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def metric_value(page: Page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
    return metric.get_by_test_id("stMetricValue").inner_text().strip()


def screenshot(page: Page, run_id: str, name: str) -> None:
    """docs/<name>: the live view at the top of the viewport (only with ESLAB_SCREENSHOTS=1)."""
    if not SCREENSHOTS:
        return
    page.mouse.move(VIEWPORT["width"] - 5, VIEWPORT["height"] - 5)  # no tooltip left open by a hover
    page.wait_for_function(  # every live chart has drawn its figure
        "() => { const fs = [...document.querySelectorAll('iframe')]; return fs.length > 0 && fs.every(f =>"
        " f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot[data-points]')); }",
        timeout=30_000,
    )
    run_header(page, run_id).evaluate("el => el.scrollIntoView({block: 'start'})")
    out = ROOT / "docs" / name
    out.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(out))
    print(f"saved {out}")


# ------------------------------------------------------------------------------------------------
# Tests


def _pages() -> list[tuple[str, str, str]]:
    """(URL path, st.title text, page_title) of app.py and of every pages/*.py, read from the sources."""
    out = []
    for file in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        source = file.read_text()
        title = re.search(r"""st\.title\(\s*(["'])(.+?)\1""", source)
        setup = re.search(r"""page_setup\(\s*(?:(["'])(.+?)\1)?\s*\)""", source)
        assert setup, f"{file.name} does not call ui.nav.page_setup"
        page_title = f"{setup.group(2)} · {APP}" if setup.group(2) else APP
        # Streamlit's page name: the file name without its leading number and separators.
        path = "/" if file.name == "app.py" else "/" + re.sub(r"^[0-9]*[_ -]*", "", file.stem)
        out.append((path, title.group(2) if title else "", page_title))
    return out


PAGES = _pages()


@pytest.mark.parametrize(("path", "title", "page_title"), PAGES, ids=[p for p, _, _ in PAGES])
def test_deep_link_on_fresh_server(
    fresh_server_no_worker, page: Page, path: str, title: str, page_title: str
) -> None:
    page.goto(fresh_server_no_worker.url + path)
    wait_connected(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    if title:
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    else:
        expect(page.locator("h1").first).to_be_visible()
    if page_title:
        expect(page).to_have_title(page_title)
    # Every page is in the navigation whichever was opened first, the home page as "Home".
    links = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")
    expect(links).to_have_count(len(PAGES))
    expect(links.first).to_have_text(re.compile(r"Home$"))
    if path != "/":
        expect(page).to_have_url(re.compile(re.escape(path) + r"/?$"))


def test_patience_slider_start_and_live_curve(server, page: Page) -> None:
    open_train(page, server.url + "/Train")

    slider = patience_slider(page)
    thumb = slider.get_by_role("slider")
    shown = slider.get_by_test_id("stSliderThumbValue")
    expect(shown).to_have_text("5")  # the quick digits preset
    thumb.focus()
    page.keyboard.press("Home")
    expect(shown).to_have_text("0")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(shown).to_have_text("4")
    page.keyboard.press("ArrowLeft")
    expect(shown).to_have_text("3")
    expect(thumb).to_have_attribute("aria-valuetext", "3")
    wait_connected(page)

    run_id = start_run(page)
    config = json.loads((server.runs_dir / run_id / "config.json").read_text())
    assert config["early_stopping"]["patience"] == 3
    expect_run_shown(page, run_id, "digits-mlp")
    # The live charts start below the form at 1400x1000: the page brings them into view.
    page.wait_for_function(_LOSS_CHART_IN_VIEW_JS, timeout=30_000)

    first = wait_loss_points(page, server, run_id, 1, FIRST_EPOCH_TIMEOUT)
    later = wait_loss_points(page, server, run_id, first + 1, RUN_TIMEOUT)
    assert later > first, (first, later)
    if SCREENSHOTS:
        try:
            wait_loss_points(page, server, run_id, 4, 30_000)
        except pytest.fail.Exception:  # a shorter run still gives a (less telling) picture
            pass
        screenshot(page, run_id, "train-live.png")

    wait_summary(page, server, run_id)
    epochs = int(metric_value(page, "Epochs trained"))
    assert epochs >= 4  # patience 3: at least one epoch, then three without improvement
    # The final chart holds every epoch (polled: the chart may be remounting right now).
    page.wait_for_function(f"(n) => ({_POINTS_JS})('validation')[0] === n", arg=epochs, timeout=10_000)
    expect(page.get_by_test_id("stAlert").filter(has_text="Early stopping at epoch")).to_be_visible()
    screenshot(page, run_id, "train-finished.png")


def test_stop_button(server, page: Page) -> None:
    open_train(page, server.url + "/Train")
    page.get_by_role("button", name="Load preset").click()
    wait_connected(page)
    early_stopping_off(page)
    set_number(page, "Max epochs", 1000)

    run_id = start_run(page)
    wait_loss_points(page, server, run_id, 2, FIRST_EPOCH_TIMEOUT)
    page.get_by_role("button", name="Stop", exact=True).click()

    header = expect_run_shown(page, run_id, "digits-mlp")
    expect(run_header(page, run_id)).to_contain_text(" · stopped by user · ", timeout=RUN_TIMEOUT)
    wait_summary(page, server, run_id)
    expect(page.get_by_test_id("stAlert").filter(has_text="Stopped by user after")).to_be_visible()
    epochs = int(metric_value(page, "Epochs trained"))
    assert 2 <= epochs < 1000, (epochs, header)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_have_count(0)


def test_download_best_checkpoint(server, page: Page, tmp_path: Path) -> None:
    open_train(page, server.url + "/Train")
    set_number(page, "Max epochs", 6)
    run_id = start_run(page)
    wait_summary(page, server, run_id)

    button = page.get_by_role("button", name="Best checkpoint")
    expect(button).to_be_visible()
    with page.expect_download(timeout=30_000) as info:
        button.click()
    download = info.value
    assert download.failure() is None
    name = download.suggested_filename
    assert name.endswith(".keras") and "best-epoch" in name, name
    path = tmp_path / name
    download.save_as(path)
    assert path.stat().st_size > 0

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    model = keras.models.load_model(path)
    pred = model.predict(np.zeros((1, 64), dtype="float32"), verbose=0)
    assert pred.shape == (1, 10)
    assert np.isfinite(pred).all()


def test_reload_and_shared_link_reattach(server, browser, page: Page) -> None:
    name = f"reattach-{os.getpid()}-{int(time.time())}"
    open_train(page, server.url + "/Train")
    run_name = page.get_by_role("textbox", name="Run name", exact=True)
    run_name.fill(name)
    run_name.press("Enter")
    expect(run_name).to_have_value(name)
    set_number(page, "Max epochs", 15)
    run_id = start_run(page)
    expect_run_shown(page, run_id, name)

    page.reload()
    wait_connected(page)
    assert run_id_of(page.url) == run_id
    expect_run_shown(page, run_id, name)

    shared = new_context(browser)
    try:
        other = shared.new_page()
        other.goto(f"{server.url}/Train?run={run_id}")
        wait_connected(other)
        expect_run_shown(other, run_id, name)
        wait_summary(other, server, run_id)
        expect_run_shown(other, run_id, name)
    finally:
        shared.close()
    wait_summary(page, server, run_id)


_CHART_ANNOTATIONS_JS = """() => {
  const texts = [];
  for (const frame of document.querySelectorAll('iframe')) {
    let doc = null;
    try { doc = frame.contentDocument; } catch (e) { continue; }
    if (!doc) continue;
    for (const gd of doc.querySelectorAll('.js-plotly-plot')) {
      for (const a of ((gd.layout || {}).annotations || [])) texts.push(String(a.text || ''));
    }
  }
  return texts;
}"""


def test_a_stopping_rule_chosen_in_the_browser_stops_the_run_and_marks_the_chart(server, page: Page) -> None:
    open_train(page, server.url + "/Train")
    page.get_by_role("button", name="Load preset").click()
    wait_connected(page)
    choose(page, "Rules beyond EarlyStopping", "Target reached")
    expect(page.get_by_text("They watch EarlyStopping's monitor, val_loss (lower is better)")).to_be_visible()
    set_number(page, "Target value", 0.3)

    run_id = start_run(page)
    config = json.loads((server.runs_dir / run_id / "config.json").read_text())
    assert config["stopping_rules"] == [
        {"name": "stopping_threshold", "params": {"value": 0.3}, "monitors": []}
    ]
    wait_summary(page, server, run_id)
    epochs = int(metric_value(page, "Epochs trained"))
    history = [
        json.loads(line) for line in (server.runs_dir / run_id / "history.jsonl").read_text().splitlines()
    ]
    first = next(i for i, r in enumerate(history) if r["logs"]["val_loss"] < 0.3)
    assert epochs == first + 1 == len(history)
    expect(
        page.get_by_test_id("stAlert").filter(
            has_text=f"Target 0.3 stopped the run at epoch {epochs}: the value"
        )
    ).to_be_visible()
    page.wait_for_function(f"() => ({_CHART_ANNOTATIONS_JS})().includes('Target 0.3 stop')", timeout=20_000)
    screenshot(page, run_id, "train-stopping-rule.png")
