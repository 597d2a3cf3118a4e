"""Every stopping rule, one line each: adding a rule is its module plus a line here."""

from __future__ import annotations

from core.stopping.rules import (
    all_stalled,
    any_stalled,
    check_finite,
    divergence_threshold,
    early_stopping,
    forecast,
    prechelt_gl,
    prechelt_pq,
    prechelt_up,
    relative_min_delta,
    stopping_threshold,
    time_budget,
)
from core.stopping.rules.rule import StoppingRule

RULES: dict[str, StoppingRule] = {
    rule.name: rule
    for rule in (
        early_stopping.RULE,
        prechelt_gl.RULE,
        prechelt_pq.RULE,
        prechelt_up.RULE,
        stopping_threshold.RULE,
        divergence_threshold.RULE,
        relative_min_delta.RULE,
        check_finite.RULE,
        time_budget.RULE,
        all_stalled.RULE,
        any_stalled.RULE,
        forecast.RULE,
    )
}
