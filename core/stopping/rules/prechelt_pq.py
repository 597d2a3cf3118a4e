"""Prechelt's PQ_alpha: generalization loss per unit of training progress over strips of k epochs."""

from __future__ import annotations

from core.stopping import prechelt
from core.stopping.rules.rule import Parameter, StoppingRule

RULE = StoppingRule(
    name="prechelt_pq",
    label="PQ: progress quotient",
    description="At a strip end, stop when GL over the training progress exceeds alpha (Prechelt, 1998).",
    parameters=(
        Parameter("alpha", "PQ alpha", 1.0, 0.1, 1000.0, "GL / P_k above this stops."),
        Parameter("k", "PQ strip (epochs)", 5, 1, 100, "Epochs per strip."),
    ),
    replay_curves=lambda curves, p: prechelt.replay_pq(curves.train, curves.val, p["alpha"], k=p["k"]),
    title=lambda p: f"PQ{p['alpha']:g}: GL / training progress (strips of {p['k']})",
    needs_train=True,
    loss_only=True,
    script_class=prechelt.SCRIPT_PQ,
    script_call=lambda p, monitor, mode: (
        "ProgressQuotient",
        {"monitor": monitor, "alpha": float(p["alpha"]), "k": p["k"]},
    ),
    explain=lambda p, r: (
        f"GL / training progress is {r.criterion[r.stopped_epoch]:.3g} (more than {p['alpha']:g})"
    ),
)
