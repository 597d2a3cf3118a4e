"""Stop a run that has diverged: the monitored value worse than a limit (Lightning's divergence_threshold)."""

from __future__ import annotations

from core.stopping import thresholds
from core.stopping.rules.rule import Parameter, StoppingRule

RULE = StoppingRule(
    name="divergence_threshold",
    label="Diverged",
    description="Stop after the first epoch whose monitored value is worse than the limit.",
    parameters=(
        Parameter(
            "value",
            "Divergence limit",
            10.0,
            -1e12,
            1e12,
            "Worse means above it for a loss (min), below it for an accuracy (max).",
        ),
    ),  # fmt: skip
    replay_curves=lambda curves, p: thresholds.replay_threshold(
        curves.val, p["value"], curves.mode, beyond="worse", rule=f"diverged past {p['value']:g}"
    ),
    title=lambda p: f"Divergence limit {p['value']:g}",
    script_class=thresholds.SCRIPT_CLASS,
    script_call=lambda p, monitor, mode: (
        "StopAtThreshold",
        {"monitor": monitor, "threshold": float(p["value"]), "mode": mode, "beyond": "worse"},
    ),
    explain=lambda p, r: f"the value {r.criterion[r.stopped_epoch]:.5g} is worse than {p['value']:g}",
)
