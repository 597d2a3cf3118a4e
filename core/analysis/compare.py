"""Comparing runs: their validation curves overlaid, and their configs side by side."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts.figures import HEIGHT, decimate, metric_title
from core.store.runs import RunSnapshot

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def run_label(snap: RunSnapshot) -> str:
    return f"{snap.config.name} ({snap.id[:6]})"


def compare_figure(
    snaps: Sequence[RunSnapshot], metric: str = "val_loss", *, max_points: int = 1500
) -> go.Figure:
    """One line per run; a star at each run's best epoch, an x at its early-stopping epoch."""
    fig = go.Figure()
    for i, snap in enumerate(snaps):
        color = _PALETTE[i % len(_PALETTE)]
        label = html.escape(run_label(snap))  # Plotly renders tags (<a href>, <b>) in names and hover text
        epochs = np.array([r.epoch for r in snap.history], dtype=float)
        values = np.array([r.logs.get(metric, np.nan) for r in snap.history], dtype=float)
        if epochs.size:
            x, y = decimate(epochs, values, max_points)
            fig.add_trace(
                go.Scatter(x=x, y=y, mode="lines", name=label, line={"color": color}, legendgroup=label)
            )
        for epoch, symbol, what in ((snap.best_epoch, "star", "best"), (snap.stopped_epoch, "x", "stopped")):
            if epoch and 0 < epoch <= len(values):
                fig.add_trace(
                    go.Scatter(
                        x=[epoch],
                        y=[values[epoch - 1]],
                        mode="markers",
                        marker={
                            "symbol": symbol,
                            "size": 13,
                            "color": color,
                            "line": {"width": 1, "color": "#333"},
                        },
                        name=f"{label}: {what} (epoch {epoch})",
                        legendgroup=label,
                        showlegend=False,
                        # The name goes in as data, never into the template (which expands %{...}).
                        text=[label],
                        hovertemplate=f"%{{text}}<br>{what} at epoch {epoch}: %{{y:.5f}}<extra></extra>",
                    )
                )
    fig.update_layout(
        title={
            "text": metric_title(metric.removeprefix("val_"))
            + (" (validation)" if metric.startswith("val_") else "")
        },
        xaxis_title="epoch",
        yaxis_title=metric,
        height=HEIGHT + 80,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        hovermode="closest",
        uirevision="compare",
    )
    return fig


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


def config_table(snaps: Sequence[RunSnapshot]) -> pd.DataFrame:
    """Settings as rows, runs as columns, plus a ``differs`` column; outcomes at the bottom."""
    columns = {}
    for snap in snaps:
        flat = _flat(asdict(snap.config))
        flat.pop("name", None)
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
