"""The Compare page's figure: the runs' curves of one metric overlaid, their best and stop epochs marked."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.analysis.compare import run_label
from core.charts.figures import HEIGHT, decimate, metric_title
from core.charts.view import ChartView, epoch_ends, smooth, to_time
from core.store.runs import RunSnapshot

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


RAW = ChartView()


def compare_figure(
    snaps: Sequence[RunSnapshot], metric: str = "val_loss", *, max_points: int = 1500, view: ChartView = RAW
) -> go.Figure:
    """One line per run; a star at each run's best epoch, an x at its early-stopping epoch. With
    smoothing, each run's raw line stays faint behind its smoothed one; with wall time, each run is
    placed on its own training time."""
    fig = go.Figure()
    for i, snap in enumerate(snaps):
        color = _PALETTE[i % len(_PALETTE)]
        label = html.escape(run_label(snap))  # Plotly renders tags (<a href>, <b>) in names and hover text
        epochs = np.array([r.epoch for r in snap.history], dtype=float)
        values = np.array([r.logs.get(metric, np.nan) for r in snap.history], dtype=float)
        ends = epoch_ends([r.seconds for r in snap.history])

        def at(x, ends=ends):
            return (
                to_time(np.asarray(x, dtype=float), ends) if view.x == "time" else np.asarray(x, dtype=float)
            )

        if epochs.size:
            if view.smoothing:
                x, y = decimate(epochs, values, max_points)
                faint = {"color": color, "width": 1}
                fig.add_trace(
                    go.Scatter(x=at(x), y=y, mode="lines", name=f"{label} (raw)", line=faint, opacity=0.3,
                               legendgroup=label, showlegend=False, hoverinfo="skip")
                )  # fmt: skip
            x, y = decimate(epochs, smooth(values, view.smoothing), max_points)
            fig.add_trace(
                go.Scatter(x=at(x), y=y, mode="lines", name=label, line={"color": color}, legendgroup=label)
            )
        for epoch, symbol, what in ((snap.best_epoch, "star", "best"), (snap.stopped_epoch, "x", "stopped")):
            if epoch and 0 < epoch <= len(values):
                fig.add_trace(
                    go.Scatter(
                        x=at([epoch]),
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
        xaxis_title=view.x_title,
        yaxis_title=html.escape(metric),
        yaxis_type="log" if view.log_y else None,
        height=HEIGHT + 80,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        hovermode="closest",
        uirevision="compare",
    )
    return fig
