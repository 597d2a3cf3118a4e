"""Stop once the monitored value is better than a target (PyTorch Lightning's stopping_threshold)."""

from __future__ import annotations

from core.stopping import thresholds
from core.stopping.rules.rule import Parameter, StoppingRule

RULE = StoppingRule(
    name="stopping_threshold",
    label="Target reached",
    description="Stop after the first epoch whose monitored value is better than the target.",
    parameters=(
        Parameter(
            "value",
            "Target value",
            0.1,
            -1e12,
            1e12,
            "Better means below it for a loss (min), above it for an accuracy (max).",
        ),
    ),  # fmt: skip
    replay_curves=lambda curves, p: thresholds.replay_threshold(
        curves.val, p["value"], curves.mode, beyond="better", rule=f"target {p['value']:g}"
    ),
    title=lambda p: f"Target {p['value']:g}",
    script_class=thresholds.SCRIPT_CLASS,
    script_call=lambda p, monitor, mode: (
        "StopAtThreshold",
        {"monitor": monitor, "threshold": float(p["value"]), "mode": mode, "beyond": "better"},
    ),
    explain=lambda p, r: f"the value {r.criterion[r.stopped_epoch]:.5g} is better than {p['value']:g}",
)
