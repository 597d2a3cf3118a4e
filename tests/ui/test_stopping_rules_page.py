"""The Train page's stopping rules (AppTest): chosen and set with widgets drawn from each rule's
declared parameters, read back in order into the config, problems named beside them, a loaded
config's rules shown exactly (also those the widgets cannot edit, kept until removed), and a run
started from the page is stopped by its rule."""

from __future__ import annotations

import json

import pytest

from core.config import RuleConfig, RunConfig
from core.presets import PRESETS
from tests.ui.test_pages import app, shown, tick_until_done

pytestmark = pytest.mark.usefixtures("thread_server")


def _load(at, config: RunConfig | dict):
    data = config.to_dict() if isinstance(config, RunConfig) else config
    at.text_area(key="config_paste").set_value(json.dumps(data))
    at.button(key="load_paste").click().run()
    return at.run()  # one more run: every widget drawn with the loaded values


def _errors(at) -> list[str]:
    return [shown(e) for e in at.error]


def test_rules_are_chosen_set_and_read_back_in_order():
    at = app().run()
    assert at.session_state["last_config"].stopping_rules == []
    at.multiselect(key="rules.chosen").select("prechelt_up").select("stopping_threshold").run()
    # Each starts from its defaults, in the order chosen.
    assert at.session_state["last_config"].stopping_rules == [
        RuleConfig("prechelt_up", {"s": 3, "k": 5}),
        RuleConfig("stopping_threshold", {"value": 0.1}),
    ]
    at.number_input(key="rules.prechelt_up.s").set_value(2).run()
    at.number_input(key="rules.stopping_threshold.value").set_value(0.05).run()
    assert at.session_state["last_config"].stopping_rules == [
        RuleConfig("prechelt_up", {"s": 2, "k": 5}),
        RuleConfig("stopping_threshold", {"value": 0.05}),
    ]
    assert "They watch EarlyStopping's monitor, val_loss (lower is better)" in " ".join(
        c.value for c in at.caption
    )
    # Out of its range: shown as typed, named, Start disabled.
    at.number_input(key="rules.prechelt_up.s").set_value(0).run()
    assert at.session_state["last_config"].stopping_rules[0].params["s"] == 0
    assert any(
        e.startswith("stopping_rules[0].params.s: must be a whole number from 1 to 50") for e in _errors(at)
    )
    assert at.button(key="start").disabled


def test_a_loaded_config_shows_its_rules_exactly_even_those_the_widgets_cannot_edit():
    at = app().run()
    data = PRESETS["quick_digits"].make().to_dict()
    data["stopping_rules"] = [
        {"name": "divergence_threshold", "params": {"value": 3}},
        {"name": "nope", "params": {"x": 1}},  # an unknown rule
        {"name": "prechelt_gl", "params": {}},  # its parameter missing
        {"name": "prechelt_pq", "params": {"alpha": 2.5, "k": 4}},
    ]
    _load(at, data)
    assert not at.exception
    config = RunConfig.from_dict(data)
    assert at.session_state["last_config"].stopping_rules == config.stopping_rules  # in order, exactly
    assert at.session_state["rules.chosen"] == ["divergence_threshold", "prechelt_pq"]
    errors = _errors(at)
    assert any(e.startswith("stopping_rules[1].name: unknown rule 'nope'") for e in errors), errors
    assert any(e.startswith("stopping_rules[2].params.alpha: missing") for e in errors), errors
    shown = "\n".join(t.value for t in at.text)
    assert 'stopping_rules[1]: {"name": "nope", "params": {"x": 1}}' in shown
    assert at.button(key="start").disabled
    # Removing the ones the page cannot edit keeps the others as they were.
    at.button(key="rules.drop_raw").click().run()
    assert at.session_state["last_config"].stopping_rules == [
        config.stopping_rules[0],
        config.stopping_rules[3],
    ]
    assert not [e for e in _errors(at) if e.startswith("stopping_rules")]


def test_a_higher_is_better_monitor_refuses_prechelts_rules_by_name():
    at = app().run()
    at.multiselect(key="rules.chosen").select("prechelt_gl").run()
    at.selectbox(key="early_stopping.monitor").set_value("val_accuracy").run()
    at.radio(key="early_stopping.mode").set_value("auto").run()
    errors = _errors(at)
    assert any(e.startswith("GL: generalization loss reads a loss") for e in errors), errors


def test_a_run_started_from_the_page_is_stopped_by_its_rule_and_says_so():
    at = app().run()
    at.number_input(key="fit.max_epochs").set_value(30).run()
    at.multiselect(key="rules.chosen").select("stopping_threshold").run()
    at.selectbox(key="early_stopping.monitor").set_value("val_accuracy").run()
    at.radio(key="early_stopping.mode").set_value("auto").run()
    at.number_input(key="rules.stopping_threshold.value").set_value(0.95).run()
    assert not [e for e in _errors(at)], _errors(at)
    at.button(key="start").click().run()
    at = tick_until_done(at)
    from ui.state import get_trainer

    snap = get_trainer().snapshot(at.query_params["run"])
    assert snap.stop_reason == "rule:stopping_threshold", snap.message
    assert len(snap.history) < 30
    assert snap.message.startswith(f"Target 0.95 stopped the run at epoch {len(snap.history)}")
    page = "\n".join(shown(e) for e in [*at.markdown, *at.caption, *at.success, *at.info])
    assert f"Target 0.95 stopped the run at epoch {len(snap.history)}" in page


def _rules_table(at):
    """The What-if's table of rules (AppTest keeps no dataframe keys): the one with a rule column."""
    [frame] = [d.value for d in at.dataframe if "rule" in d.value.columns]
    return frame.set_index("rule")


def test_the_what_if_replays_every_rule_starting_from_the_runs_own():
    """A run its target stopped: the What-if starts the rule from the run's value, its table says the
    rule stops at the epoch the run stopped, and another value is replayed as the rule decides."""
    from core.stopping.rules.registry import RULES
    from core.stopping.rules.rule import Curves
    from ui.state import get_trainer

    cfg = PRESETS["quick_digits"].make()
    cfg.fit.max_epochs = 30
    cfg.early_stopping.patience = 30
    cfg.stopping_rules = [RuleConfig("stopping_threshold", {"value": 0.95})]
    trainer = get_trainer()
    snap = trainer.wait(trainer.start(cfg).id, timeout=180)
    assert snap.stop_reason == "rule:stopping_threshold", snap.message

    at = app("pages/4_What_if.py")
    at.query_params["run"] = snap.id
    at.run()
    assert not at.exception, at.exception
    assert at.number_input(key="wi_rule.stopping_threshold.value").value == 0.95
    page = "\n".join(shown(m) for m in [*at.markdown, *at.caption, *at.info, *at.warning, *at.success])
    assert "was stopped by one of its stopping rules there" in page, page
    table = _rules_table(at)
    own = table.loc["Target 0.95 (this run's)"]
    assert own["stops at epoch"] == len(snap.history)
    # Another setting, replayed as the rule would decide on the same recording.
    at.number_input(key="wi_rule.stopping_threshold.value").set_value(0.5).run()
    values = [r.logs["val_loss"] for r in snap.history]
    expected = RULES["stopping_threshold"].replay(Curves(val=values), {"value": 0.5})
    table = _rules_table(at)
    assert table.loc["Target 0.5 (this run's)"]["stops at epoch"] == (
        expected.stopped_epoch + 1 if expected.stopped else None
    )
