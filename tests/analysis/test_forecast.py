"""The run view's forecast (core/analysis/forecast.py) and its band on the live charts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from core.analysis.forecast import COVERAGE, forecast_run, why_none
from core.charts import figures as charts
from core.charts.view import ChartView
from core.config import EarlyStoppingConfig, RunConfig
from core.stopping import curve_forecast
from tests.charts.test_charts import best_fields, make_snap, u_history


def _traces(fig: go.Figure) -> dict:
    return {t.uid: t for t in fig.data if len(t.x)}


def test_the_forecast_is_of_the_monitor_with_the_band_it_says():
    recs = u_history(20)
    snap = make_snap(recs, **best_fields(recs))
    f = forecast_run(snap, 6)
    val = [r.logs["val_loss"] for r in recs]
    _, draws = curve_forecast.forecast_samples(val, "min", 6)
    tail = (1 - COVERAGE) / 2
    assert f.monitor == "val_loss" and f.mode == "min" and f.epochs.tolist() == list(range(21, 27))
    assert np.array_equal(f.low, np.quantile(draws, tail, axis=1))
    assert np.array_equal(f.median, np.quantile(draws, 0.5, axis=1))
    assert np.array_equal(f.high, np.quantile(draws, 1 - tail, axis=1))
    assert f.best == min(val)
    assert f.chance == curve_forecast.chance_of_improvement(val, "min", 6, 0.0)
    assert f.sentence().startswith(f"Forecast: {100 * f.chance:.0f}% chance that one of the next 6 epochs")
    assert forecast_run(snap, 6) is f  # remembered until the run has another epoch


def test_too_few_epochs_or_an_unknown_direction_give_none_and_say_why_and_a_bad_horizon_is_refused():
    recs = u_history(5)
    assert forecast_run(make_snap(recs), 5) is None
    assert why_none(make_snap(recs)) == "The forecast needs 6 epochs with a finite value of val_loss."
    odd = RunConfig(early_stopping=EarlyStoppingConfig(monitor="val_custom", mode="auto"))
    assert forecast_run(make_snap(u_history(20), config=odd), 5) is None
    assert "whether val_custom is better lower or higher is not known" in why_none(
        make_snap(u_history(20), config=odd)
    )
    unlogged = make_snap(u_history(20, val=False))  # no validation part: no val_loss
    assert forecast_run(unlogged, 5) is None
    assert why_none(unlogged) == "No forecast: this run does not log val_loss."
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="horizon"):
            forecast_run(make_snap(recs), bad)


def test_the_band_is_drawn_on_the_chart_of_its_monitor_only():
    recs = u_history(20)
    snap = make_snap(recs, **best_fields(recs))
    f = forecast_run(snap, 8)
    loss = _traces(charts.loss_figure(snap, forecast=f))
    # The band starts from the last value, so it joins the curve.
    last = recs[-1].logs["val_loss"]
    assert (f.last_epoch, f.last_value) == (20, last)
    assert list(loss["forecast"].x) == list(range(20, 29))
    assert list(loss["forecast"].y) == pytest.approx([last, *f.median.tolist()], rel=1e-12)
    assert list(loss["forecast_low"].y) == pytest.approx([last, *f.low.tolist()], rel=1e-12)
    assert loss["forecast_high"].fill == "tonexty" and not loss["forecast_low"].showlegend
    assert "forecast" not in _traces(charts.metric_figure(snap, "accuracy", forecast=f))

    cfg = dataclasses.replace(snap.config, early_stopping=EarlyStoppingConfig(monitor="val_accuracy"))
    acc_snap = dataclasses.replace(snap, config=cfg)
    f_acc = forecast_run(acc_snap, 8)
    assert f_acc.mode == "max"
    assert "forecast" in _traces(charts.metric_figure(acc_snap, "accuracy", forecast=f_acc))
    assert "forecast" not in _traces(charts.loss_figure(acc_snap, forecast=f_acc))


def test_on_a_wall_time_axis_the_forecast_goes_on_at_the_mean_epoch_time():
    recs = u_history(20)  # 0.1 s an epoch
    snap = make_snap(recs, **best_fields(recs))
    f = forecast_run(snap, 4)
    band = _traces(charts.loss_figure(snap, forecast=f, view=ChartView(x="time")))["forecast"]
    assert list(band.x) == pytest.approx([2.0, 2.1, 2.2, 2.3, 2.4])
    assert all(math.isfinite(v) for v in band.y)
