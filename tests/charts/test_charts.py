"""core.charts: traces, markers, patience window, empty state, and bounded size on long histories."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import uuid
from pathlib import Path

import numpy as np
import pytest

from core.charts import figures as charts
from core.config import RunConfig
from core.store.runs import EpochRecord, RunSnapshot

BEST = 20  # argmin of the synthetic val_loss
PATIENCE = 10


def u_history(n: int, *, val: bool = True, metric: str = "accuracy") -> list[EpochRecord]:
    """U-shaped val_loss with its minimum at epoch BEST; NaN train loss at epochs 5-6.

    ``saved``/``es_wait``/``es_best_epoch`` as ModelCheckpoint and EarlyStopping (Keras 3) record them.
    """
    records = []
    best, best_epoch = math.inf, None
    for e in range(1, n + 1):
        val_loss = 0.5 + ((e - BEST) / 10) ** 2
        loss = math.nan if e in (5, 6) else 1.0 / e
        logs = {"loss": loss, metric: 0.5 + e / (2 * n)}
        if val:
            logs.update(val_loss=val_loss, **{f"val_{metric}": 0.9 - ((e - BEST) / 40) ** 2})
        monitored = val_loss if val else loss
        improved = monitored < best
        if improved:
            best, best_epoch = monitored, e
        records.append(EpochRecord(e, logs, 0.1, improved, e - best_epoch, best_epoch))
    return records


def make_snap(records, **kw) -> RunSnapshot:
    defaults = dict(
        id=uuid.uuid4().hex,
        config=RunConfig(),
        status="running",
        created_at=0.0,
        history=tuple(records),
        epoch=len(records),
        monitor="val_loss",
    )
    defaults.update(kw)
    return RunSnapshot(**defaults)


def best_fields(records, monitor="val_loss"):
    values = [r.logs[monitor] for r in records]
    i = int(np.nanargmin(values))
    return {"best_epoch": i + 1, "best_value": values[i], "monitor": monitor}


def shown(fig):
    """The traces with data (every figure also carries its empty ones, see core.charts)."""
    return [t for t in fig.data if len(t.x)]


def by_name(fig, name):
    found = [t for t in shown(fig) if t.name == name]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def names(fig):
    return [t.name for t in shown(fig)]


def texts(fig):
    return [a.text for a in fig.layout.annotations]


def vlines(fig):
    return [s for s in fig.layout.shapes if s.type == "line"]


def rects(fig):
    return [s for s in fig.layout.shapes if s.type == "rect"]


# ------------------------------------------------------------------------------------------------
# Traces


def test_loss_figure_traces_and_data():
    recs = u_history(25)
    batches = ((24.25, 0.04, 0.9), (24.5, 0.03, 0.91), (24.75, 0.035, None))
    snap = make_snap(recs, batch_points=batches, **best_fields(recs))
    fig = charts.loss_figure(snap)
    assert names(fig) == ["train (batches)", "train", "validation", "checkpoint saved", "best"]

    train, val = by_name(fig, "train"), by_name(fig, "validation")
    np.testing.assert_array_equal(train.x, np.arange(1, 26))
    np.testing.assert_array_equal(train.y, [r.logs["loss"] for r in recs])  # NaN stays NaN: a gap
    assert np.isnan(train.y[4]) and np.isnan(train.y[5])
    np.testing.assert_array_equal(val.x, np.arange(1, 26))
    np.testing.assert_array_equal(val.y, [r.logs["val_loss"] for r in recs])
    assert isinstance(train.x, np.ndarray) and isinstance(val.y, np.ndarray)  # compact typed arrays

    batch = by_name(fig, "train (batches)")
    np.testing.assert_array_equal(batch.x, [24.25, 24.5, 24.75])  # fractional epochs, same scale
    np.testing.assert_array_equal(batch.y, [0.04, 0.03, 0.035])  # index 1: the loss
    assert batch.mode == "lines" and batch.opacity < 1 and batch.line.width <= 1

    ck = by_name(fig, "checkpoint saved")
    np.testing.assert_array_equal(ck.x, np.arange(1, BEST + 1))  # val_loss improved up to epoch 20
    np.testing.assert_array_equal(ck.y, [r.logs["val_loss"] for r in recs[:BEST]])
    assert "checkpoint saved" in ck.hovertemplate

    json.loads(fig.to_json())  # serializable


def test_best_marker_at_argmin_epoch():
    recs = u_history(25)
    snap = make_snap(recs, **best_fields(recs))
    fig = charts.loss_figure(snap)
    star = by_name(fig, "best")
    assert list(star.x) == [BEST] and star.marker.symbol == "star"
    assert star.y[0] == recs[BEST - 1].logs["val_loss"] == min(r.logs["val_loss"] for r in recs)
    line = [s for s in vlines(fig) if s.x0 == BEST]
    assert len(line) == 1 and line[0].x1 == BEST and line[0].line.dash == "dot"
    assert "best" in texts(fig)


def test_stop_line_and_patience_window_after_early_stop():
    recs = u_history(BEST + PATIENCE)  # stops at epoch 30: wait reached patience 10
    snap = make_snap(
        recs, status="finished", stop_reason="early_stopping", stopped_epoch=30, **best_fields(recs)
    )
    fig = charts.loss_figure(snap)
    stop = [s for s in vlines(fig) if s.x0 == 30]
    assert len(stop) == 1 and stop[0].x1 == 30
    assert "early stop" in texts(fig)
    (rect,) = rects(fig)
    assert (rect.x0, rect.x1) == (BEST, 30)
    assert "wait 10 / patience 10" in texts(fig)


def test_patience_window_while_live():
    recs = u_history(27)
    snap = make_snap(recs, **best_fields(recs))
    fig = charts.loss_figure(snap)
    (rect,) = rects(fig)
    assert (rect.x0, rect.x1) == (BEST, 27)
    assert "wait 7 / patience 10" in texts(fig)
    assert charts.patience_window(snap) == (BEST, 27, 7, PATIENCE)
    assert not [s for s in vlines(fig) if s.x0 != BEST]  # no stop line while running
    assert "early stop" not in texts(fig)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "finished", "stop_reason": "max_epochs"},
        {"status": "stopped", "stop_reason": "user"},
        {
            "config": dataclasses.replace(
                RunConfig(), early_stopping=dataclasses.replace(RunConfig().early_stopping, enabled=False)
            )
        },
    ],
)
def test_no_patience_window_unless_live_or_early_stopped(change):
    recs = u_history(27)
    fig = charts.loss_figure(make_snap(recs, **best_fields(recs), **change))
    assert not rects(fig)
    assert not [t for t in texts(fig) if t.startswith("wait")]


def test_no_patience_window_when_wait_is_zero():
    recs = u_history(BEST)  # the last epoch is the best: wait 0
    fig = charts.loss_figure(make_snap(recs, **best_fields(recs)))
    assert not rects(fig)


def test_layout():
    recs = u_history(25)
    snap = make_snap(recs, **best_fields(recs))
    for fig in (charts.loss_figure(snap), charts.metric_figure(snap, "accuracy")):
        assert fig.layout.uirevision == snap.id
        assert fig.layout.hovermode == "x unified"
        assert fig.layout.legend.orientation == "h"
        assert fig.layout.height == charts.HEIGHT
        assert fig.layout.xaxis.title.text == "epoch"
    assert charts.loss_figure(snap).layout.title.text == "Loss"
    assert charts.metric_figure(snap, "accuracy").layout.title.text == "Accuracy"


def test_fixed_trace_order_whatever_is_shown():
    """Plotly keeps a hidden legend item hidden across updates by trace index: the order never shifts."""
    recs = u_history(25)
    order = ["batches", "train_raw", "val_raw", "train", "val", "checkpoints", "best"]
    order += ["forecast_low", "forecast_high", "forecast"]
    snaps = [
        make_snap([], status="queued", monitor=None),
        make_snap([], batch_points=((0.5, 1.0, 0.5),), monitor=None),
        make_snap(recs[:1]),
        make_snap(recs, batch_points=((25.5, 0.1, 0.5),), **best_fields(recs)),
    ]
    for snap in snaps:
        for fig in (charts.loss_figure(snap), charts.metric_figure(snap, "accuracy")):
            assert [t.uid for t in fig.data] == order
            for t in fig.data:
                assert t.showlegend == bool(len(t.x))


# ------------------------------------------------------------------------------------------------
# Metric chart, regression, no validation


def test_metric_figure_accuracy():
    recs = u_history(25)
    batches = ((24.5, 0.03, 0.91), (25.0, 0.02, None))
    snap = make_snap(recs, batch_points=batches, **best_fields(recs))
    fig = charts.metric_figure(snap, "accuracy")
    assert names(fig) == ["train (batches)", "train", "validation"]  # monitor and checkpoint: val_loss
    np.testing.assert_array_equal(by_name(fig, "train").y, [r.logs["accuracy"] for r in recs])
    np.testing.assert_array_equal(by_name(fig, "validation").y, [r.logs["val_accuracy"] for r in recs])
    batch = by_name(fig, "train (batches)")
    np.testing.assert_array_equal(batch.x, [24.5, 25.0])
    np.testing.assert_array_equal(batch.y, [0.91, np.nan])  # index 2; None is a gap
    assert [s.x0 for s in vlines(fig)] == [BEST]  # the best line is drawn on both charts

    no_batch = charts.metric_figure(snap, "accuracy", batch_metric=False)
    assert "train (batches)" not in names(no_batch)


def test_best_star_on_metric_chart_when_monitoring_accuracy():
    recs = u_history(25)
    values = [r.logs["val_accuracy"] for r in recs]
    i = int(np.argmax(values))
    cfg = RunConfig()
    cfg.checkpoint.monitor = "val_accuracy"
    snap = make_snap(recs, config=cfg, monitor="val_accuracy", best_epoch=i + 1, best_value=values[i])
    acc = charts.metric_figure(snap, "accuracy")
    star = by_name(acc, "best")
    assert list(star.x) == [i + 1] and star.y[0] == values[i]
    assert "checkpoint saved" in names(acc)
    loss = charts.loss_figure(snap)
    assert "best" not in names(loss) and "checkpoint saved" not in names(loss)
    assert [s.x0 for s in vlines(loss)] == [i + 1]


def test_regression_mae():
    recs = u_history(25, metric="mae")
    snap = make_snap(recs, **best_fields(recs))
    fig = charts.metric_figure(snap, "mae")
    assert names(fig) == ["train", "validation"]
    np.testing.assert_array_equal(by_name(fig, "validation").y, [r.logs["val_mae"] for r in recs])
    assert fig.layout.yaxis.title.text == "mae"
    assert "MAE" in fig.layout.title.text


def test_no_validation_run():
    recs = u_history(25, val=False)
    cfg = RunConfig()
    cfg.early_stopping.monitor = cfg.checkpoint.monitor = "loss"
    finite = [(r.logs["loss"], r.epoch) for r in recs if not math.isnan(r.logs["loss"])]
    best_value, best_epoch = min(finite)
    snap = make_snap(recs, config=cfg, monitor="loss", best_epoch=best_epoch, best_value=best_value)
    fig = charts.loss_figure(snap)
    assert "validation" not in names(fig)
    star = by_name(fig, "best")
    assert list(star.x) == [best_epoch] and star.y[0] == best_value
    ck = by_name(fig, "checkpoint saved")
    np.testing.assert_array_equal(ck.y, [r.logs["loss"] for r in recs if r.saved])
    assert names(charts.metric_figure(snap, "accuracy")) == ["train"]


def test_metric_not_logged():
    recs = u_history(5)
    fig = charts.metric_figure(make_snap(recs), "mae")
    assert not shown(fig)
    assert any("mae" in t for t in texts(fig))


# ------------------------------------------------------------------------------------------------
# Empty state


def test_empty_history_queued():
    snap = make_snap([], status="queued", monitor=None)
    for fig in (charts.loss_figure(snap), charts.metric_figure(snap, "accuracy")):
        assert not shown(fig)
        assert charts.WAITING_NOTE in texts(fig)
        assert fig.layout.xaxis.title.text == "epoch"
        assert fig.layout.yaxis.title.text
        assert fig.layout.uirevision == snap.id
        json.loads(fig.to_json())


def test_first_epoch_in_flight_shows_batches():
    snap = make_snap([], batch_points=((0.25, 2.0, 0.1), (0.5, 1.5, 0.2)), monitor=None)
    fig = charts.loss_figure(snap)
    assert names(fig) == ["train (batches)"]
    np.testing.assert_array_equal(by_name(fig, "train (batches)").x, [0.25, 0.5])
    assert charts.WAITING_NOTE in texts(fig)


# ------------------------------------------------------------------------------------------------
# Size bounds


def long_history(n: int, saved_every: int | None = None) -> tuple[list[EpochRecord], int]:
    rng = np.random.default_rng(1)
    e = np.arange(1, n + 1)
    best = int(n * 0.6)
    val = 0.4 + ((e - best) / n) ** 2 + rng.uniform(0, 0.01, n)
    val[best - 1] = 0.3
    loss = 1 / np.sqrt(e)
    records = [
        EpochRecord(
            i + 1,
            {"loss": float(loss[i]), "val_loss": float(val[i])},
            0.1,
            saved_every is not None and (i + 1) % saved_every == 0,
            None,
            None,
        )
        for i in range(n)
    ]
    return records, best


def test_long_history_is_bounded_and_keeps_markers_exact():
    n = 100_000
    recs, best = long_history(n)
    recs[best - 1] = dataclasses.replace(recs[best - 1], saved=True)
    recs[-1] = dataclasses.replace(recs[-1], es_wait=n - best, es_best_epoch=best)
    points = tuple((n * (j + 1) / 2000, 1.0 / (j + 1), 0.5) for j in range(2000))
    snap = make_snap(
        recs,
        batch_points=points,
        best_epoch=best,
        best_value=0.3,
        stopped_epoch=n,
        stop_reason="early_stopping",
        status="finished",
    )
    fig = charts.loss_figure(snap, max_points=1500)
    assert charts.figure_bytes(fig) < 200_000
    for t in fig.data:
        assert len(t.x) <= 1500 and len(t.y) == len(t.x)
    val = by_name(fig, "validation")
    assert best in val.x and n in val.x and 1 in val.x
    assert val.y[list(val.x).index(best)] == 0.3
    assert np.all(np.diff(val.x) > 0)
    assert by_name(fig, "best").x[0] == best
    np.testing.assert_array_equal(by_name(fig, "checkpoint saved").x, [best])
    (rect,) = rects(fig)
    assert (rect.x0, rect.x1) == (best, n)
    # Min and max of the series survive.
    assert np.nanmax(val.y) == max(r.logs["val_loss"] for r in recs)


def test_checkpoint_markers_capped():
    recs, best = long_history(5_000, saved_every=1)
    snap = make_snap(recs, best_epoch=best, best_value=0.3)
    ck = [t for t in charts.loss_figure(snap).data if t.uid == "checkpoints"][0]
    assert len(ck.x) == charts.MAX_CHECKPOINT_MARKERS
    np.testing.assert_array_equal(ck.x, np.arange(5_000 - 199, 5_001))  # the latest saves
    assert ck.name.startswith("checkpoint saved")


def test_growing_history_matches_fresh_build():
    """The per-run column cache must give what a fresh read gives, tick after tick."""
    recs = u_history(40)
    run_id = uuid.uuid4().hex
    for n in (3, 10, 11, 25, 40):
        live = charts.loss_figure(make_snap(recs[:n], id=run_id, **best_fields(recs[:n])))
        fresh = charts.loss_figure(make_snap(recs[:n], **best_fields(recs[:n])))
        for a, b in zip(live.data, fresh.data, strict=True):
            np.testing.assert_array_equal(a.x, b.x)
            np.testing.assert_array_equal(a.y, b.y)
    # Another history under the same id (not an extension) is read afresh.
    other = [dataclasses.replace(r, logs={**r.logs, "loss": 7.0}) for r in recs[:12]]
    fig = charts.loss_figure(make_snap(other, id=run_id))
    np.testing.assert_array_equal(by_name(fig, "train").y, [7.0] * 12)


# ------------------------------------------------------------------------------------------------
# decimate()


def test_decimate_short_series_unchanged():
    x, y = np.arange(10), np.linspace(0, 1, 10)
    dx, dy = charts.decimate(x, y, 100)
    np.testing.assert_array_equal(dx, x)
    np.testing.assert_array_equal(dy, y)


def test_decimate_bounds_and_keeps_extremes():
    rng = np.random.default_rng(0)
    n = 10_000
    x = np.arange(n) + 0.5
    y = rng.normal(size=n)
    keep = [17, 4242, 9998]
    dx, dy = charts.decimate(x, y, 500, keep=keep)
    assert len(dx) <= 500
    assert np.all(np.diff(dx) > 0)
    for i in [0, n - 1, int(np.argmin(y)), int(np.argmax(y)), *keep]:
        assert x[i] in dx
        assert dy[list(dx).index(x[i])] == y[i]
    # Every bucket's extremes: the envelope is preserved closely.
    assert dy.min() == y.min() and dy.max() == y.max()


def test_decimate_keeps_gaps():
    y = np.sin(np.arange(5000) / 100)
    y[2000:2100] = np.nan
    dx, dy = charts.decimate(np.arange(5000), y, 300)
    assert len(dx) <= 300
    assert np.isnan(dy).any()
    assert not np.isnan(dy[dx < 2000]).any() and not np.isnan(dy[dx >= 2100]).any()


def test_decimate_keep_beyond_budget_and_bad_indices():
    y = np.arange(1000.0)
    keep = list(range(0, 1000, 10))  # 100 indices, more than the budget of 20
    dx, _ = charts.decimate(np.arange(1000), y, 20, keep=keep + [-1, 5000])
    assert set(keep) <= set(dx.tolist()) and 999 in dx
    assert len(dx) == 101


def test_decimate_all_nan():
    dx, dy = charts.decimate(np.arange(3000), np.full(3000, np.nan), 100)
    assert len(dx) <= 100 and dx[0] == 0 and dx[-1] == 2999


# ------------------------------------------------------------------------------------------------


def test_no_streamlit_or_tensorflow_import():
    tree = ast.parse(Path(charts.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"streamlit", "tensorflow", "keras"}


# --------------------------------------------------------------------------------------------
# The Compare and What-if figures (core/charts/compare.py, core/charts/whatif.py).


def test_compare_figure_marks_each_runs_best_and_stop_and_escapes_names():
    from core.charts.compare import compare_figure

    records = u_history(40)
    a = make_snap(records, status="finished", best_epoch=BEST, stopped_epoch=30)
    b = make_snap(records[:25], status="finished", best_epoch=BEST, stopped_epoch=None)
    b = dataclasses.replace(b, config=dataclasses.replace(b.config, name="<b>bold</b>"))
    fig = compare_figure([a, b], "val_loss")
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [len(t.x) for t in lines] == [40, 25]
    assert "<b>" not in lines[1].name and "&lt;b&gt;" in lines[1].name  # Plotly renders tags in names
    markers = {(t.marker.symbol, tuple(t.x)) for t in fig.data if t.mode == "markers"}
    assert markers == {("star", (BEST,)), ("x", (30,)), ("star", (BEST,))}
    cross = next(t for t in fig.data if t.mode == "markers" and t.marker.symbol == "x")
    assert cross.y[0] == records[29].logs["val_loss"]


def test_whatif_figure_marks_the_replayed_stop_and_kept_epochs():
    from core.analysis.whatif import what_if
    from core.charts.whatif import whatif_figure
    from core.config import CheckpointConfig, EarlyStoppingConfig

    snap = make_snap(u_history(60), status="finished", best_epoch=BEST)
    es = EarlyStoppingConfig(monitor="val_loss", patience=PATIENCE, restore_best_weights=True)
    ck = CheckpointConfig(monitor="val_loss")
    w = what_if(snap, es, ck)
    assert (w.stop_epoch, w.final_weights_epoch, w.kept_epoch) == (BEST + PATIENCE, BEST, BEST)
    fig = whatif_figure(snap, w)
    assert [s.x0 for s in fig.layout.shapes if s.type == "line"][0] == BEST + PATIENCE
    marked = {t.name: t.x[0] for t in fig.data if t.mode == "markers"}
    assert marked == {f"final weights (epoch {BEST})": BEST, f"kept checkpoint (epoch {BEST})": BEST}


def test_compare_figure_escapes_a_metric_name_from_a_crafted_history():
    """Second audit of issue 9: the Compare page's metrics are the keys of the runs' history.jsonl, which
    a crafted file sets; the title and axis title took them raw (Plotly renders <a href>, <b>)."""
    from core.charts.compare import compare_figure

    evil = '<a href="http://127.0.0.1:9/">x</a>'
    records = [dataclasses.replace(r, logs={**r.logs, evil: 1.0}) for r in u_history(5)]
    fig = compare_figure([make_snap(records), make_snap(records)], evil)
    for text in (fig.layout.title.text, fig.layout.yaxis.title.text):
        assert "<a" not in text and "&lt;a href=" in text


@pytest.mark.parametrize("n", [3, 25, 5_000])
def test_the_live_views_plain_specs_send_exactly_what_the_figures_send(n):
    """The live view skips go.Figure's validation (~5 ms a chart a tick): its dicts must be the same
    JSON the validated figures serialize to, template and base64 typed arrays included."""
    import plotly.graph_objects as go
    import plotly.io as pio

    recs = u_history(n)
    snap = make_snap(recs, **best_fields(recs))
    pairs = [
        (charts.loss_figure(snap, max_points=600), charts.loss_spec(snap, max_points=600)),
        (
            charts.metric_figure(snap, "accuracy", max_points=600),
            charts.metric_spec(snap, "accuracy", max_points=600),
        ),
        (charts.metric_figure(snap, "loss"), charts.metric_spec(snap, "loss")),
    ]
    for fig, spec in pairs:
        sent = json.loads(pio.to_json(spec, validate=False))
        assert sent == json.loads(pio.to_json(fig, validate=False))
        assert sent["layout"]["template"]["layout"]  # the look of every other chart in the app
        assert any("bdata" in trace.get("y", {}) for trace in sent["data"])
        go.Figure(spec)  # and it is a valid figure: validation passes
