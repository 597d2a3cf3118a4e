"""What-if replay of Keras 3 ``EarlyStopping`` / ``ModelCheckpoint`` on a recorded history.

Given the values one metric took epoch by epoch, these functions say where ``EarlyStopping`` would
have stopped, which epoch's weights the model would have ended with, and which epochs
``ModelCheckpoint(save_best_only=True)`` would have saved, under settings other than the ones the
run used. Pure Python and numpy: TensorFlow is never imported.

Exact to Keras 3.15.1 (keras/src/callbacks/{monitor_callback,early_stopping,model_checkpoint}.py),
checked against the real callbacks in tests/test_replay.py:

* The improvement test is ``monitor_op(current - min_delta, best)`` with ``min_delta = abs(min_delta)``
  negated in min mode, so the shift is computed in Python float64; ``ops.less`` / ``ops.greater``
  then turn both operands into float32 tensors. We compute in float64, round both sides to float32
  and compare. ``best`` keeps the unrounded Python value of the epoch that set it.
* TensorFlow's CPU kernels run with denormals flushed to zero: a float32 subnormal (below
  1.1754944e-38 in magnitude) compares as 0. Replicated.
* A finite operand that overflows float32 (>= 3.4028235677973366e38 in magnitude after the shift)
  makes TensorFlow raise ``ValueError`` inside the callback, which ends ``fit``. Replicated as
  :class:`Float32RangeError` (a ``ValueError``), raised where Keras would raise.
* NaN compares false with everything; the first monitored value becomes ``best`` even when NaN
  (``best is None`` counts as an improvement), after which nothing improves again.
* EarlyStopping: ``on_train_begin`` sets ``best = None`` (the baseline is never the starting best);
  ``wait`` grows on every monitored epoch and is reset on an improvement only when there is no
  baseline or the value also beats the baseline (with min_delta). Epochs before ``start_from_epoch``
  and epochs without the metric are skipped entirely. Training stops at a non-improving epoch with
  ``wait >= patience and epoch > 0``; improving epochs never stop. ``wait >= 1`` on any non-improving
  epoch, so patience 0 and 1 behave the same.
* ``restore_best_weights`` restores whenever a monitored epoch was seen, also when training ran out
  of epochs without stopping.
* ModelCheckpoint: the same test without min_delta, starting from ``initial_value_threshold``; a
  missing value (None) warns and *saves anyway* without touching ``best``; a NaN first value becomes
  ``best`` and blocks every later save (except epochs where the value is missing).

Values are taken as Python floats, which is what ``fit`` puts in the logs (``pythonify_logs``).
Epochs are 0-based here, as in Keras' callback API; ``core.runs`` is 1-based.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.stopping.arguments import REPLAY_PARAMETERS, replay_arguments

FLT_MIN = float(np.finfo(np.float32).tiny)  # smallest normal float32; below it TF compares as 0
_F32 = struct.Struct("<f")


class Float32RangeError(ValueError):
    """Keras would crash here: TensorFlow refuses a finite Python float outside float32's range."""


@dataclass(frozen=True)
class ReplayResult:
    """Outcome of one replay. Epochs are 0-based.

    ``stopped_epoch`` is 0 when training never stopped, as Keras' attribute. ``best_epoch`` is Keras'
    attribute at the end of training (0 when nothing was ever monitored, as Keras initialises it).
    ``final_weights_epoch`` is the epoch whose weights the model ends with: ``best_epoch`` when best
    weights were restored, else the last epoch run (None only for an empty history).
    ``wait`` holds EarlyStopping's counter after each epoch run (empty for Prechelt's rules);
    ``criterion`` holds a Prechelt rule's value per epoch (NaN where it is not evaluated).
    """

    epochs_run: int
    stopped_epoch: int
    best_epoch: int
    final_weights_epoch: int | None
    stopped: bool
    best: float | None
    wait: list[int] = field(default_factory=list)
    epochs_saved: int = 0
    improved_epochs: list[int] = field(default_factory=list)
    rule: str = "early_stopping"
    criterion: list[float] = field(default_factory=list)


def kept_as_trained(
    n: int,
    stop: int | None,
    *,
    rule: str,
    criterion: list[float],
    best: float | None = None,
    best_epoch: int | None = None,
    improved: Sequence[int] = (),
    wait: Sequence[int] = (),
) -> ReplayResult:
    """The result of a rule that stops after epoch ``stop`` (None: never, within ``n`` epochs) and keeps
    the model as trained (no weights restored: the thresholds, check_finite, a time budget, ...)."""
    epochs_run = n if stop is None else stop + 1
    return ReplayResult(
        epochs_run=epochs_run,
        stopped_epoch=0 if stop is None else stop,
        best_epoch=0 if best_epoch is None else best_epoch,
        final_weights_epoch=epochs_run - 1 if epochs_run else None,
        stopped=stop is not None,
        best=best,
        wait=list(wait),
        epochs_saved=n - epochs_run,
        improved_epochs=list(improved),
        rule=rule,
        criterion=criterion,
    )


@dataclass(frozen=True)
class CheckpointReplay:
    """``ModelCheckpoint(save_best_only=True)`` on a history: which epochs write the file."""

    saved_epochs: list[int]
    kept_epoch: int | None  # the last save: the file left on disk
    best: float | None  # the callback's ``best`` at the end


# --------------------------------------------------------------------------- the float32 comparison


def f32(x: float) -> float:
    """What a Python float becomes in a TF float32 CPU comparison (as a float64 holding it)."""
    try:
        y = _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        # struct.pack raises exactly when a finite double rounds to +-inf, as TF's conversion does.
        raise Float32RangeError(
            f"{x!r} is outside float32's range: Keras raises \"Can't convert Python sequence with a "
            'value out of range for a double-precision float." here and training ends.'
        ) from None
    return 0.0 if -FLT_MIN < y < FLT_MIN else y


def mode_sign(mode: str) -> int:
    if mode == "min":
        return -1
    if mode == "max":
        return 1
    raise ValueError(f"mode must be 'min' or 'max' (resolve 'auto' with core.metrics.resolve_mode): {mode!r}")


class _Improvement:
    """``MonitorCallback._is_improvement`` for one mode and min_delta."""

    def __init__(self, mode: str, min_delta: float):
        self.sign = mode_sign(mode)
        self.min_delta = abs(float(min_delta)) * (1 if self.sign > 0 else -1)

    def __call__(self, current: float, reference: float | None) -> bool:
        if reference is None:
            return True
        a = f32(current - self.min_delta)
        b = f32(reference)
        return a > b if self.sign > 0 else a < b


def improvement(mode: str, min_delta: float):
    """``MonitorCallback._is_improvement(current, reference)`` for one mode and min_delta (every Keras
    callback built on MonitorCallback: EarlyStopping, ModelCheckpoint, ReduceLROnPlateau)."""
    return _Improvement(mode, min_delta)


def as_values(values: Sequence[Any]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


# --------------------------------------------------------------------------------- plain replays


def replay_early_stopping(
    values: Sequence[float | None],
    *,
    mode: str,
    min_delta: float = 0.0,
    patience: int = 0,
    baseline: float | None = None,
    start_from_epoch: int = 0,
    restore_best_weights: bool = False,
) -> ReplayResult:
    """Replay ``keras.callbacks.EarlyStopping`` on ``values`` (one per epoch, None = not logged).

    A line-by-line transcription of Keras 3's ``on_train_begin`` / ``on_epoch_end`` /
    ``on_train_end``, with the float32 comparison of :func:`f32`. The training loop stops after the
    epoch at which the callback sets ``stop_training``.
    """
    vals = as_values(values)
    improves = _Improvement(mode, min_delta)
    base = None if baseline is None else float(baseline)
    best: float | None = None
    best_epoch = 0
    have_best_weights = False
    wait = 0
    stopped_epoch = 0
    waits: list[int] = []
    improved: list[int] = []
    epochs_run = 0
    for epoch, current in enumerate(vals):
        epochs_run = epoch + 1
        if current is None or epoch < start_from_epoch:
            waits.append(wait)
            continue
        if restore_best_weights and not have_best_weights:
            have_best_weights = True
            best_epoch = epoch
        wait += 1
        if improves(current, best):
            best = current
            best_epoch = epoch
            improved.append(epoch)
            if base is None or improves(current, base):
                wait = 0
            waits.append(wait)
            continue
        waits.append(wait)
        if wait >= patience and epoch > 0:
            stopped_epoch = epoch
            break
    restored = restore_best_weights and have_best_weights
    final = best_epoch if restored else (epochs_run - 1 if epochs_run else None)
    return ReplayResult(
        epochs_run=epochs_run,
        stopped_epoch=stopped_epoch,
        best_epoch=best_epoch,
        final_weights_epoch=final,
        stopped=stopped_epoch > 0,
        best=best,
        wait=waits,
        epochs_saved=len(vals) - epochs_run,
        improved_epochs=improved,
    )


def replay_checkpoint(
    values: Sequence[float | None], *, mode: str, initial_value_threshold: float | None = None
) -> CheckpointReplay:
    """Replay ``keras.callbacks.ModelCheckpoint(save_best_only=True, save_freq="epoch")``.

    Keras' ``_should_save_model``: a missing value (None) saves anyway and leaves ``best`` alone; a
    value saves when it beats ``best`` (strictly, in float32, no min_delta), starting from
    ``initial_value_threshold``. NaN never beats anything, but becomes ``best`` when it comes first.
    """
    improves = _Improvement(mode, 0.0)
    best = None if initial_value_threshold is None else float(initial_value_threshold)
    saved: list[int] = []
    for epoch, current in enumerate(as_values(values)):
        if current is None:
            saved.append(epoch)
        elif improves(current, best):
            best = current
            saved.append(epoch)
    return CheckpointReplay(saved_epochs=saved, kept_epoch=saved[-1] if saved else None, best=best)


def replay_history(
    source: Any,
    *,
    monitor: str | None = None,
    mode: str | None = None,
    nan_is_missing: bool = False,
    **overrides: Any,
) -> ReplayResult:
    """:func:`replay_early_stopping` on a ``RunSnapshot`` or a history ``DataFrame``.

    A snapshot supplies the monitor, mode and every EarlyStopping parameter from its config (any of
    ``min_delta, patience, baseline, start_from_epoch, restore_best_weights`` can be overridden), and
    tells a missing metric (key absent from an epoch's logs) from a NaN. A DataFrame needs
    ``monitor``; ``mode`` defaults to the metric's known direction; NaN cells are NaN values unless
    ``nan_is_missing`` (a frame cannot tell the two apart).
    """
    from core.metrics import resolve_mode

    if hasattr(source, "history") and hasattr(source, "config"):
        es = source.config.early_stopping
        monitor = monitor or es.monitor
        resolved = resolve_mode(monitor, mode or es.mode)
        params = replay_arguments(es)
        values: list[float | None] = [r.logs.get(monitor) for r in source.history]
    elif isinstance(source, pd.DataFrame):
        if monitor is None:
            raise ValueError("monitor is required to replay a DataFrame")
        if monitor not in source.columns:
            raise ValueError(f"{monitor!r} is not a column of this history")
        resolved = resolve_mode(monitor, mode or "auto")
        params = {}
        values = [float(v) for v in source[monitor].to_numpy(dtype=float)]
    else:
        raise TypeError(f"expected a RunSnapshot or a DataFrame, got {type(source).__name__}")
    if resolved is None:
        raise ValueError(f"cannot tell whether {monitor!r} should go up or down: pass mode='min' or 'max'")
    if nan_is_missing:
        values = [None if v is None or math.isnan(v) else v for v in values]
    unknown = set(overrides) - set(REPLAY_PARAMETERS)
    if unknown:
        raise TypeError(f"unknown EarlyStopping parameters: {sorted(unknown)}")
    params.update(overrides)
    return replay_early_stopping(values, mode=resolved, **params)
