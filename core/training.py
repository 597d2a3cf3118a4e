"""Starts runs and trains them one at a time in a background thread.

``Trainer.start`` validates, records the run on disk as queued and returns at once; a single daemon
worker takes runs from the queue, so several users of one 2-core server wait their turn instead of
thrashing it. TensorFlow is imported by the worker when the first run starts, never before.
"""

from __future__ import annotations

import errno
import gc
import math
import os
import sqlite3
import threading
import time
import traceback
from collections import deque
from dataclasses import replace
from typing import Any

from core import datasets, metrics, models, resume_point
from core.config import Problem, RunConfig, errors
from core.runs import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    STOPPED,
    STOPPING,
    Run,
    RunSnapshot,
    RunStore,
    is_run_id,
    new_run_id,
)
from core.validate import validate

MAX_QUEUE_ENV = "ESLAB_MAX_QUEUE"
_fitting: set[str] = set()  # ids of the runs inside ``model.fit`` in this process
TRAIN_IN_ENV = "ESLAB_TRAIN_IN"  # "process" (a recycled worker process) or "thread" (this process)


class InvalidConfig(ValueError):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class QueueFull(RuntimeError):
    pass


class Trainer:
    """Process-wide: owns the queue, the worker thread and the runs started in this process."""

    def __init__(
        self, store: RunStore | None = None, max_queue: int | None = None, train_in: str | None = None
    ):
        self.store = store or RunStore()
        self.max_queue = max_queue if max_queue is not None else int(os.environ.get(MAX_QUEUE_ENV, "8"))
        self.train_in = train_in or os.environ.get(TRAIN_IN_ENV, "thread")
        if self.train_in not in ("thread", "process"):
            raise ValueError(f"{TRAIN_IN_ENV} must be 'thread' or 'process', not {self.train_in!r}")
        self.interrupted = self.store.mark_interrupted()
        self._last_reap = time.monotonic()
        self._runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._current: Run | None = None

    # -- starting and stopping ------------------------------------------------------------------------
    def start(self, config: RunConfig) -> Run:
        problems = errors(validate(config, uploads_dir=self.store.root / "uploads"))
        if problems:
            raise InvalidConfig(problems)
        with self._cond:
            self._check_room()
            run_id = new_run_id()
            created = time.time()
            self.store.create(run_id, config, created)
            run = Run(run_id, config, self.store, created_at=created)
            self._enqueue(run)
        return run

    def _check_room(self) -> None:
        if len(self._queue) >= self.max_queue:
            raise QueueFull(
                f"{len(self._queue)} runs are already waiting, the most this server queues. "
                "Try again when one has finished."
            )

    def _enqueue(self, run: Run) -> None:
        """Under ``self._cond``."""
        self._runs[run.id] = run
        self._queue.append(run)
        self._ensure_worker()
        self._cond.notify_all()

    def resume(self, run_id: str) -> Run:
        """Queues an interrupted or stopped run to continue from its resume point.

        It ends where the same run never interrupted would have: same stop epoch, same best value.
        Raises ResumeError with the reason for the page when it cannot.
        """
        if not is_run_id(run_id):
            raise resume_point.ResumeError("No such run.")
        try:
            snap = self.snapshot(run_id)
        except KeyError:
            raise resume_point.ResumeError("No such run.") from None
        reason = resume_point.why_not(snap, self.store.run_dir(run_id))
        if reason:
            raise resume_point.ResumeError(reason)
        point = resume_point.header(self.store.run_dir(run_id))  # the arrays are read where it trains
        epoch = point["epoch"]
        with self._cond:
            self._check_room()
            if not self.store.claim(run_id, (INTERRUPTED, STOPPED, FAILED)):
                raise resume_point.ResumeError("This run was just resumed elsewhere.")
            run = Run.continuing(snap, self.store, epoch, point["summary"])
            dropped = snap.epoch - epoch
            run.log(
                f"Resume requested: continuing after epoch {epoch}"
                + (f" (epochs {epoch + 1}-{snap.epoch} are trained again)." if dropped > 0 else ".")
            )
            self._enqueue(run)
        return run

    def stop(self, run_id: str) -> None:
        """Stops a running run within one batch; a queued one never starts."""
        run = self._runs.get(run_id)
        if run is None:  # trained by another process (python -m core train, another server)
            if is_run_id(run_id):
                self.store.request_stop(run_id)
            return
        with self._cond:
            if run in self._queue:
                self._queue.remove(run)
                run.log("Stopped by user before it started.")
                run.set_status(STOPPED, stop_reason="user", message="Stopped before it started.")
                return
        run.stop_requested.set()
        if self.train_in == "process" and run is self._current:
            from core.worker_process import shared_pool

            shared_pool().stop(run_id)
        run.set_status(STOPPING, expect=(RUNNING,))

    def rename(self, run_id: str, name: str) -> None:
        """ValueError("name: …") for a name the store refuses (see ``runs.name_problem``)."""
        if isinstance(name, str):
            name = name.strip()
        self.store.rename(run_id, name)
        run = self._runs.get(run_id)
        if run is not None:
            run.config.name = name
            run.set_fields(config=run.config)

    def delete(self, run_id: str) -> None:
        """Deletes a run and its files; a live run must be stopped first."""
        snap = self.snapshot(run_id)
        if snap.is_live:
            raise RuntimeError(f"{snap.config.name} is still {snap.status}: stop it before deleting it.")
        self._runs.pop(run_id, None)
        self.store.delete(run_id)

    # -- reading ------------------------------------------------------------------------------------
    def snapshot(self, run_id: str) -> RunSnapshot:
        """The live state for runs of this process, the stored state for any other. KeyError if none."""
        run = self._runs.get(run_id)
        if run is None:
            snap = self.store.load(run_id)
            if snap.is_live and self._reap():
                snap = self.store.load(run_id)
            return snap
        snap = run.snapshot()
        if snap.status == QUEUED:
            snap = replace(snap, queue_position=self.queue_position(run_id))
        return snap

    def list_runs(self):
        """The index, newest first, with runs of processes that died since marked interrupted."""
        self._reap()
        return self.store.list()

    def _reap(self, every: float = 5.0) -> bool:
        """Marks runs whose training process died (e.g. a killed ``python -m core train``) interrupted.

        At start-up that happens once; while the server runs, at most every ``every`` seconds, when a
        page looks. True if any run changed.
        """
        now = time.monotonic()
        if now - self._last_reap < every:
            return False
        self._last_reap = now
        return bool(self.store.mark_interrupted())

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None when not waiting."""
        with self._cond:
            for i, run in enumerate(self._queue):
                if run.id == run_id:
                    return i + 1
        return None

    def wait(self, run_id: str, timeout: float = 600.0) -> RunSnapshot:
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot(run_id)
            if not snap.is_live:
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(f"Run {run_id} still {snap.status} after {timeout} s")
            time.sleep(0.05)

    def exists(self, run_id: str) -> bool:
        return is_run_id(run_id) and (run_id in self._runs or self.store.exists(run_id))

    # -- the worker ---------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="eslab-trainer", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                run = self._queue.popleft()
                self._current = run
            try:
                if self.train_in == "process":
                    from core.worker_process import shared_pool

                    shared_pool().train(run)
                else:
                    execute(run)
            except BaseException:  # noqa: BLE001 - the worker must outlive any run
                traceback.print_exc()
            finally:
                self._current = None


def execute(run: Run) -> None:
    """Trains one run to its end and records how it ended. Never raises: failures are recorded."""
    cfg = run.config
    run.set_status(RUNNING)
    model = None
    watcher = threading.Thread(
        target=_watch_store_for_stop, args=(run,), name="eslab-stop-watch", daemon=True
    )
    watcher.start()
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        keras.backend.clear_session()
        gc.collect()
        keras.utils.set_random_seed(cfg.fit.seed)
        ds = datasets.load(
            cfg.data,
            validation_split=cfg.fit.validation_split,
            seed=cfg.fit.seed,
            uploads_dir=run.store.root / "uploads",
        )
        run.log(ds.description)
        model = models.build(ds, cfg.model, cfg.fit)
        run.log(f"Model {cfg.model.name}: {model.count_params():,} parameters.")
        point = None
        if run.resume_epoch is not None:
            point = resume_point.read(run.dir)
            resume_point.apply(point, model)
            run.log(
                f"Resuming after epoch {point.epoch}: weights, optimizer, dropout state, early stopping "
                "and checkpoint state restored."
            )
        _fit(run, ds, model, point)
    except (datasets.DatasetError, resume_point.ResumeError) as exc:
        record_failure(run, str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure becomes the run's message, not a crash
        try:
            (run.dir / "error.txt").write_text(traceback.format_exc())
        except OSError:
            pass  # the disk may be the problem; the message below still reaches the page
        record_failure(run, _describe_failure(run, exc))
    finally:
        del model
        try:
            import keras

            keras.backend.clear_session()
        except Exception:  # noqa: BLE001
            pass
        gc.collect()


def fit_begun(run_id: str) -> bool:
    """True once the run is inside ``model.fit`` in this process: a Stop then ends it after the batch.

    Before (TensorFlow's import, loading the data, building the model) nothing checks for a Stop.
    """
    return run_id in _fitting


def _watch_store_for_stop(run: Run, interval: float = 1.0) -> None:
    """A Stop pressed in another process (a server showing a headless run) arrives through the index."""
    while run.status in (RUNNING, STOPPING) and not run.stop_requested.is_set():
        try:
            if run.store.stop_requested(run.id):
                run.log("Stop requested from another process.")
                run.stop_requested.set()
                return
        except Exception:  # noqa: BLE001 - a watcher must never take the run down
            return
        time.sleep(interval)


_DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM}
_DISK_WORDS = ("No space left", "File too large", "Read-only file system", "Permission denied", "Disk quota")
# SQLite's words when the index cannot be written (EFBIG / EIO, ENOSPC, EROFS / EACCES at open).
_INDEX_WORDS = ("disk I/O error", "database or disk is full", "readonly database", "unable to open database")


def _describe_failure(run: Run, exc: BaseException) -> str:
    """The message the page shows: plain words for a runs folder that cannot be written."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return (
            f"The run index (runs.sqlite in {run.store.root}) stayed locked by another program for "
            f"{run.store.timeout:g} s, so this run could not record its progress. Training stopped; every "
            f"finished epoch is kept and {_what_is_kept(run)}. Close the program holding the index "
            "(a database browser, a backup tool) and resume or train again."
        )
    disk = isinstance(exc, OSError) and exc.errno in _DISK_ERRORS
    index = isinstance(exc, sqlite3.Error) and any(w in str(exc) for w in _INDEX_WORDS)
    if disk or index or any(w in str(exc) for w in _DISK_WORDS):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if index:
            reason = f"runs.sqlite: {reason}"
        return (
            f"Could not write to the runs folder {run.store.root} ({reason}). Training stopped; every "
            f"finished epoch is kept and {_what_is_kept(run)}. Free some space (or fix the folder's "
            "permissions) and train again."
        )
    return text


def _what_is_kept(run: Run) -> str:
    epoch = run.snapshot().checkpoint_epoch
    return f"the checkpoint of epoch {epoch} is intact" if epoch else "no checkpoint had been saved yet"


def record_failure(run: Run, message: str) -> None:
    """Records the failure; must not raise, even when the disk that failed the run fails again."""
    try:
        run.log(f"Failed: {message}")
    except OSError:
        pass
    run.set_status(FAILED, stop_reason="error", message=message)


def _fit(run: Run, ds: datasets.Dataset, model, point: resume_point.ResumePoint | None = None) -> None:
    from core.epoch_order import EpochShuffledBatches, ShuffleEachEpoch
    from core.guarded_callbacks import (
        AtomicModelCheckpoint,
        EpochGate,
        EpochWeightsKeeper,
        GuardedEarlyStopping,
        ResumePointKeeper,
    )
    from core.live import LiveCallback

    cfg = run.config
    gate = EpochGate()
    es = ck = None
    if cfg.early_stopping.enabled:
        e = cfg.early_stopping
        es = GuardedEarlyStopping(
            gate,
            monitor=e.monitor,
            mode=e.mode,
            patience=e.patience,
            min_delta=e.min_delta,
            baseline=e.baseline,
            restore_best_weights=e.restore_best_weights,
            start_from_epoch=e.start_from_epoch,
        )
    if cfg.checkpoint.enabled:
        c = cfg.checkpoint
        ck = AtomicModelCheckpoint(
            checkpoint_path(run),
            gate,
            monitor=c.monitor,
            mode=c.mode,
            save_best_only=c.save_best_only,
            save_weights_only=c.save_weights_only,
            initial_value_threshold=c.initial_value_threshold,
        )
    has_val = ds.x_val is not None
    val_steps = math.ceil(len(ds.x_val) / cfg.fit.batch_size) if has_val else None
    live = LiveCallback(
        run,
        gate,
        main_metric=metrics.main_metric(ds.task),
        early_stopping=es,
        checkpoint=ck,
        val_steps=val_steps,
    )
    keeper = EpochWeightsKeeper(run.dir, gate) if cfg.checkpoint.keep_every_epoch else None
    first_epoch = 0
    if point is not None:
        first_epoch = point.epoch
        if es is not None and point.early_stopping is not None:
            es.resumed_state = (point.early_stopping, point.es_best_weights)
        if ck is not None and point.checkpoint is not None:
            ck.load_resume_state(point.checkpoint)
    resumer = ResumePointKeeper(
        run.dir, gate, early_stopping=es, checkpoint=ck, summary=lambda: _summary(run)
    )
    batches = EpochShuffledBatches(ds.x_train, ds.y_train, cfg.fit.batch_size, cfg.fit.seed, first_epoch)
    guarded = [cb for cb in (es, ck, keeper) if cb is not None]
    callbacks = [ShuffleEachEpoch(batches), *guarded, live, resumer]
    run.set_fields(checkpoint_path=str(ck.final_path) if ck else None)
    _fitting.add(run.id)
    try:
        model.fit(
            batches,
            validation_data=(ds.x_val, ds.y_val) if has_val else None,
            epochs=cfg.fit.max_epochs,
            initial_epoch=first_epoch,
            shuffle=False,  # the batches shuffle themselves; Keras would reorder them with Python's random
            callbacks=callbacks,
            verbose=0,
        )
    finally:
        _fitting.discard(run.id)
    snap = run.snapshot()
    if live.stop_reason == "user":
        status, reason, message = STOPPED, "user", f"Stopped by user after {snap.epoch} finished epochs."
    elif live.stop_reason == "nan_loss":
        status, reason = FAILED, "nan_loss"
        message = (
            f"The loss became NaN in epoch {live.cut_epoch}; training stopped. "
            "Try a lower learning rate. Finished epochs and the best checkpoint are kept."
        )
    elif es is not None and es.stopped_epoch > 0:
        status, reason = FINISHED, "early_stopping"
        delta = abs(cfg.early_stopping.min_delta)
        message = (
            f"Early stopping at epoch {es.stopped_epoch + 1}: {es.monitor} had not improved"
            + (f" by more than {delta:g}" if delta else "")
            + f" for {es.patience} epochs."
        )
    else:
        status, reason, message = FINISHED, "max_epochs", f"Trained all {cfg.fit.max_epochs:,} epochs."
    if reason in resume_point.FINAL_REASONS:
        resume_point.remove(run.dir)  # complete: the point would only take disk space
    test = _evaluate_on_test(run, ds, model, ck)
    run.set_status(status, stop_reason=reason, message=message, test_metrics=test)


def _summary(run: Run) -> dict:
    """The headline fields a resumed run starts from (they may name epochs a crash lost)."""
    snap = run.snapshot()
    return {
        "monitor": snap.monitor,
        "best_epoch": snap.best_epoch,
        "best_value": snap.best_value,
        "checkpoint_epoch": snap.checkpoint_epoch,
    }


def checkpoint_path(run: Run):
    return run.dir / f"checkpoint{run.config.checkpoint.format}"


def load_checkpoint(path, ds: datasets.Dataset | None = None, run_config: RunConfig | None = None):
    """The seed's ``load_model``; weights-only files go into a freshly built model. Safe mode on."""
    import keras

    path = str(path)
    if path.endswith(".weights.h5"):
        if ds is None or run_config is None:
            raise ValueError("A weights-only checkpoint needs the dataset and config to rebuild the model.")
        model = models.build(ds, run_config.model, run_config.fit)
        model.load_weights(path)
        return model
    return keras.models.load_model(path, safe_mode=True)


def _evaluate_on_test(run: Run, ds: datasets.Dataset, model, ck) -> dict[str, float]:
    """The seed's last step: the kept checkpoint (not the last weights) on the held-out test split."""
    source = "final weights"
    if ck is not None and ck.final_path.exists():
        model = load_checkpoint(ck.final_path, ds, run.config)
        source = f"checkpoint of epoch {ck.saved_epochs[-1] + 1}" if ck.saved_epochs else "checkpoint"
    elif ck is not None:
        run.log("No checkpoint was saved; evaluating the final weights instead.")
    result: dict[str, Any] = model.evaluate(
        ds.x_test, ds.y_test, batch_size=run.config.fit.batch_size, verbose=0, return_dict=True
    )
    test = {k: float(v) for k, v in result.items()}
    run.log(
        f"Test set ({len(ds.x_test):,} samples, {source}): "
        + " - ".join(f"{k}: {v:.4f}" for k, v in test.items())
    )
    return test
