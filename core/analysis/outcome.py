"""What a finished run kept: EarlyStopping's best epoch, ModelCheckpoint's, and why they differ.

Keras' two callbacks keep their own best. They part when they watch different metrics (or directions),
and also on the same metric: ModelCheckpoint has no ``min_delta`` (any strict improvement is kept),
no ``baseline`` and no ``start_from_epoch``, but has ``initial_value_threshold``; with
``save_best_only`` off it keeps the last epoch. The page says which epoch each kept, and why, rather
than one "best epoch" that is only true of one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.metrics import resolve_mode
from core.store.runs import RunSnapshot


@dataclass(frozen=True)
class Kept:
    es_epoch: int | None  # EarlyStopping's best epoch (1-based), what restore_best_weights restores
    es_monitor: str | None
    es_value: float | None
    ck_epoch: int | None  # the epoch in the checkpoint file
    ck_monitor: str | None
    ck_value: float | None
    why: str | None  # why they differ; None when they agree or one of them is off
    epochs_saved: int | None  # epochs early stopping spared against the maximum; None if it did not stop it


def _value(snap: RunSnapshot, epoch: int | None, monitor: str | None) -> float | None:
    if epoch is None or monitor is None or not 0 < epoch <= len(snap.history):
        return None
    v = snap.history[epoch - 1].logs.get(monitor)
    return None if v is None or math.isnan(v) else float(v)


def kept(snap: RunSnapshot) -> Kept:
    es, ck = snap.config.early_stopping, snap.config.checkpoint
    es_epoch = next((r.es_best_epoch for r in reversed(snap.history) if r.es_best_epoch), None)
    es_epoch = es_epoch if es.enabled else None
    ck_epoch = snap.checkpoint_epoch if ck.enabled else None
    why = None
    if es_epoch is not None and ck.enabled and ck_epoch != es_epoch:
        why = _why(snap, es_epoch, ck_epoch)
    saved = max(snap.max_epochs - len(snap.history), 0) if snap.stop_reason == "early_stopping" else None
    return Kept(
        es_epoch=es_epoch,
        es_monitor=es.monitor if es.enabled else None,
        es_value=_value(snap, es_epoch, es.monitor),
        ck_epoch=ck_epoch,
        ck_monitor=ck.monitor if ck.enabled else None,
        ck_value=_value(snap, ck_epoch, ck.monitor),
        why=why,
        epochs_saved=saved,
    )


def _why(snap: RunSnapshot, es_epoch: int, ck_epoch: int | None) -> str:
    es, ck = snap.config.early_stopping, snap.config.checkpoint
    if not ck.save_best_only:
        return "ModelCheckpoint saves every epoch (save_best_only is off), so its file holds the last one."
    if ck_epoch is None:
        if ck.initial_value_threshold is not None:
            return (
                f"ModelCheckpoint saves nothing until {ck.monitor} beats its initial_value_threshold "
                f"({ck.initial_value_threshold:g}), and it never did."
            )
        return f"ModelCheckpoint never saved: {ck.monitor} was never logged with a value."
    if es.monitor != ck.monitor:
        return f"They watch different metrics: EarlyStopping {es.monitor}, ModelCheckpoint {ck.monitor}."
    es_mode, ck_mode = resolve_mode(es.monitor, es.mode), resolve_mode(ck.monitor, ck.mode)
    if es_mode != ck_mode:
        return (
            f"They watch {es.monitor} in different directions "
            f"(EarlyStopping {es_mode}, ModelCheckpoint {ck_mode})."
        )
    if es.start_from_epoch and ck_epoch <= es.start_from_epoch:
        return (
            f"EarlyStopping ignores the first {es.start_from_epoch} epochs (start_from_epoch); "
            "ModelCheckpoint has no such warm-up."
        )
    if ck.initial_value_threshold is not None and ck_epoch > es_epoch:
        return (
            f"ModelCheckpoint saves only once {ck.monitor} beats its initial_value_threshold "
            f"({ck.initial_value_threshold:g}); EarlyStopping has no threshold."
        )
    if es.min_delta:
        return (
            f"EarlyStopping counts only improvements by more than min_delta ({abs(es.min_delta):g}); "
            "ModelCheckpoint has no min_delta and keeps any strict improvement."
        )
    return "Keras' two callbacks keep their best separately (EarlyStopping's baseline, a resumed run)."
