"""The forecast on the run view (AppTest): off by default, on with its sentence and the horizon the
user sets, and on from the start at the rule's own horizon for a run with a forecast rule."""

from __future__ import annotations

import pytest

from core.analysis.forecast import forecast_run
from core.config import RuleConfig
from core.presets import PRESETS
from tests.ui.test_pages import app, shown

pytestmark = pytest.mark.usefixtures("thread_server")


def _recorded(rules=()) -> str:
    from ui.state import get_trainer

    cfg = PRESETS["quick_digits"].make()
    cfg.fit.max_epochs, cfg.early_stopping.enabled = 12, False
    cfg.stopping_rules = list(rules)
    trainer = get_trainer()
    return trainer.wait(trainer.start(cfg).id, timeout=180).id


def _open(run_id: str):
    at = app()
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, at.exception
    return at


def _forecast_captions(at) -> list[str]:
    return [shown(c) for c in at.caption if shown(c).startswith(("Forecast:", "The forecast needs"))]


def _switch(at, run_id: str):
    return at.toggle(key=f"live_chart.{run_id}.forecast")


def _horizon(at, run_id: str):
    return at.number_input(key=f"live_chart.{run_id}.forecast_horizon")


def test_the_forecast_is_off_until_asked_then_says_its_chance_for_the_horizon_set():
    from ui.state import get_trainer

    run_id = _recorded()
    at = _open(run_id)
    assert not _switch(at, run_id).value
    assert _horizon(at, run_id).disabled
    assert not _forecast_captions(at)

    _switch(at, run_id).set_value(True).run()
    snap = get_trainer().snapshot(run_id)
    assert _forecast_captions(at) == [forecast_run(snap, 10).sentence()]
    _horizon(at, run_id).set_value(4).run()
    assert not at.exception, at.exception
    expected = forecast_run(snap, 4).sentence()
    assert _forecast_captions(at) == [expected] and "the next 4 epochs" in expected


def test_a_run_with_a_forecast_rule_opens_with_the_band_at_the_rules_horizon_after_another_run():
    """In the same tab: the first run's switch and horizon do not carry over to the next run."""
    plain = _recorded()
    rule = RuleConfig("forecast", {"horizon": 3, "min_delta": 0.0, "chance": 0.0, "min_epochs": 6})
    ruled = _recorded([rule])
    at = _open(plain)
    _switch(at, plain).set_value(True).run()
    _horizon(at, plain).set_value(7).run()
    at.query_params["run"] = ruled
    at.run()
    assert not at.exception, at.exception
    assert _switch(at, ruled).value
    assert _horizon(at, ruled).value == 3
    assert "the next 3 epochs" in _forecast_captions(at)[0]
