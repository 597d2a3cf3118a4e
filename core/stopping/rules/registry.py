"""Every stopping rule, one line each: adding a rule is its module plus a line here."""

from __future__ import annotations

from core.stopping.rules import early_stopping, prechelt_gl, prechelt_pq, prechelt_up
from core.stopping.rules.rule import StoppingRule

RULES: dict[str, StoppingRule] = {
    rule.name: rule
    for rule in (
        early_stopping.RULE,
        prechelt_gl.RULE,
        prechelt_pq.RULE,
        prechelt_up.RULE,
    )
}
