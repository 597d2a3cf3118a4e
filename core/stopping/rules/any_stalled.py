"""Stop when any of several metrics have stalled (each counted as EarlyStopping counts patience)."""

from __future__ import annotations

from core.stopping import stalled
from core.stopping.rules.rule import Parameter, StoppingRule

RULE = StoppingRule(
    name="any_stalled",
    label="Any stalled",
    description="Stop when any one of the chosen metrics has not improved for `patience` epochs.",
    parameters=(
        Parameter(
            "patience", "Patience (epochs)", 10, 1, 1_000_000, "Epochs without improvement, per metric."
        ),
        Parameter("min_delta", "min_delta", 0.0, 0.0, 1e9, "The smallest change that counts, per metric."),
    ),
    replay_curves=lambda curves, p: stalled.replay_stalled(
        curves.others, curves.modes, p["patience"], p["min_delta"], combine="any", rule="any stalled"
    ),
    title=lambda p: f"Any stalled {p['patience']}: any of the metrics without improvement",
    several_monitors=True,
    script_class=stalled.SCRIPT_CLASS,
    script_call=lambda p, monitor, mode: (
        "Stalled",
        {"patience": p["patience"], "min_delta": float(p["min_delta"]), "combine": "any"},
    ),
    explain=lambda p, r: f"any of the metrics had gone {p['patience']} epochs without improving",
)
