"""Stop a run that has diverged: the monitored value worse than a limit (Lightning's divergence_threshold)."""

from __future__ import annotations

from core.stopping.rules import families

RULE = families.threshold(
    name="divergence_threshold",
    label="Diverged",
    beyond="worse",
    word="limit",
    value_label="Divergence limit",
    default=10.0,
    help="Worse means above it for a loss (min), below it for an accuracy (max).",
    title="Divergence limit {:g}",
    rule="diverged past {:g}",
)
