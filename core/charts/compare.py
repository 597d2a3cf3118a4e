"""The Compare page's figure: the runs' curves of one metric overlaid, their best and stop epochs marked."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.analysis.compare import run_label
from core.charts.figures import HEIGHT, decimate, metric_title
from core.store.runs import RunSnapshot

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


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
            # The metric is a key of the runs' history.jsonl: text, never Plotly's HTML.
            "text": html.escape(metric_title(metric.removeprefix("val_")))
            + (" (validation)" if metric.startswith("val_") else "")
        },
        xaxis_title="epoch",
        yaxis_title=html.escape(metric),
        height=HEIGHT + 80,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        hovermode="closest",
        uirevision="compare",
    )
    return fig
