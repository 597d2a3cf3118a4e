"""A Keras callback that decides with a rule's own replay, epoch by epoch.

After each epoch it replays the rule on the curves so far: the epoch the replay stops at is the
epoch the fit stops at, by construction. It keeps the weights of the replay's
``final_weights_epoch`` and puts them back at the end, as Prechelt recommends (the best epoch so
far). A replay is O(epochs), so a fit of n epochs costs O(n^2) comparisons: microseconds per epoch
for the thousands of epochs the app trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from core.stopping.replay import ReplayResult
from core.stopping.rules.rule import Curves, StoppingRule


class RuleCallback(keras.callbacks.Callback):
    def __init__(self, rule: StoppingRule, params: Mapping[str, Any], *, monitor: str = "val_loss"):
        super().__init__()
        # not `params`: Keras sets that attribute (epochs, steps) on every callback
        self.rule, self.rule_params, self.monitor = rule, dict(params), monitor
        self.train_key = monitor.removeprefix("val_")
        self.result: ReplayResult | None = None
        self.stopped_epoch: int | None = None  # 0-based, None while it has not stopped
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.val: list[float | None] = []
        self.train: list[float | None] = []
        self.result, self.stopped_epoch, self.best_weights = None, None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.val.append(_value(logs.get(self.monitor)))
        self.train.append(_value(logs.get(self.train_key)))
        curves = Curves(val=self.val, train=self.train if self.rule.needs_train else ())
        self.result = self.rule.replay_curves(curves, self.rule_params)
        if self.result.final_weights_epoch == len(self.val) - 1:
            self.best_weights = self.model.get_weights()
        if self.result.stopped and self.result.stopped_epoch == len(self.val) - 1:
            self.stopped_epoch = self.result.stopped_epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def callback(rule: StoppingRule, params: Mapping[str, Any], *, monitor: str = "val_loss"):
    """The Keras callback that stops a fit where ``rule.replay`` says it stops."""
    checked = rule.checked(params)
    if rule.keras_callback is not None:
        return rule.keras_callback(checked, monitor)
    return RuleCallback(rule, checked, monitor=monitor)


def _value(v: Any) -> float | None:
    return None if v is None else float(v)
