"""Stop once the monitored value is better than a target (PyTorch Lightning's stopping_threshold)."""

from __future__ import annotations

from core.stopping.rules import families

RULE = families.threshold(
    name="stopping_threshold",
    label="Target reached",
    beyond="better",
    word="target",
    value_label="Target value",
    default=0.1,
    help="Better means below it for a loss (min), above it for an accuracy (max).",
    title="Target {:g}",
    rule="target {:g}",
)
