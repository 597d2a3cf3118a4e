"""How a chart is read: smoothed or raw, linear or log, against epochs or wall time.

One ``ChartView`` goes to every chart that plots a run over its epochs (the live charts, Compare,
What-if), so the three read the same way. The smoothing is TensorBoard's: an exponential moving
average debiased for its start (``smooth``), with the raw curve drawn faint behind. Wall time is the
training time at the end of each epoch (the sum of the recorded epoch durations, validation
included); anything placed at a fractional epoch (a batch point, the patience window) is placed in
proportion within its epoch (``to_time``).

>>> smooth(np.array([1.0, 0.0, 0.0]), 0.5).round(4).tolist()
[1.0, 0.3333, 0.1429]
>>> to_time(np.array([0.0, 1.0, 1.5, 2.0]), np.array([10.0, 30.0])).tolist()
[0.0, 10.0, 20.0, 30.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.signal import lfilter

MAX_SMOOTHING = 0.99  # TensorBoard's slider stops short of 1 too: at 1 the curve would never move


@dataclass(frozen=True)
class ChartView:
    smoothing: float = 0.0  # 0: raw; up to MAX_SMOOTHING
    log_y: bool = False
    x: Literal["epoch", "time"] = "epoch"

    def __post_init__(self) -> None:
        if not 0.0 <= self.smoothing <= MAX_SMOOTHING:
            raise ValueError(f"smoothing must be from 0 to {MAX_SMOOTHING}; got {self.smoothing!r}")
        if self.x not in ("epoch", "time"):
            raise ValueError(f"x must be epoch or time; got {self.x!r}")

    @property
    def x_title(self) -> str:
        return "training time (s)" if self.x == "time" else "epoch"


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average; a value that is not finite stays as it is
    and does not move the average (``last = last * w + (1 - w) * v``, then ``last / (1 - w ** count)``).

    Vectorized (``scipy.signal.lfilter`` runs the same recurrence): 0.02 ms for 1,000 epochs and
    10 ms for 100,000 (process CPU, median of 20). The live charts carry it forward between ticks
    (``smooth_from``), so a tick smooths only the epochs that arrived since the last one."""
    return smooth_from(values, weight, 0.0, 0)[0]


def smooth_from(values: np.ndarray, weight: float, last: float, count: int) -> tuple[np.ndarray, float, int]:
    """``smooth`` continued from an average ``last`` over ``count`` earlier values: the smoothed
    ``values`` and the state to continue from (the same numbers as smoothing the whole series)."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    if weight <= 0 or not values.size:
        return out, last, count
    finite = np.isfinite(values)
    if finite.any():
        ema, _ = lfilter([1.0 - weight], [1.0, -weight], values[finite], zi=[weight * last])
        counts = count + np.arange(1, ema.size + 1)
        out[finite] = ema / (1.0 - weight**counts)
        last, count = float(ema[-1]), int(counts[-1])
    return out, last, count


def epoch_ends(seconds: Sequence[float]) -> np.ndarray:
    """Training time at the end of each epoch (1-based epoch e ends at ``ends[e - 1]``)."""
    return np.cumsum(np.asarray(seconds, dtype=float))


def to_time(x: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Epoch positions (1-based epoch e ends at x = e, batch points in between) as training time;
    epochs past the last one (a forecast) at the mean epoch time so far."""
    if not len(ends):
        return np.asarray(x, dtype=float) * 0.0
    knots = np.concatenate([[0.0], np.arange(1, len(ends) + 1, dtype=float)])
    times = np.concatenate([[0.0], ends])
    x = np.asarray(x, dtype=float)
    past = np.maximum(x - len(ends), 0.0)
    return np.interp(x, knots, times) + past * (times[-1] / len(ends))


def apply(spec: dict[str, Any], view: ChartView, ends: np.ndarray | None) -> dict[str, Any]:
    """A figure dict (``go.Figure.to_dict()`` or the live charts' own) read the way ``view`` says:
    log y, and every x (traces, shapes, annotations on the x axis) moved to training time.
    Smoothing is each figure's own (it must see the full series, before any decimation)."""
    layout = dict(spec.get("layout", {}))
    yaxis = dict(layout.get("yaxis", {}))
    if view.log_y:
        yaxis["type"] = "log"
        yaxis.pop("range", None)  # a linear range means nothing on a log axis: Plotly ranges it
        yaxis.pop("autorange", None)
    layout["yaxis"] = yaxis
    if view.x == "time" and ends is not None:
        traces = []
        for trace in spec.get("data", []):
            trace = dict(trace)
            if trace.get("x") is not None and len(trace["x"]):
                trace["x"] = to_time(np.asarray(trace["x"], dtype=float), ends)
            traces.append(trace)
        spec = {**spec, "data": traces}
        layout["shapes"] = [_moved(s, ("x0", "x1"), ends) for s in layout.get("shapes", [])]
        layout["annotations"] = [_moved(a, ("x",), ends) for a in layout.get("annotations", [])]
        xaxis = dict(layout.get("xaxis", {}))
        xaxis["title"] = {"text": view.x_title}
        xaxis.pop("range", None)
        layout["xaxis"] = xaxis
    return {**spec, "layout": layout}


def _moved(item: dict[str, Any], keys: tuple[str, ...], ends: np.ndarray) -> dict[str, Any]:
    if item.get("xref", "x") != "x":
        return item
    out = dict(item)
    for key in keys:
        if isinstance(out.get(key), (int, float)):
            out[key] = float(to_time(np.array([out[key]]), ends)[0])
    return out
