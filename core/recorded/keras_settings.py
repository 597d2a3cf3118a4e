"""A user's own EarlyStopping and ModelCheckpoint, read into the app's configs (what the What-if starts
from), and found in the fit's callback list.

Only what fits the declaration is taken; a setting outside it (a patience of 10**9, a mode Keras does
not know) turns that callback's config off, and ``notes`` says so, so nothing is changed silently.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict
from typing import Any

from core.config import CheckpointConfig, EarlyStoppingConfig, check_config, unchecked


def find_callbacks(me: Any) -> list[Any]:
    """The callbacks of the fit ``me`` is part of: Keras' ``CallbackList`` calls ``on_train_begin`` of
    each callback from its own method, so it is the ``self`` of a calling frame. Empty if not found."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            owner = frame.f_locals.get("self")
            callbacks = getattr(owner, "callbacks", None)
            if owner is not me and isinstance(callbacks, list) and any(c is me for c in callbacks):
                return list(callbacks)
            frame = frame.f_back
        return []
    finally:
        del frame


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def early_stopping_config(es: Any | None, notes: list[str]) -> EarlyStoppingConfig:
    if es is None:
        return EarlyStoppingConfig(enabled=False)
    cfg = EarlyStoppingConfig(
        enabled=True,
        monitor=str(es.monitor),
        mode=str(es.mode),
        patience=es.patience,
        min_delta=abs(_number(es.min_delta) or 0.0),  # Keras negates it once it knows the mode is min
        baseline=_number(es.baseline),
        restore_best_weights=bool(es.restore_best_weights),
        start_from_epoch=es.start_from_epoch,
    )
    return _declared("early_stopping", cfg, EarlyStoppingConfig(enabled=False), notes)


def checkpoint_config(ck: Any | None, notes: list[str]) -> CheckpointConfig:
    if ck is None:
        return CheckpointConfig(enabled=False)
    path = str(ck.filepath)
    fmt = next((f for f in (".weights.h5", ".keras", ".h5") if path.endswith(f)), ".keras")
    threshold = getattr(ck, "initial_value_threshold", None)
    if threshold is None and ck.best is not None and ck.best not in (float("inf"), float("-inf")):
        threshold = ck.best  # Keras keeps the threshold as its starting best
    cfg = CheckpointConfig(
        enabled=True,
        monitor=str(ck.monitor),
        mode=str(ck.mode),
        save_best_only=bool(ck.save_best_only),
        save_weights_only=bool(ck.save_weights_only),
        format=fmt,
        initial_value_threshold=_number(threshold),
    )
    return _declared("checkpoint", cfg, CheckpointConfig(enabled=False), notes)


def _declared(section: str, cfg: Any, off: Any, notes: list[str]) -> Any:
    """``cfg`` when the declaration accepts it, else ``off`` and a note naming the fields."""
    probe = unchecked({section: asdict(cfg)})
    problems = [p for p in check_config(probe) if p.field.startswith(section + ".")]
    if not problems:
        return cfg
    notes.append(
        f"Your {section} settings are outside what the app can replay ("
        + "; ".join(p.message for p in problems)
        + "); they are recorded as off."
    )
    return off
