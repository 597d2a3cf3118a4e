"""Prechelt's UP_s: stop when the validation error rose in s successive strips of k epochs."""

from __future__ import annotations

from core.stopping import prechelt
from core.stopping.rules.rule import Parameter, StoppingRule

RULE = StoppingRule(
    name="prechelt_up",
    label="UP: successive rises",
    description="Stop after s successive strips of k epochs whose validation loss rose (Prechelt, 1998).",
    parameters=(
        Parameter("s", "UP s (strips)", 3, 1, 50, "Successive rising strips."),
        Parameter("k", "UP strip (epochs)", 5, 1, 100, "Epochs per strip."),
    ),
    replay_curves=lambda curves, p: prechelt.replay_up(curves.val, p["s"], k=p["k"]),
    title=lambda p: f"UP{p['s']}: rising for {p['s']} strips of {p['k']}",
    loss_only=True,
    script_class=prechelt.SCRIPT_UP,
    script_call=lambda p, monitor, mode: ("SuccessiveRises", {"monitor": monitor, "s": p["s"], "k": p["k"]}),
    explain=lambda p, r: f"the loss rose at the end of {p['s']} successive strips of {p['k']} epochs",
)
