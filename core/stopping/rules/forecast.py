"""Stop when the forecast of the curve gives little chance of an improvement in the next epochs.

After each epoch (from ``min_epochs`` finite values on) ``core.stopping.curve_forecast`` fits its
ensemble of learning-curve families to the monitored values so far and samples the next ``horizon``
epochs; the fit stops when the chance that one of them beats the best so far by more than
``min_delta`` (as EarlyStopping counts an improvement) falls below ``chance`` percent. An epoch
without a finite value is not judged. It does not restore weights (the model kept is
ModelCheckpoint's). The exported script embeds the forecast module as it is, so the script decides
with the same code.

A replay forecasts every epoch of the recording: 3-6 ms each at a horizon of 10, ~17 ms at 1,000
(bench/forecast_calibration.py). The chances are remembered by the curve so far (under a lock: a run
training in a thread and a page replaying in another share them), so the live callback, which replays
the whole curve after each epoch, forecasts only its newest epoch.
"""

from __future__ import annotations

import hashlib
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.codegen import module_source
from core.stopping import curve_forecast
from core.stopping.replay import ReplayResult, kept_as_trained
from core.stopping.rules.rule import Curves, Parameter, StoppingRule

_CACHE_SIZE = 50_000
_MISSING = object()
_lock = threading.Lock()
_chances: OrderedDict[tuple, float | None] = OrderedDict()


def _remembered(
    digest: bytes, values: Sequence[float | None], end: int, mode: str, horizon: int, delta: float
):
    """The chance for ``values[:end]``, remembered under its settings and ``digest`` (of that prefix)."""
    key = (mode, horizon, float(delta), digest)
    with _lock:
        got = _chances.get(key, _MISSING)
        if got is not _MISSING:
            _chances.move_to_end(key)
            return got
    chance = curve_forecast.chance_of_improvement(list(values[:end]), mode, horizon, delta)
    with _lock:
        _chances[key] = chance
        while len(_chances) > _CACHE_SIZE:
            _chances.popitem(last=False)
    return chance


def replay_forecast(
    values: Sequence[float | None],
    mode: str,
    *,
    horizon: int,
    min_delta: float,
    chance: float,
    min_epochs: int,
) -> ReplayResult:
    """The first epoch whose forecast chance of an improvement is below ``chance`` percent
    (0-based; ``criterion``: the chance in percent, NaN where not judged)."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be min or max; got {mode!r}")
    digest = hashlib.blake2b(digest_size=16)  # of the values so far; the settings are in the key
    criterion: list[float] = []
    seen = 0
    best = best_epoch = None
    stop = None
    for t, v in enumerate(values):
        value = None if v is None else float(v)
        digest.update(struct.pack("<d", math.nan if value is None else value))
        if value is None or not math.isfinite(value):
            criterion.append(math.nan)
            continue
        seen += 1
        if best is None or (value < best if mode == "min" else value > best):
            best, best_epoch = value, t
        if seen < min_epochs:
            criterion.append(math.nan)
            continue
        got = _remembered(digest.digest(), values, t + 1, mode, horizon, min_delta)
        criterion.append(math.nan if got is None else 100.0 * got)
        if got is not None and 100.0 * got < chance:
            stop = t
            break
    return kept_as_trained(
        len(values),
        stop,
        rule=f"forecast {chance:g}% in {horizon}",
        criterion=criterion,
        best=best,
        best_epoch=best_epoch,
    )


def _replay(curves: Curves, p: Mapping[str, Any]) -> ReplayResult:
    return replay_forecast(
        curves.val,
        curves.mode,
        horizon=p["horizon"],
        min_delta=p["min_delta"],
        chance=p["chance"],
        min_epochs=p["min_epochs"],
    )


_CLASS = '''
class ForecastStopping(keras.callbacks.Callback):
    """Stops once the forecast of the monitored curve (chance_of_improvement above: an
    ensemble of learning-curve families fitted to the epochs so far) gives less than
    `chance` percent that one of the next `horizon` epochs beats the best so far by
    more than `min_delta`. Judged from `min_epochs` finite values on; an epoch
    without a finite value is not judged."""

    def __init__(self, monitor, mode, horizon, min_delta, chance, min_epochs):
        super().__init__()
        self.monitor, self.mode, self.horizon = monitor, mode, horizon
        self.min_delta, self.chance, self.min_epochs = min_delta, chance, min_epochs
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_train_begin(self, logs=None):
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        self.values.append(None if value is None else float(value))
        if value is None or not math.isfinite(value):
            return
        seen = sum(v is not None and math.isfinite(v) for v in self.values)
        if seen < self.min_epochs:
            return
        p = chance_of_improvement(self.values, self.mode, self.horizon, self.min_delta)
        if p is not None and 100.0 * p < self.chance:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            chance = f"{100 * p:.3g}% chance of an improvement"
            print(f"Epoch {epoch + 1}: {chance}; stopping.")
'''

SCRIPT_CLASS = module_source(Path(curve_forecast.__file__)) + "\n\n" + _CLASS.strip()

RULE = StoppingRule(
    name="forecast",
    label="Forecast: chance of an improvement",
    description=(
        "Stop when a forecast of the curve gives less than `chance` % that one of the next `horizon` "
        "epochs beats the best by `min_delta` (learning-curve extrapolation, Domhan et al. 2015)."
    ),
    parameters=(
        Parameter("horizon", "Horizon (epochs)", 10, 1, 1000, "How many epochs ahead the forecast looks."),
        Parameter(
            "min_delta",
            "Forecast min_delta",
            0.0,
            0.0,
            1e9,
            "An improvement beats the best by more than this.",
        ),
        Parameter("chance", "Stop below (% chance)", 5.0, 0.0, 100.0, "Stop when the chance is below this."),
        Parameter(
            "min_epochs",
            "Forecast from epoch",
            10,
            curve_forecast.MIN_POINTS,
            1_000_000,
            "Values needed before the forecast judges.",
        ),
    ),  # fmt: skip
    replay_curves=_replay,
    title=lambda p: (
        f"Forecast <{p['chance']:g}% in {p['horizon']}: chance of an improvement in the next epochs"
    ),
    script_class=SCRIPT_CLASS,
    script_imports=("import math", "import numpy as np"),
    script_call=lambda p, monitor, mode: (
        "ForecastStopping",
        {
            "monitor": monitor,
            "mode": mode,
            "horizon": p["horizon"],
            "min_delta": float(p["min_delta"]),
            "chance": float(p["chance"]),
            "min_epochs": p["min_epochs"],
        },
    ),
    explain=lambda p, r: (
        f"{r.criterion[r.stopped_epoch]:.3g}% chance that one of the next {p['horizon']} epochs beats "
        f"the best, {r.best:.5g}, by more than {p['min_delta']:g} (below {p['chance']:g}%)"
    ),
)
