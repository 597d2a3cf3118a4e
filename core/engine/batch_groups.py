"""How many batches Keras runs per call of its compiled train step (``steps_per_execution``).

A count from the config is compiled in (``core.models.head.compiled_steps_per_execution``). "auto" is
settled here, once per run, before ``model.fit``: a few batches are timed with ``train_on_batch`` on the
model itself, every model and optimizer variable (dropout seed states included) is put back exactly as it
was, and the largest group that stays under ``TARGET_SECONDS`` is chosen. The choice goes into the run's
log ("steps_per_execution auto: 8 (batch 5.8 ms)"): a resumed run reads it back instead of measuring
again, and the exported script passes the same number (``recorded``).

The group size changes no number on TensorFlow: Keras' grouped step runs the same traced one-batch
function k times in a ``tf.while_loop`` (tests/engine/test_batch_groups.py compares k=1, k=4 and auto
bit for bit). It changes how often callbacks run: the live batch count and a Stop act once per group.

Imported only by the training code (it is handed a Keras model).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from typing import Any

from core.config import limits
from core.store.runs import AUTO_GROUP_LOG, recorded_steps_per_execution

TARGET_SECONDS = 0.05  # a group of batches should take at most this long: Stop and progress stay prompt
MAX_GROUP = int(limits("fit.steps_per_execution").high or 1)
TIMED_BATCHES = 5  # after one untimed batch (tracing); fewer when they are slow (TIME_BUDGET)
TIME_BUDGET = 1.0  # seconds the timed batches may take together


def choose(batch_seconds: float, steps_per_epoch: int) -> int:
    """The largest k with k x batch time <= TARGET_SECONDS, from 1 to the batches in an epoch."""
    if not math.isfinite(batch_seconds) or batch_seconds <= 0:
        k = MAX_GROUP
    else:
        k = int(TARGET_SECONDS // batch_seconds)
    return max(1, min(k, steps_per_epoch, MAX_GROUP))


def recorded(log_lines: Iterable[str]) -> int | None:
    """The group size "auto" chose for this run, from its log (None before it was chosen)."""
    return recorded_steps_per_execution(log_lines)


def measure_batch_seconds(model: Any, x: Any, y: Any, batch_size: int) -> float:
    """Median seconds of one training batch on ``model``, which is left exactly as it was.

    The batches change the weights, the optimizer's state and the dropout seed states; all of them
    are read before and written back after, so the run that follows trains from the very same state.
    """
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    saved = [(v, v.numpy()) for v in (*model.variables, *optimizer.variables)]
    n = len(x)
    full = max(1, n // batch_size)
    times: list[float] = []
    try:
        spent = 0.0
        for i in range(TIMED_BATCHES + 1):
            j = i % full
            rows = slice(j * batch_size, (j + 1) * batch_size)
            start = time.perf_counter()
            model.train_on_batch(x[rows], y[rows])  # returns numbers: the step has finished
            seconds = time.perf_counter() - start
            if i == 0:
                continue  # the first call traces the step function
            times.append(seconds)
            spent += seconds
            if spent > TIME_BUDGET:
                break
    finally:
        for var, value in saved:
            var.assign(value)
        model.reset_metrics()
    return statistics.median(times)


def set_group(model: Any, k: int) -> None:
    """Recompiles nothing: the next fit's train and test functions are built for groups of ``k``."""
    model.steps_per_execution = k
    model.make_train_function(force=True)
    model.make_test_function(force=True)
    model.predict_function = None


def settle(run: Any, model: Any, ds: Any) -> int:
    """The run's group size, set on the model before ``fit``; "auto" is measured (or read back) here."""
    fit = run.config.fit
    if isinstance(fit.steps_per_execution, int):
        return fit.steps_per_execution
    earlier = recorded(run.snapshot().log_lines)
    if earlier is not None:
        k = earlier
        run.log(f"{AUTO_GROUP_LOG}{k} (as chosen when the run started)")
    else:
        steps = math.ceil(len(ds.x_train) / fit.batch_size)
        seconds = measure_batch_seconds(model, ds.x_train, ds.y_train, fit.batch_size)
        k = choose(seconds, steps)
        run.log(
            f"{AUTO_GROUP_LOG}{k} (batch {seconds * 1000:.1f} ms; a Stop waits up to "
            f"{k * seconds * 1000:.0f} ms)"
        )
    set_group(model, k)
    return k
