"""The stopping-rule plugin contract: a rule's parameters, its exact replay and its live callback.

A rule is one module holding one ``StoppingRule`` plus a line in ``registry.py``. The What-if page
draws a rule's widgets from its ``parameters`` and replays it with ``replay``; ``live.callback``
gives the Keras callback that makes the same decision while a model trains (``live.RuleCallback``
for a rule that is only a replay, Keras' own callback where one exists), so the live decision and
the replay cannot drift apart.

>>> from core.stopping.rules.registry import RULES
>>> gl = RULES["prechelt_gl"]
>>> r = gl.replay(Curves(val=[1.0, 0.8, 0.9, 0.95]), gl.defaults())
>>> r.stopped_epoch + 1, r.final_weights_epoch + 1   # GL5: 0.9 is 12.5% above the best 0.8
(3, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.stopping.replay import ReplayResult


@dataclass(frozen=True)
class Parameter:
    """One setting of a rule, with the range a value must lie in (the widget's range too)."""

    name: str
    label: str
    default: float | int
    low: float | int
    high: float | int
    help: str = ""
    step: float | int | None = None

    @property
    def integer(self) -> bool:
        return isinstance(self.default, int)

    def check(self, value: Any) -> float | int:
        """The value as given, or ValueError naming the parameter (never clamped)."""
        kind = int if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not self.low <= value <= self.high:
            what = "a whole number" if self.integer else "a number"
            raise ValueError(
                f"{self.name}: must be {what} from {self.low:g} to {self.high:g}; got {value!r}."
            )
        return value


@dataclass(frozen=True)
class Curves:
    """The recorded curves a rule reads, one value per epoch (None where one was not logged)."""

    val: Sequence[float | None]
    train: Sequence[float | None] = ()


@dataclass(frozen=True)
class StoppingRule:
    name: str
    label: str  # e.g. "GL: generalization loss"
    description: str  # one line for the UI
    parameters: tuple[Parameter, ...]
    replay_curves: Callable[[Curves, Mapping[str, Any]], ReplayResult]
    title: Callable[[Mapping[str, Any]], str]  # the rule with its values, e.g. "GL5"
    needs_train: bool = False  # reads the training curve beside the monitored one
    keras_callback: Callable[[Mapping[str, Any], str], Any] | None = field(default=None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def checked(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {p.name for p in self.parameters}
        if unknown:
            raise ValueError(f"{self.name} has no parameter {sorted(unknown)[0]!r}.")
        return {p.name: p.check(params.get(p.name, p.default)) for p in self.parameters}

    def replay(self, curves: Curves, params: Mapping[str, Any]) -> ReplayResult:
        """Exactly what the rule decides on these curves (0-based epochs, as Keras counts)."""
        return self.replay_curves(curves, self.checked(params))
