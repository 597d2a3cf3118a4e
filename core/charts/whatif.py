"""The What-if page's figures: the replayed decisions on the recorded curve, and the patience trade-off."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from core.analysis.whatif import WhatIf, series
from core.charts.figures import HEIGHT, metric_title
from core.charts.view import ChartView, epoch_ends, smooth
from core.charts.view import apply as apply_view
from core.store.runs import RunSnapshot

RAW = ChartView()


def whatif_figure(snap: RunSnapshot, w: WhatIf, view: ChartView = RAW) -> go.Figure:
    """The recorded curve with the replayed stop, final weights and kept checkpoint marked (on the raw
    values the replay reads; with smoothing, the raw curve stays faint behind the smoothed one)."""
    es, ck = w.early_stopping, w.checkpoint
    epochs = np.arange(1, w.epochs_recorded + 1, dtype=float)
    fig = go.Figure()
    keys = [es.monitor] + ([ck.monitor] if ck.monitor != es.monitor else [])
    for key, color in zip(keys, ("#ff7f0e", "#9467bd")):
        y = np.array([np.nan if v is None else v for v in series(snap, key)], dtype=float)
        if view.smoothing:
            fig.add_trace(go.Scatter(x=epochs, y=y, mode="lines", name=f"{key} (raw)", opacity=0.3,
                                     line={"color": color, "width": 1}, hoverinfo="skip"))  # fmt: skip
        fig.add_trace(
            go.Scatter(x=epochs, y=smooth(y, view.smoothing), mode="lines", name=key, line={"color": color})
        )
    y_es = np.array([np.nan if v is None else v for v in series(snap, es.monitor)], dtype=float)
    y_ck = np.array([np.nan if v is None else v for v in series(snap, ck.monitor)], dtype=float)
    if w.epochs_run < w.epochs_recorded:
        fig.add_vrect(
            x0=w.epochs_run + 0.5, x1=w.epochs_recorded + 0.5, fillcolor="rgba(0,0,0,0.06)", line_width=0
        )
    if w.stop_epoch:
        fig.add_vline(x=w.stop_epoch, line={"color": "#d62728", "dash": "dot"})
        fig.add_annotation(
            x=w.stop_epoch,
            y=1,
            yref="paper",
            text=f"stops at {w.stop_epoch}",
            showarrow=False,
            xanchor="left",
            font={"color": "#d62728"},
        )
    if snap.stopped_epoch:
        fig.add_vline(x=snap.stopped_epoch, line={"color": "#999", "dash": "dash"})
    for epoch, arr, symbol, name, color in (
        (w.final_weights_epoch, y_es, "star", "final weights", "#f2b701"),
        (w.kept_epoch, y_ck, "diamond", "kept checkpoint", "#2ca02c"),
    ):
        if epoch:
            fig.add_trace(
                go.Scatter(
                    x=[epoch],
                    y=[arr[epoch - 1]],
                    mode="markers",
                    name=f"{name} (epoch {epoch})",
                    marker={
                        "symbol": symbol,
                        "size": 14,
                        "color": color,
                        "line": {"width": 1, "color": "#333"},
                    },
                )
            )
    fig.update_layout(
        title={"text": f"What-if on {metric_title(es.monitor.removeprefix('val_'))}"},
        xaxis_title="epoch",
        height=HEIGHT + 40,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        uirevision=f"whatif-{snap.id}",
    )
    if view.log_y or view.x == "time":
        ends = epoch_ends([r.seconds for r in snap.history[: w.epochs_recorded]])
        return go.Figure(apply_view(fig.to_dict(), view, ends))
    return fig


def _template_text(text: str) -> str:
    """A logged key inside a Plotly hover template: HTML-escaped and no %{...} expansion."""
    return html.escape(text).replace("%", "%%").replace("{", "&#123;")


def sweep_figure(frame, knee, *, monitor: str) -> go.Figure:
    """Epochs trained against the monitor's value at the final weights, one line per min_delta."""
    import pandas as pd

    fig = go.Figure()
    for delta, rows in frame.groupby("min_delta", sort=True):
        rows = rows.sort_values("patience")
        fig.add_trace(
            go.Scatter(
                x=rows["epochs_run"].to_numpy(),
                y=rows["final_value"].to_numpy(),
                mode="lines+markers",
                marker={"size": 5},
                name=f"min_delta {delta:g}",
                customdata=np.stack(
                    [rows["patience"].to_numpy(), rows["exceeds_recording"].to_numpy()], axis=1
                ),
                hovertemplate="patience %{customdata[0]}<br>%{x} epochs<br>"
                + _template_text(monitor)
                + " %{y:.5f}<extra>min_delta "
                + f"{delta:g}</extra>",
            )
        )
    if knee is not None and isinstance(knee, pd.Series):
        fig.add_trace(
            go.Scatter(
                x=[knee["epochs_run"]],
                y=[knee["final_value"]],
                mode="markers",
                name=f"suggested: patience {int(knee['patience'])}",
                marker={
                    "symbol": "star",
                    "size": 16,
                    "color": "#f2b701",
                    "line": {"width": 1, "color": "#333"},
                },
            )
        )
    fig.update_layout(
        title={"text": "Patience trade-off (restore_best_weights on)"},
        xaxis_title="epochs trained",
        yaxis_title=f"{monitor} of the final weights",
        height=HEIGHT + 40,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        uirevision="sweep",
    )
    return fig


def schedule_figure(
    snap: RunSnapshot, recorded: list[float], replayed: list[float], exact_until: int
) -> go.Figure:
    """The learning rate each epoch trained with, against the one a ReduceLROnPlateau setting gives on
    the recorded curve; past ``exact_until`` the replay no longer describes a run (shaded)."""
    epochs = np.arange(1, len(replayed) + 1, dtype=float)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=recorded,
            mode="lines",
            name="recorded",
            line={"shape": "hv", "width": 3, "color": "#1f77b4"},
        )
    )
    fig.add_trace(go.Scatter(x=epochs, y=replayed, mode="lines", name="this setting",
                             line={"shape": "hv", "dash": "dash", "color": "#ff7f0e"}))  # fmt: skip
    if exact_until < len(replayed):
        fig.add_vrect(
            x0=exact_until + 0.5, x1=len(replayed) + 0.5, fillcolor="rgba(0,0,0,0.06)", line_width=0
        )
        fig.add_annotation(
            x=exact_until + 0.5, y=1, yref="paper", text="rates differ from here", showarrow=False,
            xanchor="left", font={"color": "#555555"},
        )  # fmt: skip
    fig.update_layout(
        title={"text": "Learning rate", "x": 0},
        height=HEIGHT,
        xaxis={"title": {"text": "epoch"}},
        yaxis={"title": {"text": "learning rate"}, "type": "log", "hoverformat": ".4g"},
        legend={"orientation": "h", "y": -0.3},
        hovermode="x unified",
        uirevision=snap.id,
    )
    return fig
