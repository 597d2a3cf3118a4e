"""Prechelt's GL_alpha: stop when the validation error is alpha % above its lowest so far."""

from __future__ import annotations

from core.stopping import prechelt
from core.stopping.rules.rule import Parameter, StoppingRule

RULE = StoppingRule(
    name="prechelt_gl",
    label="GL: generalization loss",
    description="Stop when the validation loss is alpha % above its best so far (Prechelt, 1998).",
    parameters=(Parameter("alpha", "GL alpha (%)", 5.0, 0.1, 1000.0, "Percent above the best so far."),),
    replay_curves=lambda curves, p: prechelt.replay_gl(curves.val, p["alpha"]),
    title=lambda p: f"GL{p['alpha']:g}: loss {p['alpha']:g}% above its best",
    loss_only=True,
    script_class=prechelt.SCRIPT_GL,
    script_call=lambda p, monitor, mode: (
        "GeneralizationLoss",
        {"monitor": monitor, "alpha": float(p["alpha"])},
    ),
    explain=lambda p, r: (
        f"the loss is {r.criterion[r.stopped_epoch]:.3g}% above its best (more than {p['alpha']:g}%)"
    ),
)
