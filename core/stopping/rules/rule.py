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
    """The recorded curves a rule reads, one value per epoch (None where one was not logged).

    ``val`` is the monitored metric, ``train`` the same metric on the training data (``val_loss`` ->
    ``loss``), ``mode`` whether lower (``min``) or higher (``max``) is better, ``seconds`` each
    epoch's training time as the run recorded it (validation included).
    """

    val: Sequence[float | None]
    train: Sequence[float | None] = ()
    mode: str = "min"
    seconds: Sequence[float] = ()
    # A rule on several metrics: each one's values and direction ("min" or "max").
    others: Mapping[str, Sequence[float | None]] = field(default_factory=dict)
    modes: Mapping[str, str] = field(default_factory=dict)


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
    # Reads an error measure (a loss: lower is better, never negative), as Prechelt's criteria do.
    loss_only: bool = False
    # Watches the metrics of its config's ``monitors`` (two or more), not EarlyStopping's monitor.
    several_monitors: bool = False
    # The exported script's plain Keras version: a callback class (source text, no import of this
    # app), and the class name and keyword arguments that make it from the rule's parameters, the
    # monitor and the mode.
    script_class: str = ""
    script_imports: tuple[str, ...] = ()  # what the class needs, e.g. ("import time",)
    script_call: Callable[[Mapping[str, Any], str, str], tuple[str, dict[str, Any]]] | None = field(
        default=None
    )
    # Why it stopped, in a sentence: the rule's parameters, the 0-based stop epoch and the replay.
    explain: Callable[[Mapping[str, Any], ReplayResult], str] | None = field(default=None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def checked(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {p.name for p in self.parameters}
        if unknown:
            raise ValueError(f"{self.name} has no parameter {sorted(unknown)[0]!r}.")
        return {p.name: p.check(params.get(p.name, p.default)) for p in self.parameters}

    def replay(self, curves: Curves, params: Mapping[str, Any]) -> ReplayResult:
        """Exactly what the rule decides on these curves (0-based epochs, as Keras counts)."""
        checked = self.checked(params)
        if self.loss_only and curves.mode != "min":
            raise ValueError(f"{self.label} reads a loss (lower is better); this metric is higher-is-better.")
        return self.replay_curves(curves, checked)

    def short_title(self, params: Mapping[str, Any]) -> str:
        """The rule with its values in a word or two, e.g. "GL5" (the title up to its colon)."""
        return self.title(params).split(":")[0]

    def because(self, params: Mapping[str, Any], result: ReplayResult) -> str:
        """The stop reason a user reads: which rule, with its values, and what it saw."""
        head = f"{self.short_title(params)} stopped the run at epoch {result.stopped_epoch + 1}"
        return f"{head}: {self.explain(params, result)}." if self.explain else f"{head}."
