"""``LabCallback``: your own ``model.fit``, recorded into the app's runs folder as it trains.

Add it last to the callbacks of a fit in your script or notebook::

    import eslab
    model.fit(x, y, validation_split=0.2, epochs=1000,
              callbacks=[early_stopping, checkpoint, eslab.LabCallback(name="my-run")])

The run appears in the app (Runs, and live in the Train page by its link) with your EarlyStopping's
and ModelCheckpoint's settings, their decisions and Keras' messages in its console, the model summary
and the fit's parameters; the app's Stop button ends the fit after the batch in flight; the epoch your
ModelCheckpoint kept is copied into the run's folder, so it downloads there; what-if, compare and the
patience explorer work on it as on any run.

It never breaks your training: when the runs folder cannot be written it warns once and lets the fit
go on unrecorded. It needs Keras and this package only (no Streamlit, no server running).
"""

from __future__ import annotations

import inspect
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import keras

from core import metrics
from core.config import (
    OPTIMIZERS,
    RECORDED_NAME,
    DataConfig,
    FitConfig,
    ModelConfig,
    RunConfig,
    check_config,
    run_name_problem,
)
from core.recorded import keras_settings
from core.store.runs import FINISHED, INTERRUPTED, RUNNING, STOPPED, EpochRecord, Run, RunStore, new_run_id

STOP_POLL_SECONDS = 1.0  # how often the index is asked whether the app's Stop was pressed
PROGRESS_SECONDS = 0.5  # how often the batch in flight is written for the app's live view


class LabCallback(keras.callbacks.Callback):
    """Records the fit it is part of as a run of the app.

    Args:
        name: the run's name in the app.
        runs_dir: the app's runs folder (default: ``$ESLAB_RUNS_DIR``, else ``./runs``).
        early_stopping, checkpoint: your callbacks, when they are not in the same ``callbacks`` list
            (they are found there otherwise).
        keep_best: with no ModelCheckpoint of yours, keep the best epoch's model in the run's folder
            (a ``.keras`` file saved whenever ``monitor`` improves), so the app can hand it out.
        monitor, mode: what ``keep_best`` watches (default: your EarlyStopping's, else ``val_loss``).
    """

    def __init__(
        self,
        name: str = "my run",
        runs_dir: str | os.PathLike | None = None,
        *,
        early_stopping: keras.callbacks.EarlyStopping | None = None,
        checkpoint: keras.callbacks.ModelCheckpoint | None = None,
        keep_best: bool = False,
        monitor: str | None = None,
        mode: str = "auto",
    ):
        super().__init__()
        problem = run_name_problem(name)
        if problem is not None:
            raise ValueError(f"LabCallback name: {problem}.")
        self.name = name
        self.runs_dir = runs_dir
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"LabCallback mode: 'auto', 'min' or 'max', not {mode!r}.")
        self.es = early_stopping
        self.ck = checkpoint
        self.keep_best = keep_best
        self.monitor = monitor
        self.mode = mode
        self._kept: float | None = None  # the best value of what keep_best watches
        self._copied: str | None = None  # the checkpoint file written this epoch
        self.run: Run | None = None
        self.run_id: str | None = None
        self.stopped_by_app = False
        self._store: RunStore | None = None
        self._broken = False
        self._epoch = 0
        self._epoch_start = 0.0
        self._steps: int | None = None
        self._ck_best_before: float | None = None
        self._ck_file: tuple[int, int, int] | None = None
        self._progress_at = 0.0
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        self._fit_frame: Any = None  # the running ``fit`` call, to notice it ended by an exception
        self._fit_thread: int | None = None

    # -- never break the user's fit -----------------------------------------------------------------
    def _safely(self, what: str, action, *args: Any) -> Any:
        if self._broken:
            return None
        try:
            return action(*args)
        except Exception as exc:  # noqa: BLE001 - a recorder must never take the fit down
            self._broken = True
            warnings.warn(
                f"eslab.LabCallback could not {what} ({type(exc).__name__}: {exc}); training goes on, "
                "but this run is no longer recorded.",
                RuntimeWarning,
                stacklevel=2,
            )
            return None

    # -- training -----------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        siblings = keras_settings.find_callbacks(self)
        self.es = self.es or next((c for c in siblings if isinstance(c, keras.callbacks.EarlyStopping)), None)
        self.ck = self.ck or next(
            (c for c in siblings if isinstance(c, keras.callbacks.ModelCheckpoint)), None
        )
        late = (
            [c for c in siblings[siblings.index(self) + 1 :] if c in (self.es, self.ck)] if siblings else []
        )
        self._steps = self.params.get("steps")
        self._fit_thread, self._fit_frame = threading.get_ident(), _fit_frame()
        self._safely("create the run", self._begin, late)

    def _begin(self, late: list) -> None:
        notes: list[str] = []
        config = RunConfig(
            name=self.name,
            data=DataConfig(name=RECORDED_NAME),
            model=ModelConfig(name=RECORDED_NAME),
            fit=self._fit_config(notes),
            early_stopping=keras_settings.early_stopping_config(self.es, notes),
            checkpoint=keras_settings.checkpoint_config(self.ck, notes),
            origin="callback",
        )
        problems = check_config(config)
        if problems:
            raise ValueError("; ".join(p.message for p in problems))
        self._store = RunStore(self.runs_dir)
        self.run_id = new_run_id()
        created = time.time()
        self._store.create(self.run_id, config, created)
        self.run = Run(self.run_id, config, self._store, created_at=created)
        self.run.set_status(RUNNING)
        run = self.run
        run.log(f"Recorded by eslab.LabCallback from your script (pid {os.getpid()}).")
        summary: list[str] = []
        self.model.summary(print_fn=lambda line, *a, **k: summary.append(str(line)))
        for line in "\n".join(summary).splitlines():
            run.log(line)
        epochs, steps = self.params.get("epochs"), self._steps
        per_epoch = f"{steps} batch{'es' * (steps != 1)}" if steps else "an unknown number of batches"
        run.log(f"Training on up to {epochs:,} epoch{'s' * (epochs != 1)}, {per_epoch} an epoch.")
        for line in notes:
            run.log(line)
        if late:
            names = " and ".join(type(c).__name__ for c in late)
            run.log(
                f"{names} come after LabCallback in your callbacks: its lines lag one epoch. Put it last."
            )
        self._watch = threading.Thread(target=self._watch_for_stop, name="eslab-stop-watch", daemon=True)
        self._watch.start()

    def _fit_config(self, notes: list[str]) -> FitConfig:
        """What a callback can know of the fit: the epochs, the optimizer and its learning rate."""
        fit = FitConfig(max_epochs=int(self.params.get("epochs") or 1))
        optimizer = getattr(self.model, "optimizer", None)
        kind = type(optimizer).__name__.lower()
        if kind in OPTIMIZERS:
            fit.optimizer = kind
        try:
            fit.learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except Exception:  # noqa: BLE001 - a schedule, or no optimizer: the default stands, and is said
            notes.append("The learning rate could not be read (a schedule?); the config shows the default.")
        notes.append("A callback cannot see the batch size or the seed: the config's values are defaults.")
        if check_config(RunConfig(fit=fit)):
            notes.append(
                "The fit's settings are outside the app's ranges: the config shows defaults (epochs capped)."
            )
            fit = FitConfig(max_epochs=min(max(int(self.params.get("epochs") or 1), 1), 1_000_000))
        return fit

    def _watch_for_stop(self) -> None:
        """Polls the app's Stop, and whether the fit still runs: Keras calls no callback when an
        exception (a KeyboardInterrupt in a notebook, an error in the user's code) leaves ``fit``, and
        the process lives on, so without this the run would show "running" for ever."""
        stop_asked = False
        while not self._stop.wait(STOP_POLL_SECONDS):
            try:
                if not self._fit_running():
                    self._safely("end the run", self._ended_by_exception)
                    return
                asked = not stop_asked and self._store is not None and self.run_id is not None
                if asked and self._store.stop_requested(self.run_id):
                    stop_asked = True
                    self.run.log("Stop requested from the app.")
                    self.run.stop_requested.set()
            except Exception:  # noqa: BLE001 - the watcher never takes the fit down
                return

    def _fit_running(self) -> bool:
        if self._fit_frame is None or self._stop.is_set():
            return True  # not a Keras fit we can see (a custom loop calling callbacks): never guessed
        # Documented in the sys module ("for debugging"); the one way to see another thread's stack.
        frame = sys._current_frames().get(self._fit_thread)  # noqa: SLF001
        while frame is not None:
            if frame is self._fit_frame:
                return True
            frame = frame.f_back
        return False

    def _ended_by_exception(self) -> None:
        self._fit_frame = None  # let the fit's frame (and the arrays it holds) go
        run = self.run
        if run is None or self._stop.is_set():
            return
        epochs = run.snapshot().epoch
        message = (
            f"Your fit ended with an exception (an interrupt, or an error in your script) after {epochs} "
            "epochs: Keras does not tell callbacks why. The epochs recorded are kept."
        )
        run.log(message)
        run.set_status(INTERRUPTED, expect=(RUNNING,), stop_reason="exception", message=message)
        self._store.close()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.perf_counter()
        self._ck_best_before = _float(self.ck.best) if self.ck is not None else None
        self._ck_file = _file_state(self.ck)
        if self.run is not None and not self._broken:
            self.run.set_progress(epoch, 0, self._steps)

    def on_train_batch_end(self, batch, logs=None):
        run = self.run
        if run is None:
            return
        if run.stop_requested.is_set() and not self.stopped_by_app:
            self.stopped_by_app = True
            self.model.stop_training = True
        run.set_progress(self._epoch, batch + 1, self._steps)
        now = time.monotonic()
        if now - self._progress_at >= PROGRESS_SECONDS and not self._broken:
            self._progress_at = now
            self._safely(
                "record the batch in flight", self._store.write_progress, run.id, batch + 1, self._steps
            )

    def on_epoch_end(self, epoch, logs=None):
        self._safely("record an epoch", self._epoch_end, epoch, dict(logs or {}))

    def _epoch_end(self, epoch: int, logs: dict) -> None:
        run = self.run
        if run is None:
            return
        n = epoch + 1
        seconds = time.perf_counter() - self._epoch_start
        values = " - ".join(f"{k}: {float(v):.4f}" for k, v in logs.items())
        run.log(f"Epoch {n}/{self.params.get('epochs')} - {seconds:.2f}s - {values}")
        self._copied = None
        saved = self._checkpoint(n, logs)
        kept = self._keep_best(n, logs) if self.keep_best and self.ck is None else None
        es, fields = self.es, {}
        if self._copied is not None:
            fields["checkpoint_path"] = self._copied
        es_wait = es_best = None
        if es is not None:
            es_wait = es.wait
            es_best = es.best_epoch + 1 if es.best is not None else None
            if es.stopped_epoch == epoch and epoch > 0 and self.model.stop_training:
                run.log(f"Epoch {n}: early stopping")
                fields["stopped_epoch"] = n
        if saved:
            fields["checkpoint_epoch"] = n
        if kept is not None:
            saved = kept
            if kept:
                fields.update(checkpoint_epoch=n, monitor=self.monitor, best_epoch=n, best_value=self._kept)
        ck = self.ck
        if ck is not None and ck.save_best_only and saved:
            fields.update(monitor=ck.monitor, best_epoch=n, best_value=_float(logs.get(ck.monitor)))
        elif (ck is None or not ck.save_best_only) and es is not None and es.best is not None:
            fields.update(monitor=es.monitor, best_epoch=es.best_epoch + 1, best_value=_float(es.best))
        record = EpochRecord(n, {k: float(v) for k, v in logs.items()}, seconds, saved, es_wait, es_best)
        run.add_epoch(record, **fields)

    def _checkpoint(self, n: int, logs: dict) -> bool:
        """Whether the user's ModelCheckpoint saved this epoch (its file changed); then the file is
        copied into the run's folder (temp file and rename: never a torn copy)."""
        ck, run = self.ck, self.run
        if ck is None or "{" in ck.filepath:
            return False  # a file per epoch ("model-{epoch}.keras") is the user's to keep
        current, before = logs.get(ck.monitor), self._ck_best_before
        name = Path(ck.filepath).name
        if ck.save_best_only:  # Keras moves its best exactly when it saves
            saved = _float(ck.best) != before and os.path.isfile(ck.filepath)
        else:
            saved = _file_state(ck) not in (None, self._ck_file)
        shown = "None" if before is None else f"{before:.5f}"
        if ck.save_best_only:
            if saved and current is not None:
                improved = f"{ck.monitor} improved from {shown} to {float(current):.5f}"
                run.log(f"Epoch {n}: {improved}, saving model to {name}")
            elif current is not None:
                run.log(f"Epoch {n}: {ck.monitor} did not improve from {shown}")
        elif saved:
            run.log(f"Epoch {n}: saving model to {name}")
        if saved:
            target = run.dir / f"checkpoint{run.config.checkpoint.format}"
            fd, tmp = tempfile.mkstemp(dir=run.dir, prefix=".checkpoint.", suffix=".partial")
            os.close(fd)
            try:
                shutil.copyfile(ck.filepath, tmp)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._copied = str(target)  # recorded with the epoch: one index write an epoch
        return saved

    def _keep_best(self, n: int, logs: dict) -> bool:
        """Saves the model into the run's folder when the watched value improves (strictly, as Keras'
        ModelCheckpoint does); whether it saved."""
        run = self.run
        if self.monitor is None:
            self.monitor = self.es.monitor if self.es is not None else "val_loss"
        current = _float(logs.get(self.monitor))
        if current is None or not math.isfinite(current):
            return False
        mode = self.mode if self.mode != "auto" else metrics.resolve_mode(self.monitor, "auto")
        if mode is None:
            mode = self.es.mode if self.es is not None and self.es.mode in ("min", "max") else "min"
            self.mode = mode
        better = self._kept is None or (current < self._kept if mode == "min" else current > self._kept)
        if not better:
            run.log(f"Epoch {n}: {self.monitor} did not improve from {self._kept:.5f} (keep_best)")
            return False
        target = run.dir / "checkpoint.keras"
        fd, tmp = tempfile.mkstemp(dir=run.dir, prefix=".checkpoint.", suffix=".keras")
        os.close(fd)
        try:
            self.model.save(tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        shown = "None" if self._kept is None else f"{self._kept:.5f}"
        run.log(f"Epoch {n}: {self.monitor} improved from {shown} to {current:.5f}, kept in the run's folder")
        self._kept = current
        self._copied = str(target)  # recorded with the epoch: one index write an epoch
        return True

    def on_train_end(self, logs=None):
        self._stop.set()
        self._fit_frame = None
        self._safely("finish the run", self._end)

    def _end(self) -> None:
        run = self.run
        if run is None:
            return
        snap = run.snapshot()
        es = self.es
        if es is not None and es.restore_best_weights and es.best_weights is not None:
            run.log(f"Restoring model weights from the end of the best epoch: {es.best_epoch + 1}.")
        if self.stopped_by_app:
            status, reason, message = STOPPED, "user", f"Stopped from the app after {snap.epoch} epochs."
        elif es is not None and es.stopped_epoch > 0:
            status, reason = FINISHED, "early_stopping"
            message = f"Early stopping at epoch {es.stopped_epoch + 1}: {es.monitor} had not improved"
            message += (
                f" by more than {es.min_delta:g}" if es.min_delta else ""
            ) + f" for {es.patience} epochs."
        elif self.model.stop_training:
            status, reason = STOPPED, "stopped_in_script"
            message = f"Your script stopped the fit after {snap.epoch} epochs."
        else:
            epochs = self.params.get("epochs") or snap.epoch
            status, reason, message = FINISHED, "max_epochs", f"Trained all {epochs:,} epochs."
        run.set_status(status, stop_reason=reason, message=message)
        self._store.close()


def _fit_frame() -> Any:
    """The frame of the Keras ``fit`` call that is running this callback, if there is one."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "fit" and frame.f_globals.get("__name__", "").startswith("keras."):
            return frame
        frame = frame.f_back
    return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _file_state(ck: Any) -> tuple[int, int, int] | None:
    """(modified, size, inode) of the ModelCheckpoint's file: a save changes it."""
    if ck is None:
        return None
    try:
        st = os.stat(ck.filepath)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
