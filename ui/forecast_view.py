"""The forecast controls of the run view: whether to draw the forecast band, and how far ahead.

A run with a forecast stopping rule starts with the band on, at that rule's horizon and min_delta,
so the band shows what the rule sees; any other run starts with it off.
"""

from __future__ import annotations

import streamlit as st

from core.analysis.forecast import MAX_HORIZON, CurveForecast, forecast_run, why_none
from core.store.runs import RunSnapshot
from ui.text import md

DEFAULT_HORIZON = 10


def _rule_settings(snap: RunSnapshot) -> tuple[int, float] | None:
    for rule in snap.config.stopping_rules:
        if rule.name == "forecast":
            return int(rule.params["horizon"]), float(rule.params["min_delta"])
    return None


def forecast_controls(snap: RunSnapshot, key: str) -> tuple[int, float] | None:
    """The toggle and horizon in one row: (horizon, min_delta) when the toggle is on.

    The widgets are the run's own (its id in their keys): another run opened in the same tab starts
    from its own defaults, not from the last run's switch and horizon. They are drawn outside the live
    view's ticking fragment (a widget re-sent every tick costs the server more than the chart does);
    ``forecast_shown`` makes the forecast itself at each tick.
    """
    key = f"{key}.{snap.id}"
    from_rule = _rule_settings(snap)
    horizon_default, min_delta = from_rule or (DEFAULT_HORIZON, snap.config.early_stopping.min_delta)
    c1, c2, _ = st.columns([1, 1, 1])
    on = c1.toggle(
        "Forecast",
        value=from_rule is not None,
        key=f"{key}.forecast",
        help=(
            "Where the monitored curve is going: learning-curve families fitted to the epochs so far "
            "(Domhan et al., 2015), with a band over the next epochs and the chance of beating the best."
        ),
    )
    horizon = c2.number_input(
        "Forecast horizon (epochs)",
        min_value=1,
        max_value=MAX_HORIZON,
        value=horizon_default,
        step=1,
        key=f"{key}.forecast_horizon",
        disabled=not on,
    )
    return (int(horizon), min_delta) if on else None


def forecast_shown(snap: RunSnapshot, settings: tuple[int, float] | None) -> CurveForecast | None:
    """The run's forecast for the settings ``forecast_controls`` gave, with its sentence (or why there
    is none) as a caption; nothing when the forecast is off."""
    if settings is None:
        return None
    forecast = forecast_run(snap, *settings)
    st.caption(md(why_none(snap) if forecast is None else forecast.sentence()))
    return forecast
