"""Stop at the first epoch whose monitored value is NaN or infinite (PyTorch Lightning's check_finite).

Keras' ``TerminateOnNaN`` watches the training loss only (the app stops those runs by itself); this
watches the monitored metric, such as a validation loss that overflows while training goes on. A
missing value is not judged. It does not restore weights (the model kept is ModelCheckpoint's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.stopping.replay import ReplayResult, kept_as_trained
from core.stopping.rules.rule import Curves, StoppingRule


def replay_check_finite(curves: Curves, params: Mapping[str, Any] | None = None) -> ReplayResult:
    """Where the rule stops: the first epoch with a value that is not finite (``criterion``: the value)."""
    stop = None
    criterion: list[float] = []
    for t, v in enumerate(curves.val):
        value = math.nan if v is None else float(v)
        criterion.append(value)
        if v is not None and not math.isfinite(value):
            stop = t
            break
    return kept_as_trained(len(curves.val), stop, rule="check finite", criterion=criterion)


SCRIPT_CLASS = '''
class StopWhenNotFinite(keras.callbacks.Callback):
    """Stops at the first epoch whose monitored value is NaN or infinite, as PyTorch
    Lightning's EarlyStopping(check_finite=True) does (TerminateOnNaN watches the loss
    only). A missing value is not judged."""

    def __init__(self, monitor):
        super().__init__()
        self.monitor = monitor
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if value != value or value in (float("inf"), float("-inf")):
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(f"Epoch {epoch + 1}: {self.monitor} is {value}; stopping.")
'''

RULE = StoppingRule(
    name="check_finite",
    label="Not finite",
    description="Stop at the first epoch whose monitored value is NaN or infinite.",
    parameters=(),
    replay_curves=replay_check_finite,
    title=lambda p: "Not finite: the monitored value is NaN or infinite",
    script_class=SCRIPT_CLASS,
    script_call=lambda p, monitor, mode: ("StopWhenNotFinite", {"monitor": monitor}),
    explain=lambda p, r: f"the monitored value is {r.criterion[r.stopped_epoch]}",
)
