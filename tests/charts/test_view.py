"""How a chart is read: TensorBoard's smoothing (against its own loop), log scale, and wall time on the
live, Compare and What-if charts (every x moved: traces, marker lines, labels)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from core.charts import figures as charts
from core.charts.compare import compare_figure
from core.charts.view import ChartView, epoch_ends, smooth, to_time
from tests.charts.test_charts import best_fields, by_name, make_snap, u_history


def _tensorboard(values, weight):
    """TensorBoard's scalar smoothing, as its dashboard computes it (vz_line_chart2)."""
    last, count, out = 0.0, 0, []
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out.append(last / (1 - weight**count))
    return out


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.99])
def test_smoothing_is_tensorboards(weight):
    rng = np.random.default_rng(0)
    values = rng.random(500)
    values[[3, 50]] = np.nan
    values[7] = np.inf
    np.testing.assert_allclose(smooth(values, weight), _tensorboard(values.tolist(), weight), rtol=1e-12)


def test_a_view_refuses_what_it_cannot_draw():
    with pytest.raises(ValueError, match="smoothing"):
        ChartView(smoothing=1.0)
    with pytest.raises(ValueError, match="x must be"):
        ChartView(x="batch")


def _recs(n=25, scale=1.0):
    """u_history with epochs of 1, 2, 3, 1, 2, 3, ... seconds (times ``scale``)."""
    return [dataclasses.replace(r, seconds=scale * (1.0 + i % 3)) for i, r in enumerate(u_history(n))]


def test_the_live_chart_smooths_keeps_the_raw_curve_faint_and_its_markers_on_the_raw_values():
    recs = _recs()
    snap = make_snap(recs, **best_fields(recs))
    raw = [r.logs["val_loss"] for r in recs]
    fig = charts.loss_figure(snap, view=ChartView(smoothing=0.8))
    np.testing.assert_allclose(by_name(fig, charts.VALIDATION).y, smooth(np.array(raw), 0.8))
    faint = by_name(fig, f"{charts.VALIDATION} (raw)")
    assert list(faint.y) == raw and faint.opacity == 0.3
    star = by_name(fig, charts.BEST)
    assert list(star.y) == [raw[snap.best_epoch - 1]]
    # Without smoothing the raw traces are there, empty (the trace order never shifts).
    plain = charts.loss_figure(snap)
    assert [len(t.x) for t in plain.data if t.uid.endswith("_raw")] == [0, 0]


def test_log_scale_and_wall_time_move_every_x_of_the_live_chart():
    recs = _recs()
    snap = make_snap(recs, **best_fields(recs), stopped_epoch=25)
    ends = epoch_ends([r.seconds for r in recs])
    fig = charts.loss_figure(snap, view=ChartView(log_y=True, x="time"))
    assert fig.layout.yaxis.type == "log"
    values = [v for r in recs for v in (r.logs["loss"], r.logs["val_loss"]) if v > 0]  # NaN compares False
    low, high = fig.layout.yaxis.range  # in decades on a log axis, around the epoch curves
    assert low < math.log10(min(values)) and math.log10(max(values)) < high < math.log10(max(values)) + 1
    assert fig.layout.xaxis.title.text == "training time (s)"
    np.testing.assert_allclose(by_name(fig, charts.VALIDATION).x, ends)
    best_line = [s for s in fig.layout.shapes if s.type == "line"][0]
    assert best_line.x0 == best_line.x1 == pytest.approx(ends[snap.best_epoch - 1])
    labels = {a.text: a.x for a in fig.layout.annotations}
    assert labels["early stop"] == pytest.approx(ends[-1])


def test_batch_points_sit_in_proportion_within_their_epoch():
    # x = 2.25: a quarter into epoch 3, which runs from 8 s to 9 s.
    assert to_time(np.array([2.25]), np.array([4.0, 8.0, 9.0])).tolist() == [8.25]


def test_compare_places_each_run_on_its_own_time_and_smooths_each_line():
    a, b = _recs(12), _recs(20, scale=2.0)
    snaps = [make_snap(a, **best_fields(a)), make_snap(b, **best_fields(b))]
    fig = compare_figure(snaps, "val_loss", view=ChartView(smoothing=0.5, x="time", log_y=True))
    lines = [t for t in fig.data if t.mode == "lines" and not t.name.endswith("(raw)")]
    for trace, recs in zip(lines, (a, b), strict=True):
        np.testing.assert_allclose(trace.x, epoch_ends([r.seconds for r in recs]))
        np.testing.assert_allclose(trace.y, smooth(np.array([r.logs["val_loss"] for r in recs]), 0.5))
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "training time (s)"


def test_the_live_chart_carries_the_smoothing_forward_between_ticks_and_matches_the_whole_series():
    recs = _recs(60)
    run_id = "c" * 32
    for n in (10, 11, 25, 60):  # ticks as epochs arrive
        snap = make_snap(recs[:n], id=run_id)
        fig = charts.loss_figure(snap, view=ChartView(smoothing=0.7))
        whole = smooth(np.array([r.logs["val_loss"] for r in recs[:n]]), 0.7)
        assert list(by_name(fig, charts.VALIDATION).y) == whole.tolist()  # bit for bit
