"""The config's stopping rules in real runs: a rule stops the fit at the epoch its replay of the
recorded curve gives, names itself in the stop reason and the log, marks the chart, and a run it
stops after a resume ends exactly like the run never interrupted."""

from __future__ import annotations

import dataclasses
import time

import pytest

from core.charts.figures import stop_marker
from core.config import CheckpointConfig, EarlyStoppingConfig, RuleConfig
from core.data import datasets
from core.engine import resume_point
from core.engine.fit_one import load_checkpoint
from core.engine.queue import Trainer
from core.stopping.rules.registry import RULES
from core.stopping.rules.rule import Curves
from core.store.runs import FINISHED, STOPPED, RunStore
from tests.engine.test_resume import resumable_config
from tests.engine.test_training import digits_config

pytestmark = pytest.mark.xdist_group("stopping-rules")  # its module fixture runs once, on one worker

GL = RuleConfig("prechelt_gl", {"alpha": 5.0})


def gl_config():
    """The resume tests' digits MLP (dropout: its masks must continue too); EarlyStopping patient
    enough that GL5 stops it first (at epoch 7 on this machine)."""
    cfg = resumable_config(max_epochs=40)
    return dataclasses.replace(
        cfg,
        name="gl-test",
        early_stopping=dataclasses.replace(cfg.early_stopping, patience=50),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
        stopping_rules=[GL],
    )


def _val_losses(snap) -> list[float]:
    return [r.logs["val_loss"] for r in snap.history]


@pytest.fixture(scope="module")
def gl_run(tmp_path_factory):
    trainer = Trainer(RunStore(tmp_path_factory.mktemp("gl")))
    snap = trainer.wait(trainer.start(gl_config()).id, timeout=300)
    assert snap.status == FINISHED, snap.message
    return trainer, snap


def test_a_rule_stops_the_run_where_its_replay_stops_and_says_so(gl_run):
    trainer, snap = gl_run
    n = len(snap.history)
    assert snap.stop_reason == "rule:prechelt_gl"
    assert n < 60 and snap.stopped_epoch == n
    replay = RULES["prechelt_gl"].replay(Curves(val=_val_losses(snap)), GL.params)
    assert replay.stopped and replay.stopped_epoch + 1 == n
    assert n >= 4, "room to stop and resume before the rule fires"
    assert snap.message.startswith(f"GL5 stopped the run at epoch {n}: the loss is ")
    assert snap.message.endswith("% above its best (more than 5%).")
    assert f"Epoch {n}: GL5 stopped the run at epoch {n}" in "\n".join(snap.log_lines)
    assert stop_marker(snap) == "GL5 stop"
    assert snap.stop_label == "stopping rule prechelt_gl"
    # It ended on its own: nothing to resume, and no resume point left behind.
    assert resume_point.saved_epoch(trainer.store.run_dir(snap.id)) is None
    with pytest.raises(resume_point.ResumeError, match="ended on its own"):
        trainer.resume(snap.id)
    # The kept model is ModelCheckpoint's best epoch: the rule does not overrule it.
    cfg = gl_config()
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    best = min(range(n), key=lambda i: _val_losses(snap)[i])
    assert snap.checkpoint_epoch == best + 1
    val = load_checkpoint(snap.checkpoint_path).evaluate(ds.x_val, ds.y_val, verbose=0, return_dict=True)
    assert val["loss"] == pytest.approx(_val_losses(snap)[best], abs=1e-5)


def test_a_run_stopped_and_resumed_is_stopped_by_its_rule_at_the_same_epoch(gl_run, trainer):
    _, reference = gl_run
    run = trainer.start(gl_config())
    deadline = time.monotonic() + 120
    while run.snapshot().epoch < 2:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    stopped = trainer.wait(run.id)
    assert stopped.status == STOPPED and stopped.epoch < reference.stopped_epoch
    resumed = trainer.wait(trainer.resume(run.id).id, timeout=300)
    assert resumed.status == FINISHED and resumed.stop_reason == "rule:prechelt_gl", resumed.message
    assert resumed.stopped_epoch == reference.stopped_epoch
    assert _val_losses(resumed) == _val_losses(reference)  # bit for bit
    assert resumed.message == reference.message


def test_a_target_on_a_higher_is_better_metric_stops_at_the_first_epoch_beyond_it(trainer):
    cfg = digits_config(max_epochs=40)
    cfg = dataclasses.replace(
        cfg,
        early_stopping=EarlyStoppingConfig(monitor="val_accuracy", mode="auto", patience=40),
        stopping_rules=[RuleConfig("stopping_threshold", {"value": 0.9})],
    )
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED and snap.stop_reason == "rule:stopping_threshold", snap.message
    acc = [r.logs["val_accuracy"] for r in snap.history]
    first = next(i for i, a in enumerate(acc) if a > 0.9)
    assert len(acc) == first + 1 and snap.stopped_epoch == first + 1
    assert "is better than 0.9" in snap.message
    assert stop_marker(snap) == "Target 0.9 stop"


def test_the_exported_script_stops_on_the_same_rule_at_the_same_epoch(gl_run, tmp_path):
    from core.export.script import export_script
    from tests.export.test_export import assert_same_run, engine_summary, run_script

    _, snap = gl_run
    src = export_script(gl_config())
    assert "class GeneralizationLoss(keras.callbacks.Callback):" in src
    assert "core" not in {
        line.split()[1].split(".")[0] for line in src.splitlines() if line.startswith("import ")
    }
    result = run_script(src, tmp_path)
    assert_same_run(result, engine_summary(snap))
    assert result["stopped_epoch"] == len(snap.history)


def test_a_time_budget_stops_where_the_recorded_epoch_times_say(trainer):
    cfg = digits_config(max_epochs=200)
    cfg = dataclasses.replace(
        cfg,
        early_stopping=dataclasses.replace(cfg.early_stopping, enabled=False),
        stopping_rules=[RuleConfig("time_budget", {"minutes": 0.005})],  # 0.3 s of training
    )
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED and snap.stop_reason == "rule:time_budget", snap.message
    seconds = [r.seconds for r in snap.history]
    n = len(seconds)
    assert 1 <= n < 200 and sum(seconds[:-1]) <= 0.3 < sum(seconds)  # over the budget at its last epoch
    replay = RULES["time_budget"].replay(Curves(val=[None] * n, seconds=seconds), {"minutes": 0.005})
    assert replay.stopped and replay.stopped_epoch + 1 == n  # the recording replays to the same stop
    assert snap.message.startswith(f"Time budget 0.005 min stopped the run at epoch {n}: ")


def test_any_stalled_on_two_metrics_stops_where_its_replay_of_both_says(trainer):
    cfg = digits_config(max_epochs=60)
    rule = RuleConfig("any_stalled", {"patience": 2, "min_delta": 0.0}, ["val_loss", "val_accuracy"])
    cfg = dataclasses.replace(
        cfg, early_stopping=dataclasses.replace(cfg.early_stopping, enabled=False), stopping_rules=[rule]
    )
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED and snap.stop_reason == "rule:any_stalled", snap.message
    curves = {m: [r.logs[m] for r in snap.history] for m in rule.monitors}
    replay = RULES["any_stalled"].replay(
        Curves(val=curves["val_loss"], others=curves, modes={"val_loss": "min", "val_accuracy": "max"}),
        rule.params,
    )
    assert replay.stopped and replay.stopped_epoch + 1 == len(snap.history) == snap.stopped_epoch


def test_the_forecast_rule_stops_a_run_where_its_replay_says_and_its_script_agrees(trainer, tmp_path):
    """The forecast on val_accuracy (higher is better): the run stops where the replay of its
    recording stops, the chart and message say so, and the exported script (which carries the
    forecast's own code) stops at the same epoch."""
    from core.export.script import export_script
    from tests.export.test_export import assert_same_run, engine_summary, run_script

    rule = RuleConfig("forecast", {"horizon": 5, "min_delta": 0.0, "chance": 50.0, "min_epochs": 6})
    cfg = digits_config(max_epochs=40)
    cfg = dataclasses.replace(
        cfg,
        name="forecast-test",
        early_stopping=EarlyStoppingConfig(monitor="val_accuracy", mode="auto", patience=40),
        stopping_rules=[rule],
    )
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED and snap.stop_reason == "rule:forecast", snap.message
    acc = [r.logs["val_accuracy"] for r in snap.history]
    replay = RULES["forecast"].replay(Curves(val=acc, mode="max"), rule.params)
    assert replay.stopped and replay.stopped_epoch + 1 == len(acc) == snap.stopped_epoch
    assert len(acc) >= 6
    assert snap.message.startswith(f"Forecast <50% in 5 stopped the run at epoch {len(acc)}: ")
    assert "% chance that one of the next 5 epochs beats the best" in snap.message
    assert stop_marker(snap) == "Forecast <50% in 5 stop"
    src = export_script(cfg)
    assert "def chance_of_improvement(values, mode, horizon, min_delta):" in src
    assert "class ForecastStopping(keras.callbacks.Callback):" in src
    result = run_script(src, tmp_path)
    assert_same_run(result, engine_summary(snap))
    assert result["stopped_epoch"] == len(acc)
