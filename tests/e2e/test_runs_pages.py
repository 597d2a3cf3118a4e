"""Runs, Compare and What-if in a real browser, on runs trained into the server's store from outside it."""

from __future__ import annotations

import json
import os
import re
import urllib.request

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from core.presets import quick_digits
from core.stopping import replay
from core.store.runs import RunStore
from tests.e2e.conftest import choose, early_stopping_off, record_run, run_id_of, set_number, wait_connected

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-runs-pages")]  # its module fixture: one worker


def _record(server, name: str, patience: int | None, epochs: int) -> str:
    """A digits run trained into the server's store from outside the server (``record_run``)."""
    cfg = quick_digits()
    cfg.name = name
    cfg.fit.max_epochs = epochs
    cfg.fit.learning_rate = 0.01
    cfg.early_stopping.enabled = patience is not None
    cfg.early_stopping.patience = patience or 0
    return record_run(server.runs_dir, cfg)


@pytest.fixture(scope="module")
def recorded(server) -> dict[str, str]:
    return {"curve": _record(server, "e2e-curve", None, 30), "eager": _record(server, "e2e-eager", 1, 30)}


def _open(page: Page, url: str, heading: str) -> None:
    page.goto(url)
    wait_connected(page)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_runs_page_lists_renames_and_compares(server, page: Page, recorded):
    _open(page, f"{server.url}/Runs", "Runs")
    grid = page.get_by_test_id("stDataFrame")
    expect(grid).to_be_visible()
    # The grid draws on a canvas; the selection widget below it lists every run by name.
    choose(page, "Select runs to act on", f"e2e-eager ({recorded['eager'][:6]})")
    box = page.get_by_label("Rename", exact=True)
    box.fill("e2e-eager-renamed")
    box.press("Enter")
    page.get_by_role("button", name="Save name").click()
    wait_connected(page)
    expect(page.get_by_text("Renamed to e2e-eager-renamed.")).to_be_visible()
    assert RunStore(server.runs_dir).load(recorded["eager"]).config.name == "e2e-eager-renamed"

    choose(page, "Select runs to act on", f"e2e-curve ({recorded['curve'][:6]})")
    choose(page, "Select runs to act on", f"e2e-eager-renamed ({recorded['eager'][:6]})")
    page.get_by_role("button", name="Compare").click()
    wait_connected(page)
    expect(page.get_by_role("heading", name="Compare runs", exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/Compare\?runs="))
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible(timeout=60_000)
    names = chart.evaluate("gd => gd.data.map(t => t.name)")
    assert any(n.startswith("e2e-curve (") for n in names) and any(
        n.startswith("e2e-eager-renamed (") for n in names
    )
    expect(page.get_by_text("Highlighted rows differ between the runs.", exact=False)).to_be_visible()


# The "stops at N" label of the What-if chart, or null. Streamlit remounts a Plotly chart whose figure
# changed, so for a moment the element is there before Plotly has drawn it (no gd.layout yet): that
# counts as no label, and the wait below reads again (CI once read it in that moment and failed).
_STOP_LABEL_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const texts = ((gd && gd.layout && gd.layout.annotations) || []).map(a => a.text);
  return texts.find(t => t.startsWith('stops at')) || null;
}"""


def wait_stop_label(page: Page, want: str | None) -> None:
    """Waits until the chart's label is ``want`` (None: no label); on timeout, says what it showed."""
    try:
        page.wait_for_function(f"([want]) => ({_STOP_LABEL_JS})() === want", arg=[want], timeout=30_000)
    except PlaywrightTimeoutError:
        pytest.fail(
            f"the chart's label stayed {page.evaluate(_STOP_LABEL_JS)!r}, not {want!r}", pytrace=False
        )


def test_whatif_slider_moves_the_stop_epoch(server, page: Page, recorded):
    rid = recorded["curve"]
    _open(page, f"{server.url}/What_if?run={rid}", "What-if replay")
    history = RunStore(server.runs_dir).load(rid).history
    values = [r.logs["val_loss"] for r in history]

    slider = page.get_by_test_id("stSlider").filter(has=page.get_by_text("Patience", exact=True)).first
    thumb = slider.get_by_role("slider")
    thumb.focus()
    thumb.press("Home")  # patience 0
    wait_connected(page)
    for _ in range(2):
        thumb.press("ArrowRight")
    wait_connected(page)
    expect(thumb).to_have_value("2")
    first = replay.replay_early_stopping(values, mode="min", patience=2)
    assert first.stopped
    expect(page.get_by_test_id("stMetric").filter(has_text="Stops at epoch")).to_contain_text(
        str(first.stopped_epoch + 1)
    )
    wait_stop_label(page, f"stops at {first.stopped_epoch + 1}")

    for _ in range(4):
        thumb.press("ArrowRight")
    wait_connected(page)
    expect(thumb).to_have_value("6")
    later = replay.replay_early_stopping(values, mode="min", patience=6)
    expected = f"stops at {later.stopped_epoch + 1}" if later.stopped else None
    wait_stop_label(page, expected)
    assert later.stopped_epoch != first.stopped_epoch
    print(json.dumps({"patience 2": first.stopped_epoch + 1, "patience 6": later.stopped_epoch + 1}))


_VAL_POINTS_JS = """() => {
  for (const f of document.querySelectorAll('iframe')) {
    const gd = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
    if (gd && gd.dataset.points && gd._fullData) {  // drawn: the validation trace, found by its name
      const val = gd._fullData.find((t) => t.name === 'validation');
      return val && val.x ? val.x.length : 0;
    }
  }
  return -1;
}"""


def test_config_json_import_and_zoom_kept_across_ticks(server, page: Page, tmp_path):
    """Import a config JSON on the Train page, start it, zoom the live chart: the zoom survives ticks."""
    cfg = quick_digits()
    cfg.name = "e2e-imported"
    cfg.fit.max_epochs = 60
    cfg.fit.batch_size = 8  # slow enough epochs to watch several ticks
    cfg.early_stopping.enabled = False
    path = tmp_path / "imported.json"
    path.write_text(cfg.to_json())
    _open(page, f"{server.url}/Train", "Train")
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    wait_connected(page)
    expect(page.get_by_text("Loaded the config.")).to_be_visible()
    expect(page.get_by_label("Max epochs", exact=True)).to_have_value("60")
    expect(page.get_by_label("Run name", exact=True)).to_have_value("e2e-imported")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)

    frame = page.frame_locator("iframe[title='ui.live_chart.live_chart']").first
    chart = frame.locator(".js-plotly-plot").first  # the loss chart; the accuracy chart is beside it
    val_points = _VAL_POINTS_JS  # the loss chart's validation series, as drawn in its iframe
    page.wait_for_function(f"() => ({val_points})() >= 3", timeout=120_000)
    chart.evaluate("gd => Plotly.relayout(gd, {'xaxis.range': [1, 2.5]})")
    points_before = page.evaluate(val_points)
    page.wait_for_function(f"(n) => ({val_points})() > n", arg=points_before, timeout=120_000)
    assert chart.evaluate("gd => gd.layout.xaxis.range") == [1, 2.5]  # new points arrived, zoom kept
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=60_000)


def _upload_csv(page: Page, path) -> None:
    """Picks the CSV dataset and uploads ``path`` through the sidebar's file uploader."""
    choose(page, "Dataset", "Your CSV (table)")
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(1).set_input_files(str(path))
    wait_connected(page)


def test_csv_upload_preview_target_and_training(server, page: Page, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 3))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    path = tmp_path / "mydata.csv"
    lines = ["a,b,c,label"] + [f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{t}" for r, t in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    _open(page, f"{server.url}/Train", "Train")
    _upload_csv(page, path)
    expect(page.get_by_text("mydata.csv: 240 rows, 4 columns")).to_be_visible()
    expect(page.get_by_label("Target column", exact=True)).to_be_visible()
    set_max_epochs = page.get_by_label("Max epochs", exact=True)
    set_max_epochs.fill("5")
    set_max_epochs.press("Enter")
    wait_connected(page)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)
    expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_be_visible()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"a,b,label\n", "no data rows"),
        (b"a,b,label\n1,x,0\n2,y,1\n" * 10, "not numeric"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "not a CSV text file"),
        (b"a,b,label\n1,2,0\n", "only 1 data rows; at least 10 are needed"),
        (
            b"a,b,label\n"
            + b"".join(f"{i},{'nan' if i % 5 == 0 else i},{i % 2}\n".encode() for i in range(40)),
            "Empty cells in 'b' (8 cells, first on data row 1)",
        ),
        (
            b"a,b,label\n"
            + b"".join(f"{i},{'inf' if i % 7 == 0 else i},{i % 2}\n".encode() for i in range(40)),
            "numbers too large for a 64-bit float (beyond ±1.8e308), in 'b' (6 cells",
        ),
        (
            b"a,b,label\n" + b"".join(f"{i},{i * 2},1\n".encode() for i in range(40)),
            "has only one value ('1'): there is nothing to learn",
        ),
        (
            "a,b,caf\xe9\n".encode("latin-1")
            + b"".join(f"{i},{i * 2},{i % 2}\n".encode() for i in range(40)),
            "not UTF-8 text (byte 0xE9 on line 1",
        ),
    ],
    ids=[
        "empty",
        "header-only",
        "text-feature",
        "binary",
        "one-row",
        "nan-cells",
        "inf-cells",
        "single-class",
        "latin-1",
    ],
)
def test_bad_csv_uploads_explain_themselves_and_block_start(server, page: Page, tmp_path, content, message):
    runs_before = RunStore(server.runs_dir).ids()
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    _open(page, f"{server.url}/Train", "Train")
    _upload_csv(page, path)
    alerts = page.get_by_test_id("stAlert")
    expect(alerts.filter(has_text=re.compile(re.escape(message), re.IGNORECASE)).first).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # The server is still up, and no earlier run was touched.
    with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=10) as resp:
        assert resp.read() == b"ok"
    assert RunStore(server.runs_dir).ids() == runs_before


def test_sklearns_raw_wine_csv_trains_on_all_13_features_once_the_first_line_is_skipped(server, page: Page):
    """wine_data.csv: a metadata line ('178,13,class_0,...') and no header row. pandas alone reads
    it as 5 columns over a hidden index; here the page says what it found and offers the fixes."""
    import sklearn.datasets.data as sklearn_data

    wine = os.path.join(os.path.dirname(sklearn_data.__file__), "wine_data.csv")
    _open(page, f"{server.url}/Train", "Train")
    _upload_csv(page, wine)
    alerts = page.get_by_test_id("stAlert")
    expect(
        alerts.filter(has_text="Line 1 has 5 fields, the rows have 14: it looks like a metadata line").first
    )
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    page.get_by_role("button", name="Skip the first line").click()
    wait_connected(page)
    expect(alerts.filter(has_text="The header row (line 2) holds only numbers").first).to_be_visible()
    expect(page.get_by_role("spinbutton", name="Lines to skip", exact=True)).to_have_value("1")
    page.get_by_role("button", name="No header row").click()
    wait_connected(page)
    found = re.compile(
        r"wine_data\.csv: 178 rows, 14 columns\. .*No header row: columns are named column 1\.\.14\."
    )
    expect(page.get_by_text(found)).to_be_visible()
    expect(page.get_by_role("combobox", name="Target column")).to_have_value("column 14")
    set_number(page, "Max epochs", 2)
    early_stopping_off(page)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)
    run_id = run_id_of(page.url)
    expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=120_000)
    data = RunStore(server.runs_dir).load(run_id).config.data
    assert (data.file_name, data.target_column, data.csv.skip_rows, data.csv.header) == (
        "wine_data.csv", "column 14", 1, False,
    )  # fmt: skip
    log = RunStore(server.runs_dir).load(run_id).log_lines
    assert any(
        line.startswith("wine_data.csv (target 'column 14'): ") and "13 features" in line for line in log
    )


def test_a_config_json_naming_a_server_file_is_refused_and_nothing_of_the_file_is_sent(
    server, page: Page, tmp_path
):
    marker = f"SECRET-{os.getpid()}-e2e-marker-7f3a"
    secret = tmp_path / "secret.csv"
    secret.write_text(f"name,{marker}\n" + f"x,{marker}\n" * 20)
    config = tmp_path / "attack.json"
    config.write_text(json.dumps({"data": {"name": "text_csv", "path": str(secret)}}))
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(
        payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))))  # fmt: skip
    _open(page, f"{server.url}/Train", "Train")
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(0).set_input_files(str(config))
    wait_connected(page)
    expect(
        page.get_by_test_id("stAlert").filter(has_text="The config was not loaded; nothing changed.")
    ).to_be_visible()
    problems = page.get_by_test_id("stText").filter(has_text="attack.json:")
    expect(problems).to_contain_text("data.path: a config cannot name a file on the server")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # Nothing was loaded: the form kept its settings (the preset's digits), no CSV preview exists.
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("Digits (tabular)")
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    assert frames, "no websocket frames were captured"
    assert marker not in page.content()
    assert not [f for f in frames if marker in f]
