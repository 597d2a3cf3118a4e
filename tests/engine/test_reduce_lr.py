"""ReduceLROnPlateau in real runs: Keras' own callback lowers the rate, each epoch's rate is
recorded and logged, a run stopped and resumed keeps the schedule's wait, cooldown and best (and
the rate, an optimizer variable) and ends bit for bit like the unbroken run, and the exported script
does the same."""

from __future__ import annotations

import dataclasses
import time

import pytest

from core.config import ReduceLRConfig
from core.engine.queue import Trainer
from core.store.runs import FINISHED, STOPPED, RunStore
from tests.engine.test_resume import resumable_config

pytestmark = pytest.mark.xdist_group("reduce-lr")  # its module fixture runs once, on one worker

SCHEDULE = ReduceLRConfig(enabled=True, monitor="val_loss", mode="min", factor=0.5, patience=1, cooldown=1)


def lr_config():
    """The resume tests' digits MLP (dropout), its rate halved after each epoch without improvement."""
    cfg = resumable_config(max_epochs=14)
    return dataclasses.replace(
        cfg,
        name="reduce-lr-test",
        early_stopping=dataclasses.replace(cfg.early_stopping, patience=8),
        reduce_lr=SCHEDULE,
    )


def _rates(snap) -> list[float]:
    return [r.logs["learning_rate"] for r in snap.history]


@pytest.fixture(scope="module")
def lr_run(tmp_path_factory):
    trainer = Trainer(RunStore(tmp_path_factory.mktemp("reduce-lr")))
    snap = trainer.wait(trainer.start(lr_config()).id, timeout=300)
    assert snap.status == FINISHED, snap.message
    return snap


def test_the_rate_is_lowered_recorded_and_logged(lr_run):
    snap = lr_run
    rates = _rates(snap)
    assert rates[0] == pytest.approx(0.005)
    lowered = [i for i in range(1, len(rates)) if rates[i] < rates[i - 1]]
    assert lowered, rates  # this curve stalls: the schedule acts
    for i in lowered:
        assert rates[i] == pytest.approx(rates[i - 1] * 0.5, rel=1e-6)
        # Keras lowers it at the end of epoch i (1-based), after an epoch without improvement.
        assert f"Epoch {i}: ReduceLROnPlateau reducing learning rate to" in "\n".join(snap.log_lines)
    assert all(b <= a for a, b in zip(rates, rates[1:], strict=False))


def test_a_run_stopped_and_resumed_keeps_its_schedule(lr_run, trainer):
    run = trainer.start(lr_config())
    first_cut = next(i for i in range(1, len(_rates(lr_run))) if _rates(lr_run)[i] < _rates(lr_run)[i - 1])
    deadline = time.monotonic() + 120
    while run.snapshot().epoch < first_cut + 1:  # past a reduction: the rate and the cooldown must carry
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    stopped = trainer.wait(run.id)
    assert stopped.status == STOPPED and stopped.epoch < len(lr_run.history)
    resumed = trainer.wait(trainer.resume(run.id).id, timeout=300)
    assert resumed.status == FINISHED, resumed.message
    assert [r.logs["val_loss"] for r in resumed.history] == [r.logs["val_loss"] for r in lr_run.history]
    assert _rates(resumed) == _rates(lr_run)  # bit for bit
    assert resumed.test_metrics == lr_run.test_metrics


def test_the_exported_script_lowers_the_rate_the_same_way(lr_run, tmp_path):
    from core.export.script import export_script
    from tests.export.test_export import assert_same_run, engine_summary, run_script

    src = export_script(lr_config())
    assert "keras.callbacks.ReduceLROnPlateau(" in src
    result = run_script(src, tmp_path)
    assert_same_run(result, engine_summary(lr_run))
