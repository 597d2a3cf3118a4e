"""Rules that come in pairs: one builder each, so a pair's two modules differ only in what differs.

A threshold is either a target (stop once the value is better than it) or a divergence limit (once it is
worse); several metrics either all stalled or any stalled. Each rule is still its own module and
registry line; the arithmetic is ``core/stopping/thresholds.py`` and ``core/stopping/stalled.py``.
"""

from __future__ import annotations

from core.stopping import stalled as stalled_replay
from core.stopping import thresholds
from core.stopping.rules.rule import Parameter, StoppingRule


def threshold(
    *,
    name: str,
    label: str,
    beyond: str,
    value_label: str,
    default: float,
    word: str,
    help: str,
    title: str,
    rule: str,
) -> StoppingRule:
    """A rule that stops after the first epoch whose value is ``beyond`` ("better" or "worse") a value.
    ``title`` and ``rule`` are formats of the value (``"Target {:g}"``)."""
    return StoppingRule(
        name=name,
        label=label,
        description=f"Stop after the first epoch whose monitored value is {beyond} than the {word}.",
        parameters=(Parameter("value", value_label, default, -1e12, 1e12, help),),
        replay_curves=lambda curves, p: thresholds.replay_threshold(
            curves.val, p["value"], curves.mode, beyond=beyond, rule=rule.format(p["value"])
        ),
        title=lambda p: title.format(p["value"]),
        script_class=thresholds.SCRIPT_CLASS,
        script_call=lambda p, monitor, mode: (
            "StopAtThreshold",
            {"monitor": monitor, "threshold": float(p["value"]), "mode": mode, "beyond": beyond},
        ),
        explain=lambda p, r: f"the value {r.criterion[r.stopped_epoch]:.5g} is {beyond} than {p['value']:g}",
    )


def stalled(combine: str) -> StoppingRule:
    """Stop when ``combine`` ("all" or "any") of the chosen metrics went ``patience`` epochs without
    improving, each counted as EarlyStopping counts patience."""
    return StoppingRule(
        name=f"{combine}_stalled",
        label=f"{combine.capitalize()} stalled",
        description=(
            f"Stop when {'every' if combine == 'all' else 'any'} one of the chosen metrics has not improved "
            "for `patience` epochs."
        ),
        parameters=(
            Parameter(
                "patience", "Patience (epochs)", 10, 1, 1_000_000, "Epochs without improvement, per metric."
            ),
            Parameter(
                "min_delta", "min_delta", 0.0, 0.0, 1e9, "The smallest change that counts, per metric."
            ),
        ),
        replay_curves=lambda curves, p: stalled_replay.replay_stalled(
            curves.others,
            curves.modes,
            p["patience"],
            p["min_delta"],
            combine=combine,
            rule=f"{combine} stalled",
        ),  # fmt: skip
        title=lambda p: (
            f"{combine.capitalize()} stalled {p['patience']}: {combine} of the metrics without improvement"
        ),
        several_monitors=True,
        script_class=stalled_replay.SCRIPT_CLASS,
        script_call=lambda p, monitor, mode: (
            "Stalled",
            {"patience": p["patience"], "min_delta": float(p["min_delta"]), "combine": combine},
        ),
        explain=lambda p, r: f"{combine} of the metrics had gone {p['patience']} epochs without improving",
    )
