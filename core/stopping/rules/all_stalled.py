"""Stop when all of several metrics have stalled (each counted as EarlyStopping counts patience)."""

from __future__ import annotations

from core.stopping import stalled
from core.stopping.rules.rule import Parameter, StoppingRule

RULE = StoppingRule(
    name="all_stalled",
    label="All stalled",
    description="Stop when every one of the chosen metrics has not improved for `patience` epochs.",
    parameters=(
        Parameter(
            "patience", "Patience (epochs)", 10, 1, 1_000_000, "Epochs without improvement, per metric."
        ),
        Parameter("min_delta", "min_delta", 0.0, 0.0, 1e9, "The smallest change that counts, per metric."),
    ),
    replay_curves=lambda curves, p: stalled.replay_stalled(
        curves.others, curves.modes, p["patience"], p["min_delta"], combine="all", rule="all stalled"
    ),
    title=lambda p: f"All stalled {p['patience']}: all of the metrics without improvement",
    several_monitors=True,
    script_class=stalled.SCRIPT_CLASS,
    script_call=lambda p, monitor, mode: (
        "Stalled",
        {"patience": p["patience"], "min_delta": float(p["min_delta"]), "combine": "all"},
    ),
    explain=lambda p, r: f"all of the metrics had gone {p['patience']} epochs without improving",
)
