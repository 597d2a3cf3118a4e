"""Each stopping rule's plain-Keras class in the exported script decides exactly as its replay (and
so as its live callback, which is the replay run after each epoch): property-tested on random
histories with gaps, NaN, ties and both modes, as the EarlyStopping replay is against Keras.

The cases come from the registry: a new rule with a script class is covered without an edit here.
"""

from __future__ import annotations

import math
import types

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.stopping.rules.registry import RULES
from core.stopping.rules.rule import Curves

SCRIPTED = sorted(name for name, rule in RULES.items() if rule.script_class)

# Values on a coarse grid make ties and repeated values common, where the rules' edges are.
_value = st.one_of(
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 2.0]),
    st.floats(0.0, 5.0, allow_nan=False).map(lambda v: round(v, 2)),
    st.just(math.nan),
    st.just(math.inf),  # a loss may overflow; it is never negative
    st.none(),
)


class _Clock:
    """``time`` for a class that reads the clock: each epoch begins at 0 and ends at its duration."""

    def __init__(self, durations):
        self.readings = [t for d in durations for t in (0.0, d)]

    def perf_counter(self) -> float:
        return self.readings.pop(0)


def _script_class(rule, durations):
    namespace = {"keras": keras}
    for line in rule.script_imports:  # as the script imports them, but time is the scripted clock
        if line == "import time":
            namespace["time"] = _Clock(durations)
        else:
            exec(line, namespace)  # noqa: S102 - the app's own import lines
    exec(rule.script_class, namespace)  # noqa: S102 - the app's own template, as the script runs it
    return namespace


@pytest.mark.parametrize("name", SCRIPTED)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_exported_class_stops_where_the_replay_stops(name, data):
    rule = RULES[name]
    params = {
        p.name: data.draw(
            st.integers(p.low, min(p.high, 12))
            if p.integer
            else st.sampled_from(
                [v for v in (p.low, p.default, 0.01, 0.5, 1.0, 2.0, 5.0, p.high) if p.low <= v <= p.high]
            ),
            label=p.name,
        )
        for p in rule.parameters
    }
    mode = "min" if rule.loss_only else data.draw(st.sampled_from(["min", "max"]), label="mode")
    n = data.draw(st.integers(1, 40), label="epochs")
    val = data.draw(st.lists(_value, min_size=n, max_size=n), label="val")
    train = data.draw(st.lists(_value, min_size=n, max_size=n), label="train")
    seconds = data.draw(st.lists(st.floats(0.0, 30.0), min_size=n, max_size=n), label="seconds")
    # A rule on several metrics reads both logged curves, each in a drawn direction.
    modes = {m: data.draw(st.sampled_from(["min", "max"]), label=m) for m in ("val_loss", "loss")}
    others = {"val_loss": val, "loss": train} if rule.several_monitors else {}
    curves = Curves(val=val, train=train, mode=mode, seconds=seconds, others=others,
                    modes=modes if rule.several_monitors else {})  # fmt: skip
    expected = rule.replay(curves, params)

    cls, kwargs = rule.script_call(rule.checked(params), "val_loss", mode)
    if rule.several_monitors:
        kwargs = {"monitors": modes, **kwargs}
    callback = _script_class(rule, seconds)[cls](**kwargs)
    callback.set_model(types.SimpleNamespace(stop_training=False))
    if hasattr(callback, "on_train_begin"):
        callback.on_train_begin()
    ran = 0
    for epoch in range(n):
        logs = {k: v for k, v in (("val_loss", val[epoch]), ("loss", train[epoch])) if v is not None}
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, logs)
        ran += 1
        if callback.model.stop_training:
            break
    assert ran == expected.epochs_run
    assert (callback.stopped_epoch is not None) == expected.stopped
    if expected.stopped:
        assert callback.stopped_epoch == expected.stopped_epoch


def test_every_rule_class_passes_the_users_ruff_in_an_exported_script(tmp_path):
    """The classes (and the forecast's embedded module) keep to ruff's defaults: 88 columns, E and F."""
    from core.config import RuleConfig, RunConfig
    from core.export.script import export_script
    from tests.export.test_export import ruff

    rules = [
        RuleConfig(name, RULES[name].defaults(), ["val_loss", "loss"] if RULES[name].several_monitors else [])
        for name in SCRIPTED
    ]
    for i in range(0, len(rules), 8):  # a config holds 8 rules at most
        (tmp_path / f"rules_{i}.py").write_text(export_script(RunConfig(stopping_rules=rules[i : i + 8])))
    lint = ruff("check", "--select", "E,F", "--output-format", "concise", cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = ruff("format", "--check", cwd=tmp_path)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
