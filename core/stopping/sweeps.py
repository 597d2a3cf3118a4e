"""Sweeps over EarlyStopping settings on one recorded curve: the patience explorer's numbers.

``patience_sweep`` answers "what would patience 0..N and these min_delta values have done" for a
whole grid at once, vectorised, and falls back to the exact replay (core/stopping/replay.py) where
float32 rounding could matter, so every cell equals what ``replay_early_stopping`` returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.stopping.replay import FLT_MIN, as_values, mode_sign, replay_early_stopping


def _f32_array(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`f32` (as float64 holding float32 values) and a mask of range errors."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(np.float32).astype(np.float64)
    overflow = np.isinf(y) & np.isfinite(x)
    y[np.abs(y) < FLT_MIN] = 0.0
    return y, overflow


def _first_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every i: the smallest j > i with ``a[j] < b[i]``, or ``len(a)`` if none.

    ``a`` must hold no NaN (NaN never compares true: pass +inf instead); a NaN in ``b`` finds
    nothing. A sparse table of block minima and a binary lift run for all i at once.
    """
    m = len(a)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    levels = [np.append(a, np.inf)]  # levels[k][j] = min(a[j : j + 2**k]); index m is +inf
    span = 1
    while span * 2 <= m:
        prev = levels[-1]
        cur = prev.copy()
        cur[: m + 1 - span] = np.minimum(prev[: m + 1 - span], prev[span:])
        levels.append(cur)
        span *= 2
    pos = np.minimum(np.arange(1, m + 1), m)
    with np.errstate(invalid="ignore"):
        for k in range(len(levels) - 1, -1, -1):
            skip = ~(levels[k][pos] < b)  # no j in [pos, pos + 2**k) has a[j] < b
            pos = np.minimum(pos + np.where(skip, 1 << k, 0), m)
    return pos


@dataclass(frozen=True)
class _Trace:
    """EarlyStopping with infinite patience over the monitored epochs of a history."""

    epochs: np.ndarray  # 0-based epoch of each monitored entry
    improved: np.ndarray  # bool per monitored entry
    wait: np.ndarray  # the counter after each monitored entry
    last_improved: np.ndarray  # index (into the monitored entries) of the last improvement so far


def _es_trace(
    v64: np.ndarray,
    monitored: np.ndarray,
    *,
    sign: int,
    min_delta: float,
    baseline: float | None,
) -> _Trace | None:
    """The improvement flags and wait counter exactly as Keras, or None if a range error is possible.

    Works in "min space": in max mode, ``greater(x, y)`` is ``less(-x, -y)``, exact in float32.
    """
    epochs = np.flatnonzero(monitored)
    v = v64[epochs]
    md = abs(float(min_delta)) * (1 if sign > 0 else -1)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = v - md
    a, a_over = _f32_array(shifted)
    b, b_over = _f32_array(v)
    if sign > 0:
        a, b = -a, -b
    m = len(v)
    bl = None
    if baseline is not None:
        bl = _f32_array(np.array([float(baseline)]))
        if bl[1][0] and m:
            return None
        bl = -bl[0][0] if sign > 0 else bl[0][0]
    if a_over[1:].any() or b_over.any() or (bl is not None and m and a_over[0]):
        return None  # the plain replay raises where (and if) Keras would
    a_key = np.where(np.isnan(a), np.inf, a)
    nxt = _first_below(a_key, b).tolist()
    improved = np.zeros(m, dtype=bool)
    i = 0
    while i < m:
        improved[i] = True
        i = nxt[i]
    if bl is None:
        reset = improved
    else:
        with np.errstate(invalid="ignore"):
            reset = improved & (a < bl)
    idx = np.arange(m)
    last_reset = np.maximum.accumulate(np.where(reset, idx, -1)) if m else idx
    wait = idx - last_reset
    last_improved = np.maximum.accumulate(np.where(improved, idx, -1)) if m else idx
    return _Trace(epochs, improved, wait, last_improved)


def _sweep_rows(
    v64: np.ndarray,
    monitored: np.ndarray,
    n: int,
    *,
    sign: int,
    min_delta: float,
    patiences: np.ndarray,
    baseline: float | None,
    restore_best_weights: bool,
) -> dict[str, np.ndarray] | None:
    tr = _es_trace(v64, monitored, sign=sign, min_delta=min_delta, baseline=baseline)
    if tr is None:
        return None
    m = len(tr.epochs)
    cand = np.flatnonzero(~tr.improved & (tr.epochs > 0))
    k = len(patiences)
    if len(cand):
        running_max = np.maximum.accumulate(tr.wait[cand])
        s = np.searchsorted(running_max, patiences, side="left")
    else:
        s = np.zeros(k, dtype=np.int64)
    stopped = s < len(cand)
    stop_entry = cand[np.minimum(s, len(cand) - 1)] if len(cand) else np.zeros(k, dtype=np.int64)
    stopped_epoch = np.where(stopped, tr.epochs[stop_entry] if m else 0, 0)
    epochs_run = np.where(stopped, stopped_epoch + 1, n)
    if m:
        best_entry = np.where(stopped, tr.last_improved[stop_entry], tr.last_improved[m - 1])
        best_epoch = tr.epochs[best_entry]
    else:
        best_epoch = np.zeros(k, dtype=np.int64)
    final = best_epoch if (restore_best_weights and m) else epochs_run - 1
    return {
        "stopped": stopped,
        "stopped_epoch": stopped_epoch,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "final_weights_epoch": final,
    }


def _sweep_rows_plain(
    values, *, mode, min_delta, patiences, baseline, start_from_epoch, restore_best_weights
) -> dict[str, np.ndarray]:
    cols: dict[str, list] = {
        c: [] for c in ("stopped", "stopped_epoch", "epochs_run", "best_epoch", "final_weights_epoch")
    }
    for p in patiences:
        r = replay_early_stopping(
            values,
            mode=mode,
            min_delta=min_delta,
            patience=int(p),
            baseline=baseline,
            start_from_epoch=start_from_epoch,
            restore_best_weights=restore_best_weights,
        )
        for c in cols:
            value = getattr(r, c)
            cols[c].append(-1 if value is None else value)  # final_weights_epoch of an empty history
    return {c: np.array(v) for c, v in cols.items()}


SWEEP_COLUMNS = (
    "min_delta",
    "patience",
    "stopped",
    "stopped_epoch",
    "epochs_run",
    "epochs_saved",
    "best_epoch",
    "final_weights_epoch",
    "final_value",
    "recording_best",
    "recording_best_epoch",
    "given_up",
    "exceeds_recording",
)


def patience_sweep(
    values: Sequence[float | None],
    *,
    mode: str,
    patiences: Sequence[int],
    min_deltas: Sequence[float],
    baseline: float | None = None,
    start_from_epoch: int = 0,
    restore_best_weights: bool = True,
    recording_complete: bool = False,
) -> pd.DataFrame:
    """EarlyStopping replayed for every (min_delta, patience): one row each, min_delta-major.

    Columns: ``min_delta, patience, stopped, stopped_epoch, epochs_run, epochs_saved, best_epoch,
    final_weights_epoch`` (as :func:`replay_early_stopping`; -1 for an empty history),
    ``final_value`` (the metric at the final weights epoch; NaN if not logged), ``recording_best`` /
    ``recording_best_epoch`` (the best value anywhere in the recording, ignoring missing and NaN
    values; first epoch on ties),
    ``given_up`` (how much worse the final weights are than the recording's best, positive = worse;
    +inf when the final value is missing or NaN) and ``exceeds_recording``: the rule did not stop
    within the recording and the recording did not run to max_epochs (``recording_complete=False``),
    so the true run would have been *at least* ``len(values)`` epochs and its outcome is unknown.

    Exact: for one (min_delta, baseline, start_from_epoch) the improvements and the wait counter do
    not depend on patience up to the stop, so they are computed once (with infinite patience,
    vectorised), and each patience stops at the first non-improving monitored epoch whose wait
    reaches it: a ``searchsorted`` on the running maximum of those waits. Falls back to the plain
    replay when a float32 range error is possible, raising :class:`Float32RangeError` if Keras would.
    """
    vals = as_values(values)
    sign = mode_sign(mode)
    n = len(vals)
    v64 = np.array([math.nan if v is None else v for v in vals], dtype=np.float64)
    present = np.array([v is not None for v in vals], dtype=bool)
    monitored = present & (np.arange(n) >= start_from_epoch)
    pats = np.asarray(list(patiences), dtype=np.int64)
    deltas = [float(d) for d in min_deltas]

    finite = present & ~np.isnan(v64)
    if finite.any():
        score = np.where(finite, v64 * -sign, np.inf)  # lower is better
        rec_best_epoch = int(np.argmin(score))
        rec_best = float(v64[rec_best_epoch])
    else:
        rec_best_epoch, rec_best = -1, math.nan

    parts = []
    for d in deltas:
        rows = _sweep_rows(
            v64,
            monitored,
            n,
            sign=sign,
            min_delta=d,
            patiences=pats,
            baseline=baseline,
            restore_best_weights=restore_best_weights,
        )
        if rows is None:
            rows = _sweep_rows_plain(
                vals,
                mode=mode,
                min_delta=d,
                patiences=pats,
                baseline=baseline,
                start_from_epoch=start_from_epoch,
                restore_best_weights=restore_best_weights,
            )
        rows["min_delta"] = np.full(len(pats), d)
        rows["patience"] = pats
        parts.append(rows)

    if not parts:
        return pd.DataFrame(columns=list(SWEEP_COLUMNS))
    cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    fw = cols["final_weights_epoch"].astype(np.int64)
    if n:
        final_value = v64[np.clip(fw, 0, n - 1)]
        final_value = np.where(fw >= 0, final_value, np.nan)
    else:
        final_value = np.full(len(fw), np.nan)
    with np.errstate(invalid="ignore"):
        given_up = (final_value - rec_best) * -sign
    given_up = np.where(np.isnan(final_value), np.inf, given_up)
    cols["final_weights_epoch"] = fw
    cols["epochs_saved"] = n - cols["epochs_run"]
    cols["final_value"] = final_value
    cols["recording_best"] = np.full(len(fw), rec_best)
    cols["recording_best_epoch"] = np.full(len(fw), rec_best_epoch)
    cols["given_up"] = given_up
    cols["exceeds_recording"] = ~cols["stopped"].astype(bool) & (not recording_complete)
    cols["stopped"] = cols["stopped"].astype(bool)
    return pd.DataFrame({c: cols[c] for c in SWEEP_COLUMNS})


def suggest_knee(
    frame: pd.DataFrame,
    *,
    method: str = "tolerance",
    tolerance: float | None = None,
    rel_tolerance: float = 0.01,
) -> pd.Series:
    """The setting worth suggesting from a :func:`patience_sweep` frame: few epochs, little given up.

    ``method="tolerance"`` (default): the cheapest row (fewest ``epochs_run``; then the smallest
    patience and min_delta) whose ``given_up`` is within ``tolerance`` of the smallest ``given_up``
    in the frame. ``tolerance`` defaults to ``rel_tolerance`` (1%) of the recording's best value in
    magnitude. This answers the question the explorer asks ("how little patience still finds a
    model about as good?") in the metric's own units, and it is stable: a Kneedle-style knee on a
    step-shaped, noisy trade-off curve jumps between neighbouring steps as the curve changes
    slightly, and can suggest a setting that gives up much more than the user would accept.

    ``method="kneedle"``: on the Pareto front of (epochs_run, given_up), both normalised to [0, 1],
    the point farthest below the chord from the cheapest to the best front point (Satopaa et al.,
    2011), for a parameter-free "where the returns start diminishing".

    Rows flagged ``exceeds_recording`` are left out (their outcome is unknown) unless nothing else
    remains; rows with infinite ``given_up`` (final value missing or NaN) likewise.
    """
    if frame.empty:
        raise ValueError("empty sweep")
    cand = frame[~frame["exceeds_recording"].astype(bool) & np.isfinite(frame["given_up"])]
    if cand.empty:
        cand = frame[np.isfinite(frame["given_up"])]
    if cand.empty:
        cand = frame
    order = cand.assign(_absd=cand["min_delta"].abs()).sort_values(
        ["epochs_run", "patience", "_absd"], kind="stable"
    )
    order = order.drop(columns="_absd")
    if method == "tolerance":
        if tolerance is None:
            rb = float(frame["recording_best"].iloc[0])
            tolerance = rel_tolerance * abs(rb) if math.isfinite(rb) else 0.0
        best = order["given_up"].min()
        ok = order[order["given_up"] <= best + tolerance]
        return ok.iloc[0] if not ok.empty else order.iloc[0]
    if method == "kneedle":
        # Pareto front: walking by epochs_run, keep rows that strictly improve given_up.
        front_idx = []
        lowest = math.inf
        for idx, gu in zip(order.index, order["given_up"]):
            if gu < lowest:
                front_idx.append(idx)
                lowest = gu
        front = order.loc[front_idx]
        if len(front) <= 2:
            return front.iloc[-1]
        x = front["epochs_run"].to_numpy(dtype=float)
        y = front["given_up"].to_numpy(dtype=float)
        xs = (x - x[0]) / (x[-1] - x[0]) if x[-1] > x[0] else np.zeros_like(x)
        ys = (y - y[-1]) / (y[0] - y[-1]) if y[0] > y[-1] else np.zeros_like(y)
        # chord from (0, 1) to (1, 0): distance below it is proportional to 1 - xs - ys
        return front.iloc[int(np.argmax(1.0 - xs - ys))]
    raise ValueError(f"unknown method {method!r}")
