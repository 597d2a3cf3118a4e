"""The controls of how a chart is read (core/charts/view.py), the same on every page that plots a run."""

from __future__ import annotations

import streamlit as st

from core.charts.view import MAX_SMOOTHING, ChartView

_X = {"epoch": "epoch", "time": "wall time"}


def chart_view(key: str) -> ChartView:
    """Smoothing, log scale and the x axis, in one row; ``key`` prefixes the widgets of one page."""
    c1, c2, c3 = st.columns([3, 1, 2])
    smoothing = c1.slider(
        "Smoothing",
        0.0,
        MAX_SMOOTHING,
        step=0.01,
        key=f"{key}.smoothing",
        help="TensorBoard's: a moving average debiased at its start; the raw curve stays faint behind.",
    )
    log_y = c2.toggle("Log scale", key=f"{key}.log_y", help="A logarithmic y axis.")
    x = c3.radio(
        "x axis",
        list(_X),
        format_func=_X.get,
        key=f"{key}.x",
        horizontal=True,
        help="Wall time: the training time at the end of each epoch, validation included.",
    )
    return ChartView(smoothing=float(smoothing), log_y=bool(log_y), x=x)
