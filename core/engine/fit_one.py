"""Trains one run from start to end and records how it ended (in the worker process or a thread).

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
from typing import Any

from core import backends, metrics, models
from core.config import RunConfig
from core.data import datasets
from core.engine import batch_groups, resume_point
from core.models.keras_file import ModelFileError
from core.stopping import arguments
from core.store.runs import (
    FAILED,
    FINISHED,
    RUNNING,
    STOPPED,
    STOPPING,
    Run,
)

_fitting: set[str] = set()  # ids of the runs inside ``model.fit`` in this process


class BackendMismatch(RuntimeError):
    """The run's backend is not the one this process's Keras runs (a safety net: the queue routes
    runs to a worker of their backend, and thread mode refuses them at start)."""


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

        backend = backends.resolve(cfg.fit.backend, cfg.model.name)
        if keras.backend.backend() != backend:  # never train silently on another backend
            raise BackendMismatch(
                f"fit.backend: this run trains on {backend}, but the process that took it runs Keras on "
                f"{keras.backend.backend()}. Nothing was trained; start it again."
            )
        run.log(f"Backend: {backend} (Keras {keras.__version__}).")
        # Keras' names and graph state as in a fresh process. Without its garbage collection: the run
        # before this one (or the worker's warm-up) collected at its end, and a full collection in a
        # process holding TensorFlow costs ~0.2 s, which here would delay the first epoch.
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(cfg.fit.seed)
        ds = datasets.load(
            cfg.data,
            validation_split=cfg.fit.validation_split,
            seed=cfg.fit.seed,
            uploads_dir=run.store.root / "uploads",
        )
        run.log(ds.description)
        model = models.build(ds, cfg.model, cfg.fit, uploads_dir=run.store.root / "uploads")
        run.log(f"Model {cfg.model.name}: {model.count_params():,} parameters.")
        point = None
        if run.resume_epoch is not None:
            point = resume_point.read(run.dir)
            resume_point.apply(point, model)
            run.log(
                f"Resuming after epoch {point.epoch}: weights, optimizer, dropout state, early stopping "
                "and checkpoint state restored."
            )
        batch_groups.settle(run, model, ds)  # steps_per_execution "auto": measured (or read back) here
        _fit(run, ds, model, point)
    except (datasets.DatasetError, resume_point.ResumeError, ModelFileError, BackendMismatch) as exc:
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

            keras.backend.clear_session()  # with one full garbage collection: the run's memory back
        except Exception:  # noqa: BLE001
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
    from core.engine.epoch_order import epoch_batches
    from core.engine.guarded_callbacks import (
        AtomicModelCheckpoint,
        EpochClock,
        EpochGate,
        EpochWeightsKeeper,
        GuardedEarlyStopping,
        GuardedReduceLROnPlateau,
        ResumePointKeeper,
    )
    from core.engine.live_callback import LiveCallback

    cfg = run.config
    gate = EpochGate()
    es = ck = None
    if cfg.early_stopping.enabled:
        es = GuardedEarlyStopping(gate, **arguments.keras_arguments(cfg.early_stopping))
    if cfg.checkpoint.enabled:
        ck = AtomicModelCheckpoint(
            checkpoint_path(run), gate, **arguments.checkpoint_arguments(cfg.checkpoint)
        )
    clock = EpochClock()
    rules = _rule_callbacks(cfg, gate, clock)
    rl = None
    if cfg.reduce_lr.enabled:
        rl = GuardedReduceLROnPlateau(gate, **arguments.reduce_lr_arguments(cfg.reduce_lr))
    has_val = ds.x_val is not None
    val_steps = math.ceil(len(ds.x_val) / cfg.fit.batch_size) if has_val else None
    live = LiveCallback(
        run,
        gate,
        main_metric=metrics.main_metric(ds.task),
        early_stopping=es,
        checkpoint=ck,
        rules=rules,
        reduce_lr=rl,
        clock=clock,
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
        if rl is not None and point.reduce_lr is not None:
            rl.resumed_state = point.reduce_lr
        if rules:  # a rule's state is its replay of the curves so far: the recorded epochs
            before = [r for r in run.snapshot().history if r.epoch <= point.epoch]
            for rule in rules:
                rule.resume_from(
                    [r.logs.get(rule.monitor) for r in before],
                    [r.logs.get(rule.train_key) for r in before],
                    [r.seconds for r in before],
                    {m: [r.logs.get(m) for r in before] for m in rule.monitors},
                )
    resumer = ResumePointKeeper(
        run.dir, gate, early_stopping=es, checkpoint=ck, summary=lambda: _summary(run), reduce_lr=rl
    )
    batches, shuffler = epoch_batches(ds.x_train, ds.y_train, cfg.fit.batch_size, cfg.fit.seed, first_epoch)
    # The schedule first: it puts the epoch's learning rate into the logs the others (and the history) see.
    guarded = [cb for cb in (rl, es, ck, keeper) if cb is not None]
    callbacks = [shuffler, *guarded, clock, *rules, live, resumer]
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
    elif (fired := next((r for r in rules if r.stopped_epoch is not None), None)) is not None:
        status, reason, message = FINISHED, f"rule:{fired.rule.name}", fired.because()
    else:
        status, reason, message = FINISHED, "max_epochs", f"Trained all {cfg.fit.max_epochs:,} epochs."
    if resume_point.is_final(reason):
        resume_point.remove(run.dir)  # complete: the point would only take disk space
    if status == STOPPED:
        # The user asked: say at once that it stopped. The run stays live ("stopping", so nothing can
        # resume or delete it under the evaluation, and a crash now leaves it interrupted and
        # resumable, as before) until the test metrics are recorded with the final status.
        run.set_status(STOPPING, stop_reason=reason, message=message)
    test = _evaluate_on_test(run, ds, model, ck)
    run.set_status(status, stop_reason=reason, message=message, test_metrics=test)


def _rule_callbacks(cfg: RunConfig, gate, clock) -> list:
    """The config's stopping rules as Keras callbacks, watching EarlyStopping's monitor and mode.

    In a run a rule only decides when to stop (``restore=False``): the model kept is ModelCheckpoint's,
    and EarlyStopping's restore_best_weights is never overruled by a rule's own choice.
    """
    from core.stopping.rules.live import RuleCallback
    from core.stopping.rules.registry import RULES

    es = cfg.early_stopping
    mode = metrics.resolve_mode(es.monitor, es.mode) or "min"
    return [
        RuleCallback(
            RULES[r.name], RULES[r.name].checked(r.params), monitor=es.monitor, mode=mode, restore=False,
            skip_epoch=lambda: gate.cut_short, epoch_seconds=lambda: clock.seconds,
            monitors={m: metrics.resolve_mode(m, "auto") or "min" for m in r.monitors},
        )
        for r in cfg.stopping_rules
    ]  # fmt: skip


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


def load_checkpoint(
    path, ds: datasets.Dataset | None = None, run_config: RunConfig | None = None, uploads_dir=None
):
    """The seed's ``load_model``; weights-only files go into a freshly built model. Safe mode on."""
    import keras

    path = str(path)
    if path.endswith(".weights.h5"):
        if ds is None or run_config is None:
            raise ValueError("A weights-only checkpoint needs the dataset and config to rebuild the model.")
        model = models.build(ds, run_config.model, run_config.fit, uploads_dir=uploads_dir)
        model.load_weights(path)
        return model
    return keras.models.load_model(path, safe_mode=True)


def _evaluate_on_test(run: Run, ds: datasets.Dataset, model, ck) -> dict[str, float]:
    """The seed's last step: the kept checkpoint (not the last weights) on the held-out test split."""
    source = "final weights"
    if ck is not None and ck.final_path.exists():
        model = load_checkpoint(ck.final_path, ds, run.config, run.store.root / "uploads")
        source = f"checkpoint of epoch {ck.saved_epochs[-1] + 1}" if ck.saved_epochs else "checkpoint"
    elif ck is not None:
        run.log("No checkpoint was saved; evaluating the final weights instead.")
    from core.engine.live_callback import EvaluationProgress

    result: dict[str, Any] = model.evaluate(
        ds.x_test,
        ds.y_test,
        batch_size=run.config.fit.batch_size,
        verbose=0,
        return_dict=True,
        callbacks=[EvaluationProgress(run)],
    )
    test = {k: float(v) for k, v in result.items()}
    run.log(
        f"Test set ({len(ds.x_test):,} samples, {source}): "
        + " - ".join(f"{k}: {v:.4f}" for k, v in test.items())
    )
    return test
