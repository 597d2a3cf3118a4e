"""The live chart read three ways in a real browser: smoothed (TensorBoard's debiased moving average,
the raw curve faint behind), on a log scale, and against wall time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from core.charts.view import smooth
from core.presets import PRESETS

from .conftest import record_run, wait_connected

pytestmark = pytest.mark.e2e

# The Loss chart of the live view (in the live charts' same-origin frame): its decoded traces and axes.
_LOSS_JS = """() => {
  for (const frame of document.querySelectorAll('iframe')) {
    let doc = null;
    try { doc = frame.contentDocument; } catch (e) { continue; }
    if (!doc) continue;
    for (const gd of doc.querySelectorAll('.js-plotly-plot')) {
      const title = gd.layout && gd.layout.title;
      const text = String((title && (title.text !== undefined ? title.text : title)) || '');
      if (text.trim() !== 'Loss' || !gd._fullData) continue;
      const traces = {};
      for (const t of gd._fullData) traces[t.name] = {x: Array.from(t.x || []), y: Array.from(t.y || [])};
      const ax = gd._fullLayout;
      return {traces, ytype: ax.yaxis.type, xtitle: ax.xaxis.title.text};
    }
  }
  return null;
}"""


def _loss_chart(page: Page, condition: str, timeout: float = 20_000) -> dict:
    """The Loss chart once ``condition`` (JS, on ``c``) holds: the chart redraws after each change."""
    page.wait_for_function(f"() => {{ const c = ({_LOSS_JS})(); return c !== null && ({condition}); }}",
                           timeout=timeout)  # fmt: skip
    return page.evaluate(_LOSS_JS)


def test_smoothing_log_scale_and_wall_time_on_the_live_chart(fresh_server_no_worker, page: Page) -> None:
    server = fresh_server_no_worker
    cfg = PRESETS["quick_digits"].make()
    cfg.fit.max_epochs, cfg.early_stopping.enabled = 10, False
    run_id = record_run(server.runs_dir, cfg)
    history = [
        json.loads(line) for line in (server.runs_dir / run_id / "history.jsonl").read_text().splitlines()
    ]
    raw = np.array([r["logs"]["val_loss"] for r in history])

    page.goto(f"{server.url}/Train?run={run_id}")
    wait_connected(page)
    chart = _loss_chart(page, "c.traces['validation'] && c.traces['validation'].y.length === 10")
    assert chart["traces"]["validation"]["y"] == pytest.approx(raw.tolist(), abs=0)  # raw at first

    thumb = page.get_by_test_id("stSlider").filter(has_text="Smoothing").get_by_role("slider")
    thumb.focus()
    page.keyboard.press("End")  # the most smoothing: 0.99
    chart = _loss_chart(page, "c.traces['validation (raw)'] && c.traces['validation (raw)'].y.length === 10")
    np.testing.assert_allclose(chart["traces"]["validation"]["y"], smooth(raw, 0.99), rtol=1e-12)
    assert chart["traces"]["validation (raw)"]["y"] == raw.tolist()

    page.get_by_text("Log scale", exact=True).click()
    chart = _loss_chart(page, "c.ytype === 'log'")

    page.get_by_text("wall time", exact=True).click()
    chart = _loss_chart(page, "c.xtitle === 'training time (s)'")
    np.testing.assert_allclose(chart["traces"]["validation"]["x"], np.cumsum([r["seconds"] for r in history]))
    assert chart["ytype"] == "log"  # the three settings hold together
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_the_forecast_band_on_a_recorded_run(fresh_server_no_worker, page: Page) -> None:
    """Forecast on: the band and its median over the next epochs, as core computes them, and the
    chance in words; a shorter horizon redraws it."""
    from core.analysis.forecast import forecast_run
    from core.store.runs import RunStore

    server = fresh_server_no_worker
    cfg = PRESETS["quick_digits"].make()
    cfg.fit.max_epochs, cfg.early_stopping.enabled = 12, False
    run_id = record_run(server.runs_dir, cfg)
    snap = RunStore(server.runs_dir).load(run_id)

    page.goto(f"{server.url}/Train?run={run_id}")
    wait_connected(page)
    _loss_chart(page, "c.traces['validation'] && c.traces['validation'].y.length === 12")
    page.get_by_text("Forecast", exact=True).click()
    chart = _loss_chart(page, "c.traces['forecast'] && c.traces['forecast'].y.length === 11")
    expected = forecast_run(snap, 10)
    assert chart["traces"]["forecast"]["x"] == list(range(12, 23))  # from the last epoch on
    band = chart["traces"]
    np.testing.assert_allclose(band["forecast"]["y"][1:], expected.median, rtol=1e-12)
    np.testing.assert_allclose(band["forecast band"]["y"][1:], expected.high, rtol=1e-12)
    np.testing.assert_allclose(band["forecast band (low edge)"]["y"][1:], expected.low, rtol=1e-12)
    assert band["forecast"]["y"][0] == snap.history[-1].logs["val_loss"]
    expect(page.get_by_text(expected.sentence().split(". ")[0])).to_be_visible()

    horizon = page.get_by_label("Forecast horizon (epochs)")
    horizon.fill("4")
    horizon.press("Enter")
    chart = _loss_chart(page, "c.traces['forecast'] && c.traces['forecast'].y.length === 5")
    np.testing.assert_allclose(chart["traces"]["forecast"]["y"][1:], forecast_run(snap, 4).median, rtol=1e-12)
    expect(page.get_by_test_id("stException")).to_have_count(0)
