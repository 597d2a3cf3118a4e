"""The Rule benchmark page (AppTest): says what to record when there is no full curve, then replays
every rule and setting on the user's full curves, with the Pareto front named."""

from __future__ import annotations

import pytest

from core.analysis.rule_benchmark import SETTINGS, benchmark, full_curves
from core.presets import PRESETS
from tests.ui.test_pages import app, shown

PAGE = "pages/5_Rule_benchmark.py"


pytestmark = pytest.mark.usefixtures("thread_server")


def test_the_benchmark_replays_every_setting_on_the_full_curves():
    from ui.state import get_trainer

    at = app(PAGE).run()
    assert not at.exception
    assert any(i.value.startswith("No full curve yet.") for i in at.info)

    trainer = get_trainer()
    snaps = []
    for seed, lr in ((1, 0.01), (2, 0.03)):
        cfg = PRESETS["quick_digits"].make()
        cfg.name, cfg.fit.seed, cfg.fit.learning_rate = f"full-{seed}", seed, lr
        cfg.fit.max_epochs, cfg.early_stopping.enabled = 15, False
        snaps.append(trainer.wait(trainer.start(cfg).id, timeout=180))
    at = app(PAGE).run()
    assert not at.exception, at.exception
    [table] = [d.value for d in at.dataframe]
    assert len(table) == sum(map(len, SETTINGS.values()))
    expected = benchmark(full_curves(snaps))
    front = expected[expected["on the Pareto front"]].sort_values("epochs trained (share)")
    sentence = next(
        shown(m) for m in at.markdown if shown(m).startswith("On these 2 curve(s), the Pareto front: ")
    )
    assert all(rule in sentence for rule in front["rule"])
    assert at.get("plotly_chart")

    at.multiselect(key="bench_runs").unselect(snaps[1].id).run()
    assert any(shown(m).startswith("On these 1 curve(s)") for m in at.markdown)
