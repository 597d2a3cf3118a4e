"""How each model knob (a ModelConfig field) is shown: its widget label and step, and its comment in
the exported script. Ranges and units are the declaration's (core/config.py), not repeated here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Knob:
    label: str
    step: int | float  # the number input's step
    comment: str  # beside its constant in the exported script


KNOBS: dict[str, Knob] = {
    "units": Knob("Units", 16, "width of the dense layer(s)"),
    "depth": Knob("Hidden layers", 1, "hidden dense layers"),
    "dropout": Knob("Dropout", 0.05, "dropout rate (0: no dropout layer)"),
    "filters": Knob("Filters", 8, "filters of the first conv block"),
}
