"""A Keras callback that decides with a rule's own replay, epoch by epoch.

After each epoch it replays the rule on the curves so far: the epoch the replay stops at is the
epoch the fit stops at, by construction. On its own (``restore=True``) it keeps the weights of the
replay's ``final_weights_epoch`` and puts them back at the end, as Prechelt recommends (the best
epoch so far). In the app's runs (``restore=False``) a rule only decides when to stop: the model
kept is ModelCheckpoint's, and EarlyStopping's ``restore_best_weights`` is not overruled.

A replay is O(epochs), so a fit of n epochs costs O(n^2): measured per epoch-end replay
(bench/stopping_rule_cost.py) 0.01-0.06 ms at 100 epochs, 0.06-0.56 ms at 1,000 and 0.6-5.5 ms at
10,000 (PQ the dearest), against epochs of 50 ms and more. Past tens of thousands of epochs a rule
should carry its state forward instead of replaying (not done yet).

>>> from core.stopping.rules.registry import RULES
>>> cb = RuleCallback(RULES["stopping_threshold"], {"value": 0.5})
>>> cb.monitor, cb.mode
('val_loss', 'min')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

from core.stopping.replay import ReplayResult
from core.stopping.rules.rule import Curves, StoppingRule


class RuleCallback(keras.callbacks.Callback):
    def __init__(
        self,
        rule: StoppingRule,
        params: Mapping[str, Any],
        *,
        monitor: str = "val_loss",
        mode: str = "min",
        restore: bool = True,
        skip_epoch: Callable[[], bool] | None = None,
        epoch_seconds: Callable[[], float] | None = None,
        monitors: Mapping[str, str] | None = None,
    ):
        super().__init__()
        # not `params`: Keras sets that attribute (epochs, steps) on every callback
        self.rule, self.rule_params, self.monitor, self.mode = rule, dict(params), monitor, mode
        self.train_key = monitor.removeprefix("val_")
        self.restore = restore
        self.skip_epoch = skip_epoch  # an epoch cut short (Stop mid-epoch) is not judged
        # The epoch's training time as the run records it (the engine's clock); alone, its own.
        self.epoch_seconds = epoch_seconds
        self.monitors = dict(monitors or {})  # a rule on several metrics: each one's mode
        self.result: ReplayResult | None = None
        self.stopped_epoch: int | None = None  # 0-based, None while it has not stopped
        self.best_weights = None
        self._resumed: tuple[list, list, list, dict[str, list]] | None = None
        self._started = 0.0

    def resume_from(
        self,
        val: Sequence[float | None],
        train: Sequence[float | None],
        seconds: Sequence[float] = (),
        others: Mapping[str, Sequence[float | None]] | None = None,
    ) -> None:
        """The curves of the epochs trained before a resume: the replay goes on from them."""
        self._resumed = (
            list(val),
            list(train),
            list(seconds),
            {k: list(v) for k, v in (others or {}).items()},
        )

    def on_train_begin(self, logs=None):
        self.val: list[float | None] = []
        self.train: list[float | None] = []
        self.seconds: list[float] = []
        self.others: dict[str, list[float | None]] = {m: [] for m in self.monitors}
        if self._resumed is not None:
            val, train, seconds, others = self._resumed
            self.val, self.train, self.seconds = list(val), list(train), list(seconds)
            self.others = {m: list(others.get(m, [])) for m in self.monitors}
        self.result, self.stopped_epoch, self.best_weights = None, None, None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.skip_epoch is not None and self.skip_epoch():
            return
        logs = logs or {}
        self.val.append(_value(logs.get(self.monitor)))
        self.train.append(_value(logs.get(self.train_key)))
        took = self.epoch_seconds() if self.epoch_seconds is not None else time.perf_counter() - self._started
        self.seconds.append(took)
        for name, values in self.others.items():
            values.append(_value(logs.get(name)))
        curves = Curves(
            val=self.val,
            train=self.train if self.rule.needs_train else (),
            mode=self.mode,
            seconds=self.seconds,
            others=self.others,
            modes=self.monitors,
        )
        self.result = self.rule.replay_curves(curves, self.rule_params)
        if self.restore and self.result.final_weights_epoch == len(self.val) - 1:
            self.best_weights = self.model.get_weights()
        if self.result.stopped and self.result.stopped_epoch == len(self.val) - 1:
            self.stopped_epoch = self.result.stopped_epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore and self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def because(self) -> str:
        """Why it stopped the fit, for the run's status line (only once it has)."""
        assert self.result is not None and self.stopped_epoch is not None
        return self.rule.because(self.rule_params, self.result)


def callback(
    rule: StoppingRule,
    params: Mapping[str, Any],
    *,
    monitor: str = "val_loss",
    mode: str = "min",
    monitors: Mapping[str, str] | None = None,
):
    """The Keras callback that stops a fit where ``rule.replay`` says it stops (``monitors``: the
    metrics and modes of a rule on several metrics)."""
    checked = rule.checked(params)
    if rule.loss_only and mode != "min":
        raise ValueError(f"{rule.label} reads a loss (lower is better); {monitor} is higher-is-better.")
    if rule.keras_callback is not None:
        return rule.keras_callback(checked, monitor)
    return RuleCallback(rule, checked, monitor=monitor, mode=mode, monitors=monitors)


def _value(v: Any) -> float | None:
    return None if v is None else float(v)
