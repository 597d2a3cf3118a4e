"""The public replay API, where callers outside this project import it: ``core.replay``.

The code lives in ``core/stopping/`` with the other stopping rules (``replay.py``: Keras' own decision
rules replayed exactly; ``sweeps.py``: the patience explorer); this module only keeps the import path,
the signatures and the results stable.
"""

from core.stopping.replay import (  # noqa: F401 - re-exported on purpose
    FLT_MIN,
    CheckpointReplay,
    Float32RangeError,
    ReplayResult,
    replay_checkpoint,
    replay_early_stopping,
    replay_history,
)
from core.stopping.sweeps import SWEEP_COLUMNS, patience_sweep, suggest_knee  # noqa: F401

__all__ = [
    "FLT_MIN",
    "SWEEP_COLUMNS",
    "CheckpointReplay",
    "Float32RangeError",
    "ReplayResult",
    "patience_sweep",
    "replay_checkpoint",
    "replay_early_stopping",
    "replay_history",
    "suggest_knee",
]
