"""Which stopping rule should I use, on my runs? Every rule and setting replayed on every recorded full
curve: the epochs it would have trained against the validation loss it would have given up.

A full curve is a recording no rule cut short: a run that trained all its epochs (early stopping off,
or never firing) or an imported history, with ``val_loss`` on at least ``MIN_EPOCHS`` epochs. On each,
a setting's replay gives the epoch it stops at (the whole recording when it does not stop); the model
kept is the one a ``ModelCheckpoint(save_best_only=True)`` on val_loss would keep by then, as in the
app's runs, and what it gives up is its val_loss above the best of the whole curve, relative to that
best. A setting is summarized over the curves by the mean share of the epochs it trains and the mean
loss it gives up; the Pareto front is the settings no other beats on both.

The thresholds (a target, a divergence limit) are left out: their values mean something only for one
run's metric, not across runs. Replays read a loss (``mode="min"``), as Prechelt's rules need.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.stopping.rules.registry import RULES
from core.stopping.rules.rule import Curves
from core.store.runs import RunSnapshot

MONITOR = "val_loss"
MIN_EPOCHS = 10  # fewer: every patience worth comparing outlasts the recording
FULL_REASONS = ("max_epochs", "imported")

# The settings compared, per rule: a small grid around each rule's usual values.
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "early_stopping": [
        {"patience": p, "min_delta": 0.0, "start_from_epoch": 0} for p in (1, 2, 3, 5, 10, 20)
    ],
    "prechelt_gl": [{"alpha": a} for a in (1.0, 2.0, 5.0, 10.0, 20.0)],
    "prechelt_pq": [{"alpha": a, "k": 5} for a in (0.5, 1.0, 2.0, 4.0)],
    "prechelt_up": [{"s": s, "k": k} for s, k in ((1, 5), (2, 5), (3, 5), (2, 3))],
    "relative_min_delta": [{"patience": p, "fraction": f} for p in (3, 5, 10) for f in (0.001, 0.01)],
    # The chance settings share their forecasts (remembered by the curve so far): one fit an epoch.
    "forecast": [
        {"horizon": 10, "min_delta": 0.0, "chance": c, "min_epochs": 10} for c in (1.0, 5.0, 10.0, 20.0)
    ],
}


@dataclass(frozen=True)
class Curve:
    run_id: str
    name: str
    val: list[float | None]
    train: list[float | None]

    @property
    def best(self) -> float:
        return min(v for v in self.val if v is not None and not math.isnan(v))


def full_curves(snaps: Iterable[RunSnapshot]) -> list[Curve]:
    """The recordings a benchmark may read (see the module docstring), oldest first as given."""
    out = []
    for snap in snaps:
        if snap.is_live or snap.damaged or snap.stop_reason not in FULL_REASONS:
            continue
        val = [r.logs.get(MONITOR) for r in snap.history]
        finite = [v for v in val if v is not None and not math.isnan(v) and v >= 0]
        if len(finite) < MIN_EPOCHS or len(finite) != sum(v is not None for v in val):
            continue  # too short, or a negative value: not a loss the rules can read
        out.append(Curve(snap.id, snap.config.name, val, [r.logs.get("loss") for r in snap.history]))
    return out


def _kept_epoch(val: Sequence[float | None], epochs_run: int) -> int:
    """The epoch (0-based) ModelCheckpoint(save_best_only=True) on val_loss keeps after ``epochs_run``."""
    best = None
    kept = 0
    for t, v in enumerate(val[:epochs_run]):
        if v is not None and not math.isnan(v) and (best is None or v < best):
            best, kept = v, t
    return kept


def benchmark(curves: Sequence[Curve]) -> pd.DataFrame:
    """One row per rule and setting: its mean share of epochs trained, its mean val_loss given up
    (relative to each curve's best), how often it stopped, and whether it is on the Pareto front."""
    rows = []
    for name, settings in SETTINGS.items():
        rule = RULES[name]
        for params in settings:
            shares, losses, stops = [], [], 0
            for curve in curves:
                r = rule.replay(Curves(val=curve.val, train=curve.train, mode="min"), params)
                n = len(curve.val)
                kept = _kept_epoch(curve.val, r.epochs_run)
                shares.append(r.epochs_run / n)
                best = curve.best
                given_up = curve.val[kept] - best
                losses.append(given_up / best if best > 0 else given_up)
                stops += r.stopped
            if not curves:
                continue
            rows.append(
                {
                    "rule": rule.short_title(params),
                    "family": rule.label,
                    "epochs trained (share)": sum(shares) / len(shares),
                    "val_loss given up (relative)": sum(losses) / len(losses),
                    "worst given up": max(losses),
                    "stopped on": f"{stops} of {len(curves)}",
                    "settings": json.dumps(params),
                }
            )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["on the Pareto front"] = pareto_front(
            frame["epochs trained (share)"].tolist(), frame["val_loss given up (relative)"].tolist()
        )
    return frame


def pareto_front(costs: Sequence[float], losses: Sequence[float]) -> list[bool]:
    """For each point, whether no other is at least as good on both and better on one (lower is better)."""
    points = list(zip(costs, losses, strict=True))
    return [
        not any(c2 <= c and l2 <= loss and (c2 < c or l2 < loss) for c2, l2 in points) for c, loss in points
    ]
