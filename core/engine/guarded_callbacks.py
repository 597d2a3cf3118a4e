"""Keras' EarlyStopping and ModelCheckpoint with their decisions untouched, plus two guarantees.

1. An epoch cut short (a stop request or a NaN loss mid-epoch) is not a validated epoch: its
   metrics describe part of an epoch, so neither callback may judge a best model on it.
2. A checkpoint is written to a temporary file and renamed into place, so a crash or a full disk
   never leaves a torn file where the previous best one was.

Imported only by the training thread (it imports Keras).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras
from keras.src.saving import saving_lib  # pinned Keras 3.15: the only way to skip the optimizer


class EpochGate:
    """Shared by the live callback (which cuts epochs short) and the guarded callbacks."""

    def __init__(self) -> None:
        self.cut_short = False


class GuardedEarlyStopping(keras.callbacks.EarlyStopping):
    """Also carries its state across a resume: Keras resets it in ``on_train_begin``."""

    def __init__(self, gate: EpochGate, **kwargs):
        super().__init__(**kwargs)
        self.gate = gate
        self.resumed_state: tuple[dict, list | None] | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resumed_state is not None:
            state, best_weights = self.resumed_state
            self.wait = int(state["wait"])
            self.stopped_epoch = int(state["stopped_epoch"])
            self.best = None if state["best"] is None else float(state["best"])
            self.best_epoch = int(state["best_epoch"])
            self.best_weights = best_weights

    def on_epoch_end(self, epoch, logs=None):
        if not self.gate.cut_short:
            super().on_epoch_end(epoch, logs)

    def resume_state(self) -> tuple[dict, list | None]:
        state = {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": None if self.best is None else float(self.best),
            "best_epoch": self.best_epoch,
        }
        weights = None if self.best_weights is None else [w.copy() for w in self.best_weights]
        return state, weights


class GuardedReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Keras' schedule, untouched, judging only validated epochs, with its state across a resume.

    The learning rate itself is an optimizer variable: the resume point restores it with the others.
    Keras resets the wait, the cooldown and the best in ``on_train_begin``; a resumed run sets them back.
    """

    def __init__(self, gate: EpochGate, **kwargs):
        super().__init__(**kwargs)
        self.gate = gate
        self.resumed_state: dict | None = None
        self.reduced_epochs: list[int] = []  # 0-based epochs at whose end the rate was lowered

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resumed_state is not None:
            self.wait = int(self.resumed_state["wait"])
            self.cooldown_counter = int(self.resumed_state["cooldown_counter"])
            best = self.resumed_state["best"]
            self.best = None if best is None else float(best)

    def on_epoch_end(self, epoch, logs=None):
        if self.gate.cut_short:
            return
        before = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        super().on_epoch_end(epoch, logs)
        if float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)) != before:
            self.reduced_epochs.append(epoch)

    def resume_state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "cooldown_counter": int(self.cooldown_counter), "best": best}


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Saves to ``<name>.partial<ext>`` then renames; remembers which epochs it saved."""

    def __init__(self, filepath: str | os.PathLike, gate: EpochGate, **kwargs):
        super().__init__(str(filepath), **kwargs)
        self.gate = gate
        self.final_path = Path(filepath)
        ext = ".weights.h5" if self.final_path.name.endswith(".weights.h5") else self.final_path.suffix
        stem = self.final_path.name[: -len(ext)]
        self.partial_path = self.final_path.with_name(f"{stem}.partial{ext}")
        self.saved_epochs: list[int] = []  # 0-based, as Keras counts

    def on_epoch_end(self, epoch, logs=None):
        if not self.gate.cut_short:
            super().on_epoch_end(epoch, logs)

    def resume_state(self) -> dict:
        return {"best": None if self.best is None else float(self.best), "saved_epochs": self.saved_epochs}

    def load_resume_state(self, state: dict) -> None:
        """Keras keeps ``best`` from construction on, so setting it before ``fit`` is enough."""
        self.best = None if state["best"] is None else float(state["best"])
        self.saved_epochs = [int(e) for e in state["saved_epochs"]]

    def _get_file_path(self, epoch, batch, logs):
        return str(self.partial_path)

    def _save_model(self, epoch, batch, logs):
        self.partial_path.unlink(missing_ok=True)
        try:
            super()._save_model(epoch, batch, logs)
        except BaseException:
            self.partial_path.unlink(missing_ok=True)
            raise
        if self.partial_path.exists():
            _fsync(self.partial_path)
            os.replace(self.partial_path, self.final_path)
            self.saved_epochs.append(epoch)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EpochClock(keras.callbacks.Callback):
    """Each epoch's training time, measured once: what the history records and what a time budget
    counts, so a replay of the recording decides as the run did. It goes after ModelCheckpoint (the
    save counts) and before the stopping rules; rounded as the history stores it."""

    def __init__(self) -> None:
        super().__init__()
        from core.engine import usage

        self.usage = usage
        self._started = self._cpu_started = 0.0
        self.seconds = 0.0
        self.cpu_seconds: float | None = None  # the process's CPU time over the epoch
        self.rss_mb: float | None = None
        self.gpu_mb: float | None = None
        self._has_gpu: bool | None = None  # asked once: most machines have none

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._cpu_started = self.usage.cpu_seconds()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = round(time.perf_counter() - self._started, 4)
        self.cpu_seconds = self.usage.cpu_seconds() - self._cpu_started
        self.rss_mb = self.usage.rss_mb()
        if self._has_gpu is not False:
            self.gpu_mb = self.usage.gpu_mb()
            self._has_gpu = self.gpu_mb is not None


class EpochWeightsKeeper(keras.callbacks.Callback):
    """Keeps every validated epoch's weights (opt-in), so the what-if page can hand out any epoch.

    The architecture is saved once; each epoch adds only a weights file (no optimizer state).
    """

    def __init__(self, run_dir: str | os.PathLike, gate: EpochGate):
        super().__init__()
        from core.store import epoch_weights

        self.paths = epoch_weights
        self.run_dir = Path(run_dir)
        self.gate = gate

    def on_train_begin(self, logs=None):
        arch = self.paths.architecture_file(self.run_dir)
        arch.parent.mkdir(parents=True, exist_ok=True)
        partial = arch.with_name("architecture.partial.keras")
        self.model.save(partial, include_optimizer=False)
        os.replace(partial, arch)

    def on_epoch_end(self, epoch, logs=None):
        if self.gate.cut_short:
            return
        final = self.paths.epoch_file(self.run_dir, epoch + 1)
        partial = final.with_name(final.name.replace(".weights.h5", ".partial.weights.h5"))
        # Model.save_weights also writes the optimizer's slots (3x the size with Adam); skip them.
        saving_lib.save_weights_only(self.model, str(partial), objects_to_skip=[self.model.optimizer])
        os.replace(partial, final)


class ResumePointKeeper(keras.callbacks.Callback):
    """Writes the run's resume point after validated epochs, throttled to a few % of training time.

    It goes after EarlyStopping, ModelCheckpoint and the live callback, so the state it saves is the
    state they reached at the end of the epoch (``summary`` reads the run's headline fields).
    """

    def __init__(self, run_dir, gate: EpochGate, *, early_stopping, checkpoint, summary, reduce_lr=None):
        super().__init__()
        from core.engine import resume_point

        self.points = resume_point
        self.run_dir = Path(run_dir)
        self.gate = gate
        self.es = early_stopping
        self.ck = checkpoint
        self.rl = reduce_lr
        self.summary = summary
        self.throttle = resume_point.Throttle()

    def on_epoch_end(self, epoch, logs=None):
        if self.gate.cut_short or not self.throttle.due():
            return
        started = time.perf_counter()
        point = self.points.capture(
            self.model, self.es, self.ck, epoch + 1, self.summary(), reduce_lr=self.rl
        )
        self.points.write(self.run_dir, point)
        self.throttle.wrote(time.perf_counter() - started)
