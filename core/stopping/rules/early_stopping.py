"""Keras' EarlyStopping as a rule: its arguments, its exact replay, and Keras' own callback.

As a rule beside Prechelt's it watches a loss-like monitor (lower is better) and restores the best
weights. For training, its settings live in the run config (``EarlyStoppingConfig``); the
parameters here take their ranges from that one declaration (``core.config.limits``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.config import limits
from core.stopping.replay import ReplayResult, replay_early_stopping
from core.stopping.rules.rule import Curves, Parameter, StoppingRule


def _parameter(name: str, label: str, default: float | int, help: str) -> Parameter:
    b = limits(f"early_stopping.{name}")
    return Parameter(name, label, default, b.low, b.high, help)


def _replay(curves: Curves, p: Mapping[str, Any]) -> ReplayResult:
    return replay_early_stopping(
        curves.val, mode="min", patience=p["patience"], min_delta=p["min_delta"],
        start_from_epoch=p["start_from_epoch"], restore_best_weights=True,
    )  # fmt: skip


def _keras(p: Mapping[str, Any], monitor: str):
    import keras

    return keras.callbacks.EarlyStopping(
        monitor=monitor, mode="min", patience=p["patience"], min_delta=p["min_delta"],
        start_from_epoch=p["start_from_epoch"], restore_best_weights=True,
    )  # fmt: skip


RULE = StoppingRule(
    name="early_stopping",
    label="EarlyStopping: patience",
    description="Keras' rule: stop after `patience` epochs without an improvement of at least min_delta.",
    parameters=(
        _parameter("patience", "Patience", 10, "Epochs without improvement before stopping."),
        _parameter("min_delta", "min_delta", 0.0, "The smallest change that counts as an improvement."),
        _parameter("start_from_epoch", "start_from_epoch", 0, "Warm-up epochs ignored before the watch."),
    ),
    replay_curves=_replay,
    title=lambda p: f"EarlyStopping patience {p['patience']}",
    keras_callback=_keras,
)
