"""Stop when all of several metrics have stalled (each counted as EarlyStopping counts patience)."""

from __future__ import annotations

from core.stopping.rules import families

RULE = families.stalled("all")
