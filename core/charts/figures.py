"""Plotly figures for the live training view: pure functions of a ``RunSnapshot``, no streamlit.

Streamlit resends the whole figure on every tick, so what a figure carries is bounded whatever the
history length: epoch series are decimated to ``max_points`` (min/max per bucket, with the epochs a
marker points at kept exact), checkpoint markers are capped, and every series is a numpy array
(Plotly serializes those as compact base64 typed arrays; lists are larger and much slower).

The x axis is the 1-based epoch, as Keras prints it. Batch points sit at fractional epochs:
position ``e0 + (batch + 1) / steps`` with ``e0`` the 0-based epoch, so 3.0 is the end of epoch 3
and 2.5 half-way through epoch 3; they line up with the epoch points without any shift.

Every figure holds the same five traces in the same order (uids "batches", "train", "val",
"checkpoints", "best"), empty ones included and left out of the legend: Streamlit's JSON drops trace
uids, so Plotly matches what the user did to a trace (hid it in the legend) by its index across
updates, and a marker appearing later must not shift the others. Per-run history columns are cached
and extended as epochs arrive (see ``_columns``), so a tick costs about the same at any epoch count.
"""

from __future__ import annotations

import base64
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from core.analysis.forecast import CurveForecast
from core.charts.buckets import MinMaxBuckets
from core.charts.view import ChartView, epoch_ends, smooth_from
from core.charts.view import apply as apply_view
from core.stopping.rules.registry import RULES
from core.store.runs import RunSnapshot

RAW = ChartView()
MAX_POINTS = 1500  # default bound on the points of one epoch series (and of the batch line)
MAX_CHECKPOINT_MARKERS = 200  # the most recent saves only
HEIGHT = 400
WAITING_NOTE = "waiting for the first epoch"

# Trace names, as shown in the legend (and as tests and pages find them), and the fixed trace order (uids).
TRAIN, VALIDATION, BATCHES, CHECKPOINTS, BEST = (
    "train",
    "validation",
    "train (batches)",
    "checkpoint saved",
    "best",
)
FORECAST = "forecast"

# The raw curves come second (drawn faint, behind the smoothed ones) and stay empty without smoothing.
_TRACE_ORDER = (
    "batches", "train_raw", "val_raw", "train", "val", "checkpoints", "best",
    "forecast_low", "forecast_high", "forecast",  # the band fills from its low edge, the trace before it
)  # fmt: skip

_TRAIN_COLOR = "#1f77b4"
_VAL_COLOR = "#ff7f0e"
_BEST_COLOR = "#f2b701"
_CHECKPOINT_COLOR = "#2ca02c"
_STOP_COLOR = "#d62728"
_LINE_COLOR = "#888888"
_PATIENCE_FILL = "rgba(214, 39, 40, 0.08)"
_FORECAST_FILL = "rgba(255, 127, 14, 0.18)"

_TITLES = {"loss": "Loss", "accuracy": "Accuracy", "mae": "MAE (mean absolute error)", "mse": "MSE"}


# ------------------------------------------------------------------------------------------------
# Public API


def loss_figure(
    snap: RunSnapshot,
    *,
    max_points: int = MAX_POINTS,
    view: ChartView = RAW,
    forecast: CurveForecast | None = None,
) -> go.Figure:
    """Train and validation loss per epoch, the batch-level loss, and the early-stopping markers."""
    return go.Figure(
        _figure(snap, "loss", batch_index=1, max_points=max_points, view=view, forecast=forecast)
    )


def metric_figure(
    snap: RunSnapshot,
    metric: str,
    *,
    max_points: int = MAX_POINTS,
    batch_metric: bool = True,
    view: ChartView = RAW,
    forecast: CurveForecast | None = None,
) -> go.Figure:
    """``metric`` and ``val_<metric>`` per epoch (e.g. "accuracy", "mae"), with the same markers.

    ``batch_metric``: whether the batch points carry this metric (true for the task's main metric,
    ``core.metrics.main_metric(task)``, the only one the live callback records per batch).
    """
    if metric == "loss":
        return loss_figure(snap, max_points=max_points, view=view, forecast=forecast)
    batch_index = 2 if batch_metric else None
    return go.Figure(
        _figure(snap, metric, batch_index=batch_index, max_points=max_points, view=view, forecast=forecast)
    )


def loss_spec(
    snap: RunSnapshot,
    *,
    max_points: int = MAX_POINTS,
    view: ChartView = RAW,
    forecast: CurveForecast | None = None,
) -> dict[str, Any]:
    """``loss_figure`` as the plain dict it is built from, for the live view (``forecast``: a band
    over the next epochs, drawn on the chart of its monitor).

    Building a ``go.Figure`` validates every property: ~5 ms a chart, twice every 0.5 s tick of
    every open tab, against 0.2 ms for the dict (tests check the dict validates as a Figure).
    """
    return _wire(_figure(snap, "loss", batch_index=1, max_points=max_points, view=view, forecast=forecast))


def metric_spec(
    snap: RunSnapshot,
    metric: str,
    *,
    max_points: int = MAX_POINTS,
    batch_metric: bool = True,
    view: ChartView = RAW,
    forecast: CurveForecast | None = None,
) -> dict[str, Any]:
    """``metric_figure`` as a plain dict (see ``loss_spec``)."""
    if metric == "loss":
        return loss_spec(snap, max_points=max_points, view=view, forecast=forecast)
    batch_index = 2 if batch_metric else None
    return _wire(
        _figure(snap, metric, batch_index=batch_index, max_points=max_points, view=view, forecast=forecast)
    )


def _wire(spec: dict[str, Any]) -> dict[str, Any]:
    """What ``go.Figure(spec)`` would send, without its validation: the default template in the
    layout and number arrays as Plotly's base64 typed arrays (a test checks the JSON is the same)."""
    for trace in spec["data"]:
        for axis in ("x", "y"):
            values = trace.get(axis)
            if isinstance(values, np.ndarray):
                trace[axis] = _typed_array(values)
    spec["layout"] = {**spec["layout"], "template": _template()}
    return spec


# Plotly.js typed arrays (plotly 6 sends 64-bit integers as the narrowest type that holds them).
_SHORT = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4"}
_SHORT |= {"float32": "f4", "float64": "f8"}


def _typed_array(values: np.ndarray) -> Any:
    if not values.size:
        return []
    if values.dtype.kind in "iu" and values.dtype.itemsize == 8:
        lo, hi = values.min(), values.max()
        signed = values.dtype.kind == "i"
        for bits in (8, 16, 32):
            narrow = np.dtype(f"{'int' if signed else 'uint'}{bits}")
            if np.iinfo(narrow).min <= lo and hi <= np.iinfo(narrow).max:
                values = values.astype(narrow)
                break
    code = _SHORT.get(str(values.dtype))
    if code is None or values.ndim != 1:
        return values  # left to the JSON encoder, as Plotly does
    return {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(values)).decode("ascii")}


_template_json: dict[str, Any] | None = None


def _template() -> dict[str, Any]:
    global _template_json
    if _template_json is None:
        import plotly.io as pio

        _template_json = pio.templates[pio.templates.default].to_plotly_json()
    return _template_json


def decimate(
    x: np.ndarray, y: np.ndarray, max_points: int, keep: Sequence[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` of the points (x, y), chosen so the line keeps its shape.

    The series is cut into equal buckets of consecutive points; each bucket keeps its minimum and
    its maximum (and its first NaN, so a gap stays a gap). The first and last points and the indices
    in ``keep`` are always kept, exact. Points keep their order, so a sorted ``x`` stays sorted.
    If ``keep`` alone exceeds the budget, the result is ``keep`` plus first and last.
    """
    x = np.asarray(x)
    y = np.asarray(y, dtype=float)
    idx = decimate_indices(y, max_points, keep)
    return x[idx], y[idx]


def decimate_indices(y: np.ndarray, max_points: int, keep: Sequence[int] = ()) -> np.ndarray:
    """The sorted indices :func:`decimate` keeps (see there)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n <= max(max_points, 2):
        return np.arange(n)
    keep_arr = np.asarray(keep, dtype=np.int64).reshape(-1)
    keep_arr = np.unique(keep_arr[(keep_arr >= 0) & (keep_arr < n)])
    fixed = np.union1d(keep_arr, [0, n - 1])
    nan = np.isnan(y)
    per_bucket = 3 if nan.any() else 2
    buckets = (max_points - len(fixed)) // per_bucket
    if buckets < 1:
        return fixed
    size = -(-n // buckets)  # ceil: every bucket holds at least one real point
    buckets = -(-n // size)
    pad = buckets * size - n
    lo = np.concatenate([np.where(nan, np.inf, y), np.full(pad, np.inf)]).reshape(buckets, size)
    hi = np.concatenate([np.where(nan, -np.inf, y), np.full(pad, -np.inf)]).reshape(buckets, size)
    starts = np.arange(buckets) * size
    picks = [starts + lo.argmin(axis=1), starts + hi.argmax(axis=1), fixed]
    if per_bucket == 3:
        gaps = np.concatenate([nan, np.zeros(pad, dtype=bool)]).reshape(buckets, size)
        has_gap = gaps.any(axis=1)
        picks.append((starts + gaps.argmax(axis=1))[has_gap])
    idx = np.unique(np.concatenate(picks))
    return idx[idx < n]


def figure_bytes(fig: go.Figure) -> int:
    """Size of the figure's JSON: what Streamlit sends on each update of the chart."""
    return len(fig.to_json())


LEARNING_RATE = "learning_rate"  # what keras.callbacks.ReduceLROnPlateau puts into each epoch's logs


def metric_title(metric: str) -> str:
    return _TITLES.get(metric, metric.replace("_", " ").capitalize())


# ------------------------------------------------------------------------------------------------
# Building one figure


def _figure(
    snap: RunSnapshot,
    metric: str,
    *,
    batch_index: int | None,
    max_points: int,
    view: ChartView = RAW,
    forecast: CurveForecast | None = None,
) -> dict[str, Any]:
    # The same five traces in the same order on every tick, empty ones included: Streamlit's JSON
    # drops trace uids, so Plotly matches a legend item the user hid across updates by its index.
    empty = np.zeros(0)
    data = {uid: (empty, empty) for uid in _TRACE_ORDER}
    checkpoint_name = CHECKPOINTS
    best_hover = "best"
    shapes: list[dict] = []
    annotations: list[dict] = []
    history = snap.history
    val_key = f"val_{metric}"

    bx, by = _batch_series(snap.batch_points, batch_index)
    if bx.size:
        data["batches"] = decimate(bx, by, max_points)

    if not history:
        annotations.append(_note(WAITING_NOTE))
    else:
        cols = _columns(snap.id, history, (metric, val_key), max_points, view.smoothing)
        epochs, train, val = cols["epoch"], cols[metric], cols[val_key]
        if train is None and val is None:
            annotations.append(_note(f"this run logs no {metric}"))
        series = {k: v for k, v in ((metric, train), (val_key, val)) if v is not None}

        # Epochs a marker points at stay exact through decimation.
        saved = cols["saved"][-MAX_CHECKPOINT_MARKERS:]
        marker_epochs = [snap.best_epoch, snap.stopped_epoch, history[-1].es_best_epoch]
        keep = saved.tolist() + [i for i in map(_index_of(epochs), marker_epochs) if i is not None]
        if series:
            kept = [cols["kept"][key] for key in series]
            idx = np.unique(np.concatenate([*kept, keep, [0, len(epochs) - 1]]).astype(np.int64))
            for uid, values in (("train", train), ("val", val)):
                if values is None:
                    continue
                if view.smoothing:  # on the full series, before decimation, as TensorBoard does it
                    key = metric if uid == "train" else val_key
                    data[f"{uid}_raw"] = epochs[idx], values[idx]
                    data[uid] = epochs[idx], cols["smoothed"][key][idx]
                else:
                    data[uid] = epochs[idx], values[idx]

        # Checkpoint saves: on the chart of the checkpoint's monitor, on the monitored series.
        ck_monitor = snap.config.checkpoint.monitor
        if saved.size and _base(ck_monitor) == metric and series:
            y = series.get(ck_monitor, val if val is not None else train)
            data["checkpoints"] = epochs[saved], y[saved]
            if cols["saved"].size > MAX_CHECKPOINT_MARKERS:
                checkpoint_name = f"{CHECKPOINTS} (latest {saved.size})"

        # Labels stack top-right of their lines, so best / early stop / wait never overlap;
        # the best label flips to the left of its line near the right edge, so it is not clipped.
        x_last = float(epochs[-1]) if epochs.size else 1.0
        if snap.best_epoch is not None:
            shapes.append(_vline(snap.best_epoch, _LINE_COLOR))
            side = "right" if snap.best_epoch > 0.85 * x_last else "left"
            annotations.append(_vline_label(snap.best_epoch, "best", _LINE_COLOR, y=1.0, xanchor=side))
            star = _best_point(snap, metric, series, epochs)
            if star is not None:
                data["best"] = np.array([snap.best_epoch]), np.array([star])
                best_hover = f"best {snap.monitor}"

        if snap.stopped_epoch is not None:
            shapes.append(_vline(snap.stopped_epoch, _STOP_COLOR))
            annotations.append(
                _vline_label(snap.stopped_epoch, stop_marker(snap), _STOP_COLOR, y=0.89, xanchor="right")
            )

        if forecast is not None and _base(forecast.monitor) == metric and forecast.epochs.size:
            # From the last value on, so the band joins the curve.
            x = np.concatenate([[forecast.last_epoch], forecast.epochs])
            for uid, ys in (("forecast_low", forecast.low), ("forecast_high", forecast.high)):
                data[uid] = x, np.concatenate([[forecast.last_value], ys])
            data["forecast"] = x, np.concatenate([[forecast.last_value], forecast.median])

        window = patience_window(snap)
        if window is not None:
            x0, x1, wait, patience = window
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": x0,
                    "x1": x1,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": _PATIENCE_FILL,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
            annotations.append(
                {
                    "x": x1,
                    "y": 0.78,
                    "xref": "x",
                    "yref": "paper",
                    "xanchor": "right",
                    "yanchor": "top",
                    "text": f"wait {wait} / patience {patience}",
                    "showarrow": False,
                    "font": {"size": 11, "color": _STOP_COLOR},
                }
            )

    styles = {
        "batches": {
            "name": BATCHES,
            "mode": "lines",
            "line": {"width": 1, "color": _TRAIN_COLOR},
            "opacity": 0.35,
        },
        "train_raw": {
            "name": f"{TRAIN} (raw)",
            "mode": "lines",
            "line": {"width": 1, "color": _TRAIN_COLOR},
            "opacity": 0.3,
        },
        "val_raw": {
            "name": f"{VALIDATION} (raw)",
            "mode": "lines",
            "line": {"width": 1, "color": _VAL_COLOR},
            "opacity": 0.3,
        },
        "train": {"name": TRAIN, "mode": "lines", "line": {"width": 2, "color": _TRAIN_COLOR}},
        "val": {"name": VALIDATION, "mode": "lines", "line": {"width": 2, "color": _VAL_COLOR}},
        "checkpoints": {
            "name": checkpoint_name,
            "mode": "markers",
            "marker": {"size": 7, "symbol": "circle-open", "color": _CHECKPOINT_COLOR, "line": {"width": 2}},
            "hovertemplate": "checkpoint saved<extra></extra>",
        },
        "best": {
            "name": BEST,
            "mode": "markers",
            "marker": {
                "size": 14,
                "symbol": "star",
                "color": _BEST_COLOR,
                "line": {"width": 1, "color": "#444444"},
            },
            "hovertemplate": f"{best_hover}: %{{y:.4g}}<extra></extra>",
        },
        "forecast_low": {
            "name": f"{FORECAST} band (low edge)",
            "mode": "lines",
            "line": {"width": 0, "color": _VAL_COLOR},
            "legendgroup": "forecast",
            "hovertemplate": "forecast low: %{y:.4g}<extra></extra>",
        },
        "forecast_high": {
            "name": f"{FORECAST} band",
            "mode": "lines",
            "line": {"width": 0, "color": _VAL_COLOR},
            "fill": "tonexty",
            "fillcolor": _FORECAST_FILL,
            "legendgroup": "forecast",
            "hovertemplate": "forecast high: %{y:.4g}<extra></extra>",
        },
        "forecast": {
            "name": FORECAST,
            "mode": "lines",
            "line": {"width": 2, "color": _VAL_COLOR, "dash": "dot"},
            "legendgroup": "forecast",
            "hovertemplate": "forecast: %{y:.4g}<extra></extra>",
        },
    }
    yaxis = {"title": {"text": metric}, "hoverformat": ".4g", **_epoch_range(data, log=view.log_y)}
    if view.log_y:
        yaxis["type"] = "log"
    if metric == LEARNING_RATE:  # ReduceLROnPlateau divides it: steps of equal height on a log axis
        styles["train"]["name"] = "learning rate"
        styles["train"]["line"] = {**styles["train"]["line"], "shape": "hv"}  # set per epoch
        yaxis = {
            "title": {"text": "learning rate"}, "type": "log", "hoverformat": ".4g",
            "dtick": 1, "exponentformat": "power",  # one short label a decade: 10^-3, not 0.001000
        }  # fmt: skip
    traces = [
        {
            "type": "scatter",
            "uid": uid,
            "x": data[uid][0],
            "y": data[uid][1],
            "showlegend": bool(len(data[uid][0])) and uid != "forecast_low",
            **styles[uid],
        }
        for uid in _TRACE_ORDER
    ]
    layout = {
        "title": {
            "text": metric_title(metric),
            "x": 0,
            "xanchor": "left",
            "y": 1,
            "yanchor": "top",
            "pad": {"t": 8},
        },
        "height": HEIGHT,
        "margin": {"l": 50, "r": 10, "t": 36, "b": 100},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "left", "x": 0},
        "hovermode": "x unified",
        "uirevision": snap.id,
        "xaxis": {"title": {"text": "epoch"}, "zeroline": False},
        "yaxis": yaxis,
        "shapes": shapes,
        "annotations": annotations,
    }
    spec = {"data": traces, "layout": layout}
    if view.x == "time":  # the log axis and its range are set above
        spec = apply_view(spec, ChartView(x="time"), epoch_ends([r.seconds for r in history]))
    return spec


def _epoch_range(data: dict, *, log: bool = False) -> dict:
    """Scale the y axis to the epoch curves (raw and smoothed): the first batches' losses would
    flatten them. On a log axis the range is in decades, over the positive values."""
    ys = [np.asarray(data[k][1], dtype=float) for k in ("train", "val", "train_raw", "val_raw", "forecast")]
    ys = np.concatenate([y[np.isfinite(y) & ((y > 0) if log else True)] for y in ys])
    if ys.size < 2:
        return {}
    if log:
        ys = np.log10(ys)
    lo, hi = float(ys.min()), float(ys.max())
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 0.05
    return {"range": [lo - pad, hi + pad], "autorange": False}


def patience_window(snap: RunSnapshot) -> tuple[int, int, int, int] | None:
    """(first epoch, last epoch, wait, patience) of EarlyStopping's current wait, or None.

    Shown while the run is live, or after an early stop; only when the wait counter is positive.
    It spans from EarlyStopping's best epoch so far to the last finished epoch.
    """
    es = snap.config.early_stopping
    if not snap.history or not es.enabled:
        return None
    if not (snap.is_live or snap.stop_reason == "early_stopping"):
        return None
    last = snap.history[-1]
    wait = last.es_wait
    if wait is None or wait <= 0:
        return None
    x1 = last.epoch
    x0 = last.es_best_epoch if last.es_best_epoch is not None else x1 - wait
    if x0 >= x1:
        x0 = x1 - wait
    return x0, x1, wait, es.patience


# ------------------------------------------------------------------------------------------------
# Helpers


def _base(key: str | None) -> str | None:
    return None if key is None else key.removeprefix("val_")


def _batch_series(points, index: int | None) -> tuple[np.ndarray, np.ndarray]:
    empty = np.zeros(0)
    if index is None or not points:
        return empty, empty
    x = np.fromiter((p[0] for p in points), dtype=float, count=len(points))
    y = np.fromiter(
        ((math.nan if p[index] is None else p[index]) for p in points), dtype=float, count=len(points)
    )
    if not np.isfinite(y).any():
        return empty, empty
    return x, y


def _index_of(epochs: np.ndarray):
    def find(epoch: int | None) -> int | None:
        if epoch is None:
            return None
        i = int(np.searchsorted(epochs, epoch))
        return i if i < len(epochs) and epochs[i] == epoch else None

    return find


def _best_point(snap: RunSnapshot, metric: str, series: dict, epochs: np.ndarray) -> float | None:
    """The y of the best marker: on the monitored series, if this chart plots it."""
    monitor = snap.monitor
    if _base(monitor) != metric or monitor not in series:
        return None
    i = _index_of(epochs)(snap.best_epoch)
    y = float(series[monitor][i]) if i is not None else math.nan
    if not math.isfinite(y) and snap.best_value is not None:
        y = float(snap.best_value)
    return y if math.isfinite(y) else None


def _vline(x: float, color: str) -> dict:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "width": 1.5, "dash": "dot"},
    }


def _vline_label(x: float, text: str, color: str, *, y: float, xanchor: str) -> dict:
    return {
        "x": x,
        "y": y,
        "xref": "x",
        "yref": "paper",
        "xanchor": xanchor,
        "yanchor": "top",
        "text": text,
        "showarrow": False,
        "font": {"size": 11, "color": color},
    }


def _note(text: str) -> dict:
    return {
        "x": 0.5,
        "y": 0.5,
        "xref": "paper",
        "yref": "paper",
        "text": text,
        "showarrow": False,
        "font": {"size": 14, "color": _LINE_COLOR},
    }


# ------------------------------------------------------------------------------------------------
# History columns, cached per run and extended as epochs arrive.
#
# A live run's snapshots share their EpochRecord objects (the history only grows), so the columns
# of the previous tick are reused and only the new epochs are read: a tick costs the same at epoch
# 100,000 as at epoch 100. Any other history (a run reloaded from disk, a test) is read afresh.


class _Columns:
    def __init__(self) -> None:
        self.n = 0
        self.first = self.last = None
        self.epoch = np.zeros(0, dtype=np.int64)
        self.saved = np.zeros(0, dtype=np.int64)  # indices of the records with saved=True
        self.logs: dict[str, tuple[bool, np.ndarray]] = {}  # key -> (logged by any record, values)
        self.buckets: dict[tuple[str, int], MinMaxBuckets] = {}  # (key, bucket limit) -> its decimation
        # (key, weight) -> (values smoothed so far, the average's state): carried forward between ticks
        self.smoothed_: OrderedDict[tuple[str, float], tuple[np.ndarray, float, int]] = OrderedDict()

    def matches(self, history) -> bool:
        n = len(history)
        return 0 < self.n <= n and history[0] is self.first and history[self.n - 1] is self.last

    def extend(self, history) -> None:
        new = history[self.n :]
        self.epoch = np.concatenate([self.epoch, np.array([r.epoch for r in new], dtype=np.int64)])
        self.saved = np.concatenate(
            [self.saved, np.array([self.n + i for i, r in enumerate(new) if r.saved], dtype=np.int64)]
        )
        for key, (present, values) in self.logs.items():
            self.logs[key] = (
                present or any(key in r.logs for r in new),
                np.concatenate([values, _log_values(new, key)]),
            )
        self.n, self.first, self.last = len(history), history[0], history[-1]

    def kept(self, key: str, limit: int) -> np.ndarray:
        """The indices the decimation of ``key`` keeps, its buckets extended by the new epochs only."""
        buckets = self.buckets.setdefault((key, limit), MinMaxBuckets(limit))
        buckets.extend(self.logs[key][1])
        return buckets.indices()

    def smoothed(self, key: str, weight: float) -> np.ndarray:
        """``smooth`` of ``key``'s values, extended by the new epochs only (a few weights kept)."""
        values = self.logs[key][1]
        done, last, count = self.smoothed_.get((key, weight), (np.zeros(0), 0.0, 0))
        if done.size < values.size:
            more, last, count = smooth_from(values[done.size :], weight, last, count)
            done = np.concatenate([done, more])
        self.smoothed_[(key, weight)] = (done, last, count)
        self.smoothed_.move_to_end((key, weight))
        while len(self.smoothed_) > 8:  # a slider being dragged leaves a trail of weights
            self.smoothed_.popitem(last=False)
        return done

    def column(self, history, key: str) -> np.ndarray | None:
        if key not in self.logs:
            self.logs[key] = (any(key in r.logs for r in history), _log_values(history, key))
        present, values = self.logs[key]
        return values if present else None


_CACHE: OrderedDict[str, _Columns] = OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


def _columns(
    run_id: str, history, keys: Sequence[str], max_points: int, smoothing: float = 0.0
) -> dict[str, Any]:
    """``epoch``, ``saved`` (indices), each of ``keys`` (None if never logged) for ``history``,
    ``kept``: key -> the indices its decimation keeps (``max_points`` shared by the logged keys), and
    ``smoothed``: key -> its smoothed values (with ``smoothing`` above 0)."""
    with _CACHE_LOCK:
        cols = _CACHE.get(run_id)
        if cols is None or not cols.matches(history):
            cols = _Columns()
            _CACHE[run_id] = cols
        _CACHE.move_to_end(run_id)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        if cols.n != len(history):
            cols.extend(history)
        out: dict[str, Any] = {"epoch": cols.epoch, "saved": cols.saved}
        for key in keys:
            out[key] = cols.column(history, key)
        logged = [key for key in keys if out[key] is not None]
        limit = max_points // (2 * max(len(logged), 1))  # buckets of a series: a min and a max each
        out["kept"] = {key: cols.kept(key, limit) for key in logged}
        out["smoothed"] = {key: cols.smoothed(key, smoothing) for key in logged} if smoothing else {}
        return out


def _log_values(records, key: str) -> np.ndarray:
    """One value per record; NaN where the key is missing or None."""
    nan = math.nan
    return np.array([r.logs.get(key, nan) for r in records], dtype=float).reshape(-1)


def stop_marker(snap: RunSnapshot) -> str:
    """The label of the stop line: "early stop", or the stopping rule that ended the run, with its values."""
    reason = snap.stop_reason or ""
    if not reason.startswith("rule:"):
        return "early stop"
    name = reason.removeprefix("rule:")
    rule = RULES.get(name)
    own = next((r for r in snap.config.stopping_rules if r.name == name), None)
    if rule is None or own is None:
        return f"stopped by {name}"
    try:
        return rule.short_title(rule.checked(own.params)) + " stop"
    except ValueError:
        return f"stopped by {rule.label}"


def usage_spec(
    snap: RunSnapshot, *, max_points: int = MAX_POINTS, view: ChartView = RAW
) -> dict[str, Any] | None:
    """The training process per epoch: its CPU (percent of one core: above 100, several cores) and its
    memory, and its first GPU's memory when it has one; None for a run recorded without them."""
    records = [r for r in snap.history if r.cpu_seconds is not None]
    if not records:
        return None
    epochs = np.array([r.epoch for r in records], dtype=float)
    cpu = np.array([100.0 * r.cpu_seconds / r.seconds if r.seconds > 0 else np.nan for r in records])
    series = [("CPU (% of a core)", cpu, "y", _TRAIN_COLOR)]
    for name, key, color in (
        ("memory (MiB)", "rss_mb", _VAL_COLOR),
        ("GPU memory (MiB)", "gpu_mb", _BEST_COLOR),
    ):
        values = np.array([np.nan if getattr(r, key) is None else getattr(r, key) for r in records])
        if np.isfinite(values).any():
            series.append((name, values, "y2", color))
    traces = []
    for name, values, axis, color in series:
        x, y = decimate(epochs, values, max_points)
        traces.append({"type": "scatter", "x": x, "y": y, "name": name, "mode": "lines", "yaxis": axis,
                       "line": {"width": 2, "color": color}})  # fmt: skip
    layout = {
        "title": {
            "text": "Training process", "x": 0, "xanchor": "left", "y": 1, "yanchor": "top", "pad": {"t": 8}
        },
        "height": HEIGHT,
        "margin": {"l": 50, "r": 50, "t": 36, "b": 100},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "left", "x": 0},
        "hovermode": "x unified",
        "uirevision": snap.id,
        "xaxis": {"title": {"text": "epoch"}, "zeroline": False},
        "yaxis": {"title": {"text": "CPU %"}, "rangemode": "tozero", "hoverformat": ".0f"},
        "yaxis2": {"title": {"text": "MiB"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                   "hoverformat": ".0f", "showgrid": False},
    }  # fmt: skip
    spec = {"data": traces, "layout": layout}
    if view.x == "time":
        spec = apply_view(spec, ChartView(x="time"), epoch_ends([r.seconds for r in snap.history]))
    return _wire(spec)
