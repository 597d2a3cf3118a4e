"""The forecast of a run's monitored curve, as the run view draws it: a band over the next epochs and
the chance that one of them beats the best so far.

The numbers come from ``core.stopping.curve_forecast`` (the same code as the forecast stopping rule).
The band is the central ``COVERAGE`` of the sampled values of each future epoch, with their median
as a line; bench/forecast_calibration.py measures how often such a band held what happened next on
recorded full curves. A forecast is remembered by (run, epochs so far, horizon, min_delta), so a
live view ticking twice a second fits the curve once per epoch.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.metrics import resolve_mode
from core.stopping import curve_forecast
from core.store.runs import RunSnapshot

COVERAGE = 0.8  # the band holds the middle 80% of the forecast's samples
MIN_EPOCHS = curve_forecast.MIN_POINTS
MAX_HORIZON = 1000
_REMEMBERED = 64


@dataclass(frozen=True)
class CurveForecast:
    monitor: str
    mode: str  # "min" or "max"
    horizon: int
    min_delta: float
    epochs: np.ndarray  # the future epochs, 1-based
    low: np.ndarray
    median: np.ndarray
    high: np.ndarray
    best: float
    chance: float  # that one of the next ``horizon`` epochs beats ``best`` by more than ``min_delta``
    last_epoch: int  # the last epoch with a finite value, and that value: the band starts from it
    last_value: float

    def sentence(self) -> str:
        """What the forecast says, in words: the chance, and what the band is."""
        by = f" by more than {abs(self.min_delta):g}" if self.min_delta else ""  # as EarlyStopping: abs
        return (
            f"Forecast: {100 * self.chance:.0f}% chance that one of the next {self.horizon} epochs beats "
            f"the best {self.monitor} so far, {self.best:.4g}{by}. The band holds "
            f"{100 * COVERAGE:.0f}% of the forecast's values for each epoch (learning-curve families "
            "fitted to the epochs so far)."
        )


_lock = threading.Lock()
_cache: OrderedDict[tuple, CurveForecast | None] = OrderedDict()


def why_none(snap: RunSnapshot) -> str:
    """Why ``forecast_run`` has no forecast for this run, in a sentence."""
    es = snap.config.early_stopping
    if resolve_mode(es.monitor, es.mode) is None:
        return f"No forecast: whether {es.monitor} is better lower or higher is not known (set its mode)."
    values = [r.logs.get(es.monitor) for r in snap.history]
    if snap.history and all(v is None for v in values):
        return f"No forecast: this run does not log {es.monitor}."
    return f"The forecast needs {MIN_EPOCHS} epochs with a finite value of {es.monitor}."


def forecast_run(snap: RunSnapshot, horizon: int, min_delta: float = 0.0) -> CurveForecast | None:
    """The forecast of the run's EarlyStopping monitor, or None (``why_none`` says why): too few
    finite values (``MIN_EPOCHS``), or a monitor whose direction is unknown."""
    if not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"horizon: must be from 1 to {MAX_HORIZON}; got {horizon!r}")
    es = snap.config.early_stopping
    mode = resolve_mode(es.monitor, es.mode)
    if mode is None or not snap.history:
        return None
    # The key is read from the last record only: a live view asks on every tick, and the whole
    # curve is read on a miss, once per new epoch.
    last = snap.history[-1].logs.get(es.monitor)
    key = (snap.id, len(snap.history), last, es.monitor, mode, horizon, float(min_delta))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    values = [r.logs.get(es.monitor) for r in snap.history]
    made = _forecast(values, es.monitor, mode, horizon, float(min_delta))
    with _lock:
        _cache[key] = made
        while len(_cache) > _REMEMBERED:
            _cache.popitem(last=False)
    return made


def _forecast(
    values: list[float | None], monitor: str, mode: str, horizon: int, min_delta: float
) -> CurveForecast | None:
    sampled = curve_forecast.forecast_samples(values, mode, horizon)
    if sampled is None:
        return None
    epochs, draws = sampled
    chance = curve_forecast.share_beating_best(draws, values, mode, min_delta)
    tail = (1.0 - COVERAGE) / 2
    low, median, high = np.quantile(draws, [tail, 0.5, 1.0 - tail], axis=1)
    finite = [(e, float(v)) for e, v in enumerate(values, 1) if v is not None and math.isfinite(v)]
    best = (min if mode == "min" else max)(v for _, v in finite)
    last_epoch, last_value = finite[-1]
    return CurveForecast(
        monitor, mode, horizon, min_delta, epochs, low, median, high, best, chance, last_epoch, last_value
    )
