"""The callback that streams a run into its ``Run`` and honours a stop request within one batch
(one group of batches with ``steps_per_execution`` k > 1: Keras calls batch hooks once per group).

It goes last in the callback list, after EarlyStopping and ModelCheckpoint, so at each epoch end it
can read what they decided and write the same lines Keras prints with ``verbose=1`` (improved / did
not improve / early stopping / restoring) without re-deciding anything itself.

Per batch it does only what must happen per batch: the stop and NaN checks, and a progress update
in memory. A chart point is recorded at most every ``batch_interval`` seconds.
"""

from __future__ import annotations

import math
import time

import keras

from core.engine.guarded_callbacks import AtomicModelCheckpoint, EpochGate, GuardedEarlyStopping
from core.store.runs import EpochRecord, Run


class LiveCallback(keras.callbacks.Callback):
    def __init__(
        self,
        run: Run,
        gate: EpochGate,
        *,
        main_metric: str,
        early_stopping: GuardedEarlyStopping | None = None,
        checkpoint: AtomicModelCheckpoint | None = None,
        rules: list | None = None,
        reduce_lr=None,
        clock=None,
        val_steps: int | None = None,
        batch_interval: float = 0.1,
    ):
        super().__init__()
        self.run = run
        self.gate = gate
        self.main_metric = main_metric
        self.es = early_stopping
        self.ck = checkpoint
        self.rules = rules or []  # core.stopping.rules.live.RuleCallback, before this one in the list
        self.rl = reduce_lr  # GuardedReduceLROnPlateau, before this one
        self.clock = clock  # guarded_callbacks.EpochClock, before this one: the epoch's recorded time
        self.val_steps = val_steps
        self.batch_interval = batch_interval
        self.stop_reason: str | None = None  # "user" or "nan_loss" once we stopped training
        self.cut_epoch: int | None = None  # 1-based epoch cut short, if any
        self._steps: int | None = None
        self._epoch = 0
        self._epoch_start = 0.0
        self._last_point = 0.0
        self._ck_best_before = None

    # -- training ---------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._steps = self.params.get("steps")
        epochs = self.params.get("epochs")
        steps = f"{self._steps} batch{'es' * (self._steps != 1)} an epoch" if self._steps else "batches"
        if (k := self.model.steps_per_execution) > 1:
            steps += f", run {k} per step (progress and Stop act once per {k})"
        self.run.log(f"Training on up to {epochs:,} epoch{'s' * (epochs != 1)}, {steps}.")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.perf_counter()
        self.gate.cut_short = False
        self._ck_best_before = self.ck.best if self.ck is not None else None
        self.run.set_progress(epoch, 0, self._steps)

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution k Keras calls this once per group, with the group's last index:
        # begin + k - 1, past the epoch's end for a short last group. Batches done = that + 1, capped.
        logs = logs or {}
        loss = logs.get("loss")
        done = min(batch + 1, self._steps) if self._steps else batch + 1
        last_batch = self._steps is not None and done >= self._steps
        if loss is not None and not math.isfinite(loss):
            self._stop("nan_loss", cut=True)
            where = f"at batch {done}" if self.model.steps_per_execution == 1 else f"by batch {done}"
            self.run.log(
                f"Epoch {self._epoch + 1}: loss became {loss} {where}; stopping. "
                "This epoch is not counted, so the best checkpoint stays as it was."
            )
        elif self.run.stop_requested.is_set() and self.stop_reason is None:
            self._stop("user", cut=not last_batch)
        self.run.set_progress(self._epoch, done, self._steps)
        now = time.perf_counter()
        if loss is not None and now - self._last_point >= self.batch_interval:
            self._last_point = now
            position = self._epoch + done / self._steps if self._steps else float(self._epoch + 1)
            self.run.add_batch_point(position, float(loss), _float_or_none(logs.get(self.main_metric)))

    def on_test_batch_end(self, batch, logs=None):
        # Stopping during validation: cut it short, and then the epoch does not count.
        if self.stop_reason is not None or self.run.stop_requested.is_set():
            if self.stop_reason is None:
                self._stop("user", cut=False)
            if self.val_steps is None or batch + 1 < self.val_steps:
                self.model.stop_evaluating = True
                self.gate.cut_short = True

    def _stop(self, reason: str, cut: bool) -> None:
        self.stop_reason = reason
        self.model.stop_training = True
        if cut:
            self.gate.cut_short = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = self.clock.seconds if self.clock is not None else time.perf_counter() - self._epoch_start
        n = epoch + 1
        if self.gate.cut_short:
            self.cut_epoch = n
            if self.stop_reason == "user":
                self.run.log(f"Epoch {n}: stopped by user; this partial epoch is not counted.")
            return
        self.run.log(f"Epoch {n}/{self.params.get('epochs')} - {seconds:.2f}s - {_format_logs(logs)}")
        saved = self._log_checkpoint(n, logs)
        es_wait = es_best = None
        if self.es is not None:
            es_wait = self.es.wait
            es_best = self.es.best_epoch + 1 if self.es.best is not None else None
            if self.es.stopped_epoch == epoch and self.model.stop_training and epoch > 0:
                self.run.log(f"Epoch {n}: early stopping")
        if self.rl is not None and self.rl.reduced_epochs[-1:] == [epoch]:
            rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self.run.log(f"Epoch {n}: ReduceLROnPlateau reducing learning rate to {rate:.6g}.")
        for rule in self.rules:
            if rule.stopped_epoch == epoch:
                self.run.log(f"Epoch {n}: {rule.because()}")
        usage = {}
        if self.clock is not None:
            usage = {
                "cpu_seconds": self.clock.cpu_seconds,
                "rss_mb": self.clock.rss_mb,
                "gpu_mb": self.clock.gpu_mb,
            }
        record = EpochRecord(
            n, {k: float(v) for k, v in logs.items()}, seconds, saved, es_wait, es_best, **usage
        )
        self.run.add_epoch(record, **self._best_fields(n, logs, saved))

    def on_train_end(self, logs=None):
        es = self.es
        if es is not None and es.restore_best_weights and es.best_weights is not None:
            self.run.log(f"Restoring model weights from the end of the best epoch: {es.best_epoch + 1}.")

    # -- messages and summary ---------------------------------------------------------------------
    def _log_checkpoint(self, n: int, logs: dict) -> bool:
        ck = self.ck
        if ck is None:
            return False
        saved = bool(ck.saved_epochs) and ck.saved_epochs[-1] == n - 1
        path = ck.final_path.name
        if not ck.save_best_only:
            if saved:
                self.run.log(f"Epoch {n}: saving model to {path}")
            return saved
        current = logs.get(ck.monitor)
        before = "None" if self._ck_best_before is None else f"{self._ck_best_before:.5f}"
        if current is None:
            self.run.log(f"Epoch {n}: Can save best model only with {ck.monitor} available; saved anyway.")
        elif saved:
            self.run.log(
                f"Epoch {n}: {ck.monitor} improved from {before} to {current:.5f}, saving model to {path}"
            )
        else:
            self.run.log(f"Epoch {n}: {ck.monitor} did not improve from {before}")
        return saved

    def _best_fields(self, n: int, logs: dict, saved: bool) -> dict:
        """The run's headline best: the checkpoint's monitor if it keeps the best, else EarlyStopping's."""
        fields: dict = {}
        if saved:
            fields["checkpoint_epoch"] = n
        if self.ck is not None and self.ck.save_best_only and saved:
            value = logs.get(self.ck.monitor)
            fields.update(monitor=self.ck.monitor, best_epoch=n, best_value=_float_or_none(value))
        elif (
            (self.ck is None or not self.ck.save_best_only)
            and self.es is not None
            and self.es.best is not None
        ):
            fields.update(
                monitor=self.es.monitor, best_epoch=self.es.best_epoch + 1, best_value=float(self.es.best)
            )
        es = self.es
        es_stopped = es is not None and es.stopped_epoch == n - 1 and n > 1 and self.model.stop_training
        if es_stopped or any(rule.stopped_epoch == n - 1 for rule in self.rules):
            fields["stopped_epoch"] = n
        return fields


def _float_or_none(v) -> float | None:
    return None if v is None else float(v)


def _format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class EvaluationProgress(keras.callbacks.Callback):
    """The final test evaluation's progress, batch by batch, for the page (it can take a second or
    more on a large test split, after the run has already said how it ended)."""

    def __init__(self, run: Run):
        super().__init__()
        self.run = run
        self._steps: int | None = None

    def on_test_begin(self, logs=None):
        self._steps = self.params.get("steps")
        self.run.set_evaluation(0, self._steps)

    def on_test_batch_end(self, batch, logs=None):
        self.run.set_evaluation(batch + 1, self._steps)
