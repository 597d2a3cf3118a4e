"""The rule benchmark's scatter: epochs trained against val_loss given up, the Pareto front joined."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.charts.figures import HEIGHT

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def benchmark_figure(frame: pd.DataFrame) -> go.Figure:
    """One point per rule and setting (a colour per rule), the front as a line through its points."""
    fig = go.Figure()
    for color, (family, rows) in zip(_COLORS * 3, frame.groupby("family", sort=False), strict=False):
        fig.add_trace(
            go.Scatter(
                x=100 * rows["epochs trained (share)"],
                y=100 * rows["val_loss given up (relative)"],
                mode="markers",
                name=family,
                text=rows["rule"],
                marker={"size": 10, "color": color},
                hovertemplate="%{text}<br>%{x:.1f}% of the epochs, %{y:.2f}% val_loss given up"
                "<extra></extra>",
            )
        )
    front = frame[frame["on the Pareto front"]].sort_values("epochs trained (share)")
    fig.add_trace(
        go.Scatter(
            x=100 * front["epochs trained (share)"],
            y=100 * front["val_loss given up (relative)"],
            mode="lines",
            name="Pareto front",
            line={"color": "#d62728", "dash": "dot", "shape": "hv"},
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        title={"text": "Epochs trained against val_loss given up (means over your full curves)", "x": 0},
        height=HEIGHT + 80,
        xaxis={"title": {"text": "epochs trained (% of the full curve)"}, "ticksuffix": "%"},
        yaxis={
            "title": {"text": "val_loss above the curve's best (%)"},
            "ticksuffix": "%",
            "rangemode": "tozero",
        },
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
