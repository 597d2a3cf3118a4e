"""One vocabulary for the stopping settings: a config turned into its Keras callback's arguments.

Everything that builds a Keras callback (core/engine/fit_one.py), replays one (core/stopping/replay.py,
core/analysis/whatif.py) or writes one into the exported script (core/export/script.py) takes its
keyword arguments from here, so the arguments are spelled out once. The order is the one the
exported script prints.
"""

from __future__ import annotations

from typing import Any

from core.config import CheckpointConfig, EarlyStoppingConfig, ReduceLRConfig

# The arguments of keras.callbacks.EarlyStopping that decide when it stops, besides monitor and mode.
REPLAY_PARAMETERS = ("patience", "min_delta", "baseline", "restore_best_weights", "start_from_epoch")


def keras_arguments(es: EarlyStoppingConfig) -> dict[str, Any]:
    """``keras.callbacks.EarlyStopping(**keras_arguments(es))`` is the run's EarlyStopping."""
    return {"monitor": es.monitor, "mode": es.mode, **replay_arguments(es)}


def replay_arguments(es: EarlyStoppingConfig) -> dict[str, Any]:
    """The keyword arguments of ``replay_early_stopping`` (the values come separately, mode resolved)."""
    return {name: getattr(es, name) for name in REPLAY_PARAMETERS}


def checkpoint_arguments(ck: CheckpointConfig) -> dict[str, Any]:
    """``keras.callbacks.ModelCheckpoint(path, **checkpoint_arguments(ck))`` is the run's checkpoint."""
    return {
        "monitor": ck.monitor,
        "mode": ck.mode,
        "save_best_only": ck.save_best_only,
        "save_weights_only": ck.save_weights_only,
        "initial_value_threshold": ck.initial_value_threshold,
    }


# The arguments of keras.callbacks.ReduceLROnPlateau that decide the schedule, besides monitor and mode.
REDUCE_LR_PARAMETERS = ("factor", "patience", "min_delta", "cooldown", "min_lr")


def reduce_lr_arguments(rl: ReduceLRConfig) -> dict[str, Any]:
    """``keras.callbacks.ReduceLROnPlateau(**reduce_lr_arguments(rl))`` is the run's schedule."""
    return {
        "monitor": rl.monitor,
        "mode": rl.mode,
        **{name: getattr(rl, name) for name in REDUCE_LR_PARAMETERS},
    }
