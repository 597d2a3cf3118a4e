"""Comparing runs: their validation curves overlaid, and their configs side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd

from core.store.runs import RunSnapshot


def run_label(snap: RunSnapshot) -> str:
    return f"{snap.config.name} ({snap.id[:6]})"


def common_metrics(snaps: Sequence[RunSnapshot]) -> list[str]:
    """Metrics every selected run logged, validation ones first."""
    sets = [set(s.history[-1].logs) if s.history else set() for s in snaps]
    shared = set.intersection(*sets) if sets else set()
    return sorted(shared, key=lambda k: (not k.startswith("val_"), k))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def rules_text(rules) -> str:
    """A run's stopping rules in one cell, exactly: ``prechelt_gl alpha=5.0; prechelt_up s=3 k=5``."""
    if not rules:
        return "none"
    return "; ".join(" ".join([r.name, *(f"{k}={v!r}" for k, v in r.params.items())]) for r in rules)


def config_table(snaps: Sequence[RunSnapshot]) -> pd.DataFrame:
    """Settings as rows, runs as columns, plus a ``differs`` column; outcomes at the bottom."""
    columns = {}
    for snap in snaps:
        flat = _flat(asdict(snap.config))
        flat.pop("name", None)
        flat["stopping_rules"] = rules_text(snap.config.stopping_rules)
        flat.update(
            {
                "result.status": snap.status_label,
                "result.epochs run": len(snap.history),
                "result.best epoch": snap.best_epoch,
                "result.best value": snap.best_value,
                "result.stop reason": snap.stop_label,
                **{f"result.test {k}": v for k, v in snap.test_metrics.items()},
            }
        )
        columns[run_label(snap)] = flat
    table = pd.DataFrame(columns)
    table = table.astype(object).where(table.notna(), None)
    table["differs"] = [len({repr(v) for v in row}) > 1 for row in table.itertuples(index=False)]
    table.index.name = "setting"
    return table
