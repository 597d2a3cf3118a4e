"""Prechelt's stopping criteria, replayed on recorded curves as alternatives to Keras' EarlyStopping.

L. Prechelt, "Early Stopping -- but when?", in Neural Networks: Tricks of the Trade, 1998:

* ``GL_alpha`` (generalization loss): ``GL(t) = 100 * (E_va(t) / E_opt(t) - 1)`` with ``E_opt(t)``
  the lowest validation error up to epoch t; stop after the first epoch with ``GL(t) > alpha``.
* ``PQ_alpha`` (progress quotient): training strips of ``k`` epochs (default 5);
  ``P_k(t) = 1000 * (sum of E_tr over the strip / (k * min of E_tr over the strip) - 1)``; evaluated
  only at the end of each strip (epochs k, 2k, ... counted from 1); stop when ``GL(t) / P_k(t) > alpha``.
* ``UP_s``: stop at the end of a strip when the validation error has increased in ``s`` successive
  strips, each strip end compared with the previous strip end (``E_va(t) > E_va(t - k)``). The first
  strip end has nothing to compare with (Prechelt's ``t - k`` would be epoch 0, before training).

All three apply to **error measures** (losses, error rates): lower is better and values must be
non-negative, since GL and P_k are ratios. For an accuracy pass ``1 - accuracy``; these functions
refuse negative values rather than guess a direction. As Prechelt recommends, the weights kept are
those of the epoch with the lowest validation error so far (``final_weights_epoch``).

Missing (None) or NaN values are not evaluated: such an epoch neither stops training nor updates
``E_opt``; a strip with a missing training value is not evaluated; an UP comparison with a missing
end breaks the run of increases. Edge cases of the ratios: ``E_opt = 0`` gives GL = 0 when
``E_va = 0`` and +inf otherwise; a strip whose minimum training error is 0 has ``P_k = +inf``
(PQ = 0) unless the whole strip is 0 (``P_k = 0``, PQ = +inf when GL > 0, else 0).

Epochs are 0-based, results are :class:`core.replay.ReplayResult` (``wait`` empty, the criterion per
epoch in ``criterion``, NaN where it was not evaluated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.stopping.replay import ReplayResult

_NAN = math.nan


def _clean(values: Sequence[float | None], name: str) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        f = float(v)
        if math.isnan(f):
            out.append(None)
            continue
        if f < 0:
            raise ValueError(
                f"Prechelt's criteria need a non-negative error measure; {name} holds {f!r} "
                "(for an accuracy, pass 1 - accuracy)"
            )
        out.append(f)
    return out


def _gl(value: float, e_opt: float) -> float:
    if e_opt > 0:
        return 100.0 * (value / e_opt - 1.0)
    return 0.0 if value == 0 else math.inf


def _progress(strip: list[float], k: int) -> float:
    low = min(strip)
    total = sum(strip)
    if low > 0:
        return 1000.0 * (total / (k * low) - 1.0)
    return math.inf if total > 0 else 0.0


class _Best:
    """Lowest validation error so far (first epoch on ties) and the improvements."""

    def __init__(self):
        self.value: float | None = None
        self.epoch: int | None = None
        self.improved: list[int] = []

    def update(self, epoch: int, value: float | None) -> None:
        if value is not None and (self.value is None or value < self.value):
            self.value, self.epoch = value, epoch
            self.improved.append(epoch)


def _finish(rule: str, n: int, stop: int | None, best: _Best, crit: list[float]) -> ReplayResult:
    best_epoch = best.epoch
    epochs_run = n if stop is None else stop + 1
    final = best_epoch if best_epoch is not None else (epochs_run - 1 if epochs_run else None)
    return ReplayResult(
        epochs_run=epochs_run,
        stopped_epoch=0 if stop is None else stop,
        best_epoch=0 if best_epoch is None else best_epoch,
        final_weights_epoch=final,
        stopped=stop is not None,
        best=best.value,
        wait=[],
        epochs_saved=n - epochs_run,
        improved_epochs=list(best.improved),
        rule=rule,
        criterion=crit,
    )


def replay_gl(val: Sequence[float | None], alpha: float) -> ReplayResult:
    """``GL_alpha``: stop after the first epoch whose generalization loss exceeds ``alpha`` percent."""
    vals = _clean(val, "val")
    best = _Best()
    crit: list[float] = []
    for t, v in enumerate(vals):
        best.update(t, v)
        if v is None:
            crit.append(_NAN)
            continue
        gl = _gl(v, best.value)
        crit.append(gl)
        if gl > alpha:
            return _finish(f"GL_{alpha:g}", len(vals), t, best, crit)
    return _finish(f"GL_{alpha:g}", len(vals), None, best, crit)


def replay_pq(
    train: Sequence[float | None], val: Sequence[float | None], alpha: float, k: int = 5
) -> ReplayResult:
    """``PQ_alpha``: at each strip end, stop when ``GL / P_k`` exceeds ``alpha``."""
    if len(train) != len(val):
        raise ValueError(f"train and val differ in length ({len(train)} vs {len(val)})")
    if k < 1:
        raise ValueError("strip length k must be at least 1")
    tr = _clean(train, "train")
    vals = _clean(val, "val")
    best = _Best()
    crit: list[float] = []
    for t, v in enumerate(vals):
        best.update(t, v)
        strip = tr[t - k + 1 : t + 1] if t + 1 >= k else []
        if (t + 1) % k or v is None or any(x is None for x in strip):
            crit.append(_NAN)
            continue
        gl = _gl(v, best.value)
        p = _progress(strip, k)
        if gl == 0:
            pq = 0.0
        elif p == 0:
            pq = math.inf
        else:
            pq = gl / p
        crit.append(pq)
        if pq > alpha:
            return _finish(f"PQ_{alpha:g}", len(vals), t, best, crit)
    return _finish(f"PQ_{alpha:g}", len(vals), None, best, crit)


def replay_up(val: Sequence[float | None], s: int, k: int = 5) -> ReplayResult:
    """``UP_s``: stop at a strip end when the validation error rose over ``s`` successive strips.

    ``criterion`` holds the current run of successive increases at each strip end.
    """
    if s < 1 or k < 1:
        raise ValueError("s and k must be at least 1")
    vals = _clean(val, "val")
    best = _Best()
    crit: list[float] = []
    run = 0
    for t, v in enumerate(vals):
        best.update(t, v)
        if (t + 1) % k:
            crit.append(_NAN)
            continue
        prev = vals[t - k] if t - k >= 0 else None
        run = run + 1 if (v is not None and prev is not None and v > prev) else 0
        crit.append(float(run))
        if run >= s:
            return _finish(f"UP_{s}", len(vals), t, best, crit)
    return _finish(f"UP_{s}", len(vals), None, best, crit)


# The exported script's versions: plain Keras, the same arithmetic on the same Python floats.
SCRIPT_GL = '''
class GeneralizationLoss(keras.callbacks.Callback):
    """Prechelt's GL_alpha ("Early Stopping -- but when?", 1998): stops after the first
    epoch whose validation loss is more than `alpha` percent above the lowest so
    far. Missing or NaN values are not judged."""

    def __init__(self, monitor, alpha):
        super().__init__()
        self.monitor, self.alpha = monitor, alpha
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_train_begin(self, logs=None):
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or value != value:  # missing or NaN
            return
        if self.best is None or value < self.best:
            self.best = value
        if self.best > 0:
            gl = 100.0 * (value / self.best - 1.0)
        else:
            gl = 0.0 if value == 0 else float("inf")
        if gl > self.alpha:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(f"Epoch {epoch + 1}: GL {gl:.3g}% > {self.alpha:g}%; stopping.")
'''

SCRIPT_PQ = '''
class ProgressQuotient(keras.callbacks.Callback):
    """Prechelt's PQ_alpha (1998): at the end of each strip of `k` epochs, stops when
    the generalization loss GL divided by the training progress P_k exceeds `alpha`.
    P_k = 1000 * (sum of the strip's training losses / (k * their minimum) - 1)."""

    def __init__(self, monitor, alpha, k):
        super().__init__()
        self.monitor, self.alpha, self.k = monitor, alpha, k
        self.train_key = monitor.removeprefix("val_")
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_train_begin(self, logs=None):
        self.best, self.train = None, []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value, train = logs.get(self.monitor), logs.get(self.train_key)
        self.train.append(None if train is None or train != train else train)
        if value is None or value != value:
            return
        if self.best is None or value < self.best:
            self.best = value
        strip = self.train[-self.k :]
        if len(self.train) % self.k or None in strip:
            return
        if self.best > 0:
            gl = 100.0 * (value / self.best - 1.0)
        else:
            gl = 0.0 if value == 0 else float("inf")
        low, total = min(strip), sum(strip)
        if low > 0:
            progress = 1000.0 * (total / (self.k * low) - 1.0)
        else:
            progress = float("inf") if total > 0 else 0.0
        if gl == 0:
            pq = 0.0
        elif progress == 0:
            pq = float("inf")
        else:
            pq = gl / progress
        if pq > self.alpha:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(f"Epoch {epoch + 1}: PQ {pq:.3g} > {self.alpha:g}; stopping.")
'''

SCRIPT_UP = '''
class SuccessiveRises(keras.callbacks.Callback):
    """Prechelt's UP_s (1998): at the end of each strip of `k` epochs, compares the
    validation loss with the previous strip end's; stops after `s` successive rises."""

    def __init__(self, monitor, s, k):
        super().__init__()
        self.monitor, self.s, self.k = monitor, s, k
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_train_begin(self, logs=None):
        self.values, self.rises = [], 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        self.values.append(None if value is None or value != value else value)
        n = len(self.values)
        if n % self.k:
            return
        current = self.values[-1]
        previous = self.values[n - 1 - self.k] if n - 1 - self.k >= 0 else None
        rose = current is not None and previous is not None and current > previous
        self.rises = self.rises + 1 if rose else 0
        if self.rises >= self.s:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(f"Epoch {epoch + 1}: UP{self.s}, {self.s} rising strips; stopping.")
'''
