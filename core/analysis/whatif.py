"""What-if on one recorded run: other EarlyStopping / ModelCheckpoint settings, replayed exactly.

Joins the pure replay (core.replay, 0-based like Keras' attributes) with a run's recording and says,
in 1-based epochs as the rest of the app does, where training would have stopped, which weights the
model would end with, which checkpoint would be kept, and what that costs against the recording.
It also says what a recording cannot answer: epochs that were never trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core import metrics
from core.config import MAX_NAME_CHARS, CheckpointConfig, EarlyStoppingConfig, ReduceLRConfig
from core.stopping import arguments, replay
from core.stopping.reduce_lr import ScheduleReplay, replay_reduce_lr
from core.stopping.rules.registry import RULES
from core.stopping.rules.rule import Curves, StoppingRule
from core.store.runs import RunSnapshot


def settings_from_run(snap: RunSnapshot) -> tuple[EarlyStoppingConfig, CheckpointConfig]:
    """The run's own stopping settings: what the what-if starts from."""
    return snap.config.early_stopping, snap.config.checkpoint


@dataclass(frozen=True)
class WhatIf:
    early_stopping: EarlyStoppingConfig  # as replayed (the Train page's config types, whole)
    checkpoint: CheckpointConfig
    mode: str  # resolved
    ck_mode: str
    epochs_recorded: int
    recording_complete: bool  # the run trained every epoch up to its max: nothing is missing
    stopped: bool  # the rule stops within the recording
    stop_epoch: int | None  # 1-based
    epochs_run: int  # what the rule would have trained (at least this many when not stopped)
    final_weights_epoch: int | None  # 1-based: the weights the model ends with
    kept_epoch: int | None  # 1-based: the checkpoint file kept (save_best_only)
    saved_epochs: tuple[int, ...]  # 1-based
    best_recorded_epoch: int | None  # 1-based, of the checkpoint monitor over the whole recording
    best_recorded: float | None
    value_at_kept: float | None
    value_at_final: float | None  # of the EarlyStopping monitor
    given_up: float | None  # how much worse the kept checkpoint is than the recording's best (>= 0)
    note: str | None  # what the recording cannot answer

    @property
    def epochs_saved(self) -> int:
        return self.epochs_recorded - self.epochs_run


def series(snap: RunSnapshot, key: str) -> list[float | None]:
    """One value per recorded epoch, None where the metric was not logged."""
    return [r.logs.get(key) for r in snap.history]


def resolve(monitor: str, mode: str) -> str:
    resolved = metrics.resolve_mode(monitor, mode)
    if resolved is None:
        raise ValueError(f"Keras cannot tell whether {monitor!r} should go up or down: pick min or max.")
    return resolved


def what_if(snap: RunSnapshot, es: EarlyStoppingConfig, ck: CheckpointConfig) -> WhatIf:
    """The recording replayed under ``es`` and ``ck``, exactly as the two Keras callbacks decide.

    EarlyStopping off trains every recorded epoch; ModelCheckpoint off keeps nothing, and without
    save_best_only it saves (and so keeps) every epoch it trains.
    """
    n = len(snap.history)
    mode, ck_mode = resolve(es.monitor, es.mode), resolve(ck.monitor, ck.mode)
    if es.enabled:
        replayed = replay.replay_early_stopping(
            series(snap, es.monitor), mode=mode, **arguments.replay_arguments(es)
        )
        stopped, final = replayed.stopped_epoch > 0, replayed.final_weights_epoch if n else None
    else:
        stopped, final = False, (n - 1 if n else None)
    epochs_run = replayed.stopped_epoch + 1 if stopped else n
    if not ck.enabled:
        saved: tuple[int, ...] = ()
    elif ck.save_best_only:
        saved = tuple(
            replay.replay_checkpoint(
                series(snap, ck.monitor)[:epochs_run],
                mode=ck_mode,
                initial_value_threshold=ck.initial_value_threshold,
            ).saved_epochs
        )
    else:
        saved = tuple(range(epochs_run))
    kept = saved[-1] if saved else None

    full = series(snap, ck.monitor)
    finite = [(i, v) for i, v in enumerate(full) if v is not None and math.isfinite(v)]
    best_i, best_v = (None, None)
    if finite:
        best_i, best_v = (min if ck_mode == "min" else max)(finite, key=lambda t: t[1])
    value_at_kept = full[kept] if kept is not None else None
    given_up = None
    if value_at_kept is not None and best_v is not None and math.isfinite(value_at_kept):
        given_up = (value_at_kept - best_v) if ck_mode == "min" else (best_v - value_at_kept)
    es_values = series(snap, es.monitor)
    complete = snap.stop_reason == "max_epochs" and n >= snap.max_epochs
    note = None
    if not stopped and not complete and n:
        note = (
            f"This rule does not stop within the {n} recorded epochs. The recording ends at epoch {n} "
            f"because the run {_why_it_ends(snap)}, so what it would have done next needs "
            "epochs that were never trained. Record a full curve (early stopping off) to answer it."
        )
    return WhatIf(
        early_stopping=es,
        checkpoint=ck,
        mode=mode,
        ck_mode=ck_mode,
        epochs_recorded=n,
        recording_complete=complete,
        stopped=stopped,
        stop_epoch=epochs_run if stopped else None,
        epochs_run=epochs_run,
        final_weights_epoch=final + 1 if final is not None else None,
        kept_epoch=kept + 1 if kept is not None else None,
        saved_epochs=tuple(e + 1 for e in saved),
        best_recorded_epoch=best_i + 1 if best_i is not None else None,
        best_recorded=best_v,
        value_at_kept=value_at_kept,
        value_at_final=es_values[final] if final is not None and final < len(es_values) else None,
        given_up=given_up,
        note=note,
    )


def full_curve_config(snap: RunSnapshot, max_epochs: int):
    """The same run with early stopping off for ``max_epochs``: a curve made for exploring."""
    cfg = snap.config
    suffix = "-full-curve"  # the run's name is cut to make room: a name of any valid length has a curve
    new = replace(
        cfg,
        name=cfg.name[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix,
        fit=replace(cfg.fit, max_epochs=max_epochs),
        early_stopping=replace(cfg.early_stopping, enabled=False),
        checkpoint=replace(cfg.checkpoint, keep_every_epoch=True),
    )
    return new


def other_rules() -> list[StoppingRule]:
    """The registered rules besides EarlyStopping (which the page replays with the run's config)."""
    return [rule for name, rule in RULES.items() if name != "early_stopping"]


def rules_table(snap: RunSnapshot, es: EarlyStoppingConfig, settings: Mapping[str, Mapping[str, Any]]):
    """Each rule in ``settings`` (name -> its parameters) replayed on the recording, beside each other.

    The rules read EarlyStopping's monitor in its mode, as they do in a run, and, where they need it,
    the training curve of the same metric (``val_loss`` -> ``loss``). A rule that cannot read this
    curve (Prechelt's on an accuracy) or parameters out of its range give a row that says why.
    """
    import pandas as pd

    monitor = es.monitor
    val = series(snap, monitor)
    curves = Curves(
        val=val,
        train=series(snap, monitor.removeprefix("val_")),
        mode=resolve(monitor, es.mode),
        seconds=[r.seconds for r in snap.history],
    )
    several = rule_monitors(snap)
    own = {r.name for r in snap.config.stopping_rules}
    n = len(val)
    rows = []
    for name, params in settings.items():
        rule = RULES[name]
        row: dict[str, Any] = {"rule": rule.label + (" (this run's)" if name in own else "")}
        if rule.several_monitors:
            chosen = several.get(name, [])
            curves = replace(
                curves,
                others={m: series(snap, m) for m in chosen},
                modes={m: metrics.resolve_mode(m, "auto") or "min" for m in chosen},
            )
        try:
            r = rule.replay(curves, params)
        except ValueError as exc:
            rows.append({**row, "note": str(exc)})
            continue
        best = r.final_weights_epoch
        rows.append(
            {
                "rule": rule.title(rule.checked(params)) + (" (this run's)" if name in own else ""),
                "stops at epoch": r.stopped_epoch + 1 if r.stopped else None,
                "epochs trained": f"{r.epochs_run}"
                if r.stopped
                else f"{n}+ (does not stop within the recording)",
                "weights epoch": best + 1 if best is not None else None,
                "value there": val[best] if best is not None else None,
                "note": "",
            }
        )
    return pd.DataFrame(rows)


def schedule_what_if(snap: RunSnapshot, rl: ReduceLRConfig) -> ScheduleReplay:
    """ReduceLROnPlateau under ``rl`` replayed on the recording, against the rates it trained with.

    A run without the schedule trained at its configured rate throughout (as its float32 variable
    held it). The replay follows the recording only up to ``exact_until`` (see core/stopping/reduce_lr.py).
    """
    values = series(snap, rl.monitor)
    initial = snap.config.fit.learning_rate
    recorded = series(snap, "learning_rate")
    if all(r is None for r in recorded):
        recorded = [float(np.float32(initial))] * len(values)
    return replay_reduce_lr(
        values,
        initial_rate=initial,
        mode=resolve(rl.monitor, rl.mode),
        **{name: getattr(rl, name) for name in arguments.REDUCE_LR_PARAMETERS},
        recorded_rates=recorded,
    )


def rule_monitors(snap: RunSnapshot) -> dict[str, list[str]]:
    """The metrics a rule on several metrics reads in the what-if: the run's own choice where it had
    the rule, else every validation metric the run logged (or every metric, without validation)."""
    logged = sorted(snap.history[-1].logs) if snap.history else []
    default = [m for m in logged if m.startswith("val_")] or [m for m in logged if m != "learning_rate"]
    out = {rule.name: default for rule in other_rules() if rule.several_monitors}
    for r in snap.config.stopping_rules:
        if r.name in out and r.monitors:
            out[r.name] = list(r.monitors)
    return out


def rule_defaults(snap: RunSnapshot) -> dict[str, dict[str, Any]]:
    """The parameters the what-if starts each rule from: the run's own where it had the rule."""
    out = {rule.name: rule.defaults() for rule in other_rules()}
    for r in snap.config.stopping_rules:
        if r.name in out:
            try:
                out[r.name] = RULES[r.name].checked(r.params)
            except ValueError:
                pass  # a crafted config: the rule's defaults
    return out


_ENDED_BY = {
    "early_stopping": "stopped early there",
    "max_epochs": "reached its max epochs there",
    "user": "was stopped by its user there",
    "stopped_in_script": "was stopped by its script there",
    "nan_loss": "stopped there on a NaN loss",
    "interrupted": "was interrupted there",
    "error": "failed there",
    "exception": "ended there when its script's fit raised",
}


def _why_it_ends(snap: RunSnapshot) -> str:
    """Why the recording ends where it does, as the end of "The recording ends at epoch n because the
    run ...": a run still training has not ended at all."""
    if snap.is_live:
        return "is still training"
    if (snap.stop_reason or "").startswith("rule:"):
        return "was stopped by one of its stopping rules there"
    return _ENDED_BY.get(snap.stop_reason or "", "ended there")
