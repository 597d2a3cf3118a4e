"""The Rule benchmark page in a real browser: two full curves recorded by another process of the
user's, every rule and setting replayed on them, the front named, the scatter drawn."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.analysis.rule_benchmark import SETTINGS
from core.presets import PRESETS

from .conftest import record_run, wait_connected

pytestmark = pytest.mark.e2e


def test_the_benchmark_of_rules_on_two_full_curves(fresh_server_no_worker, page: Page) -> None:
    server = fresh_server_no_worker
    for seed in (1, 2):
        cfg = PRESETS["quick_digits"].make()
        cfg.name, cfg.fit.seed, cfg.fit.max_epochs, cfg.early_stopping.enabled = (
            f"full-{seed}",
            seed,
            12,
            False,
        )
        record_run(server.runs_dir, cfg)
    page.goto(server.url + "/Rule_benchmark")
    wait_connected(page)
    expect(page.get_by_role("heading", name="Which stopping rule, on my runs?")).to_be_visible()
    expect(page.get_by_text("On these 2 curve(s), the Pareto front: ")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(
        page.get_by_test_id("stDataFrame")
    ).to_be_visible()  # drawn on a canvas: its rows are not in the DOM
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible(timeout=60_000)
    traces = chart.evaluate("gd => gd._fullData.map(t => [t.name, t.x ? t.x.length : 0])")  # decoded arrays
    points = {name: n for name, n in traces}
    assert "Pareto front" in points and points["Pareto front"] >= 1, traces
    assert sum(n for name, n in points.items() if name != "Pareto front") == sum(map(len, SETTINGS.values()))
