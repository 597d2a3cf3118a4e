"""Resume: a stopped or killed run continues from its resume point and ends where it would have.

"Where it would have" is checked against the same config trained without a break: the same stop
epoch, the same best epoch and value, the same history to the last bit, the same checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig
from core.data import datasets
from core.engine import resume_point
from core.engine.fit_one import load_checkpoint
from core.engine.queue import Trainer
from core.store.runs import FINISHED, INTERRUPTED, RUNNING, STOPPED, RunStore
from tests.headless import start_headless

pytestmark = pytest.mark.xdist_group("resume")  # its module fixture runs once, on one worker


def resumable_config(**fit) -> RunConfig:
    """Digits MLP with dropout (its masks must continue too) that early-stops at epoch 12."""
    return RunConfig(
        name="resume-test",
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=64, depth=2, dropout=0.2),
        fit=FitConfig(max_epochs=fit.pop("max_epochs", 200), learning_rate=0.005, **fit),
        early_stopping=EarlyStoppingConfig(
            monitor="val_loss", mode="min", patience=4, restore_best_weights=True
        ),
        checkpoint=CheckpointConfig(monitor="val_accuracy", mode="max", save_best_only=True),
    )


def _val_losses(snap) -> list[float]:
    return [r.logs["val_loss"] for r in snap.history]


def _assert_same_ending(resumed, reference):
    assert resumed.status == reference.status == FINISHED, resumed.message
    assert resumed.stop_reason == reference.stop_reason == "early_stopping"
    assert resumed.stopped_epoch == reference.stopped_epoch
    assert (resumed.best_epoch, resumed.best_value) == (reference.best_epoch, reference.best_value)
    assert resumed.checkpoint_epoch == reference.checkpoint_epoch
    assert [r.epoch for r in resumed.history] == list(range(1, reference.stopped_epoch + 1))
    assert _val_losses(resumed) == _val_losses(reference)  # bit for bit, not approximately
    assert [r.es_wait for r in resumed.history] == [r.es_wait for r in reference.history]
    assert resumed.test_metrics == reference.test_metrics  # restore_best_weights and the checkpoint


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same config trained without a break."""
    trainer = Trainer(RunStore(tmp_path_factory.mktemp("reference")))
    snap = trainer.wait(trainer.start(resumable_config()).id, timeout=300)
    assert snap.status == FINISHED and snap.stop_reason == "early_stopping", snap.message
    assert snap.stopped_epoch >= 8  # room to stop it a few epochs in
    return snap


def test_a_stopped_run_resumes_and_ends_like_the_uninterrupted_one(trainer, reference):
    run = trainer.start(resumable_config())
    deadline = time.monotonic() + 120
    while run.snapshot().epoch < 4:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    stopped = trainer.wait(run.id)
    assert stopped.status == STOPPED
    assert stopped.epoch < reference.stopped_epoch
    assert resume_point.saved_epoch(trainer.store.run_dir(run.id)) is not None

    resumed_run = trainer.resume(run.id)
    assert resumed_run.snapshot().status in ("queued", RUNNING)
    resumed = trainer.wait(run.id, timeout=300)
    _assert_same_ending(resumed, reference)
    assert any("Resuming after epoch" in line for line in resumed.log_lines)
    # The run is complete now: its resume point is gone, and it cannot be resumed again.
    assert resume_point.saved_epoch(trainer.store.run_dir(run.id)) is None
    with pytest.raises(resume_point.ResumeError, match="ended on its own"):
        trainer.resume(run.id)

    # The checkpoint is the best epoch's model and reproduces that epoch's val_accuracy.
    cfg = resumable_config()
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    model = load_checkpoint(resumed.checkpoint_path)
    val = model.evaluate(ds.x_val, ds.y_val, verbose=0, return_dict=True)
    assert val["accuracy"] == pytest.approx(resumed.best_value, abs=1e-6)


@pytest.mark.parametrize("group", [4, "auto"])
def test_a_run_in_groups_of_batches_stopped_and_resumed_ends_like_the_uninterrupted_one(
    trainer, reference, group
):
    """steps_per_execution > 1: the Stop lands after a group, the resume trains the same batches in the
    same groups ("auto" reads its choice back from the log, it does not measure again) and the ending
    is the uninterrupted run's to the last bit (the reference trains with 1: no number depends on k)."""
    run = trainer.start(resumable_config(steps_per_execution=group))
    deadline = time.monotonic() + 120
    while run.snapshot().epoch < 3:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    stopped = trainer.wait(run.id)
    assert stopped.status == STOPPED and stopped.epoch < reference.stopped_epoch
    k = stopped.steps_per_execution
    assert k is not None and k > 1
    trainer.resume(run.id)
    resumed = trainer.wait(run.id, timeout=300)
    _assert_same_ending(resumed, reference)
    assert resumed.steps_per_execution == k
    if group == "auto":
        assert f"steps_per_execution auto: {k} (as chosen when the run started)" in resumed.log_lines


@pytest.mark.slow
def test_a_killed_run_resumes_in_a_new_process_and_ends_like_the_uninterrupted_one(tmp_path, reference):
    proc, runs_dir = start_headless(tmp_path, resumable_config())
    try:
        seen = 0
        for line in proc.stdout:
            seen += line.startswith("Epoch ") and " - loss: " in line
            if seen >= 5:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    trainer = Trainer(RunStore(runs_dir))  # a new process opening the store marks it interrupted
    [run_id] = trainer.interrupted
    killed = trainer.snapshot(run_id)
    assert killed.status == INTERRUPTED
    assert 5 <= killed.epoch < reference.stopped_epoch
    point_epoch = resume_point.saved_epoch(runs_dir / run_id)
    assert point_epoch is not None and point_epoch <= killed.epoch

    trainer.resume(run_id)
    _assert_same_ending(trainer.wait(run_id, timeout=300), reference)


def test_resume_refuses_what_cannot_continue_with_a_reason(trainer, reference):
    with pytest.raises(resume_point.ResumeError, match="No such run"):
        trainer.resume("0" * 32)
    with pytest.raises(resume_point.ResumeError, match="No such run"):
        trainer.resume("../etc")

    # Stopped before its first epoch ended: no resume point, and the page is told so.
    cfg = resumable_config()
    first = trainer.start(cfg)
    queued = trainer.start(cfg)
    trainer.stop(queued.id)
    trainer.stop(first.id)
    trainer.wait(first.id)
    assert trainer.snapshot(queued.id).status == STOPPED
    with pytest.raises(resume_point.ResumeError, match="no resume point"):
        trainer.resume(queued.id)


def test_a_torn_resume_point_fails_the_resume_with_a_message_and_keeps_the_run(trainer):
    run = trainer.start(resumable_config())
    while run.snapshot().epoch < 2:
        time.sleep(0.02)
    trainer.stop(run.id)
    stopped = trainer.wait(run.id)
    point = resume_point.path(trainer.store.run_dir(run.id))
    point.write_bytes(point.read_bytes()[:100])

    with pytest.raises(resume_point.ResumeError, match="no resume point"):
        trainer.resume(run.id)
    after = trainer.snapshot(run.id)
    assert after.status == STOPPED and [r.epoch for r in after.history] == [r.epoch for r in stopped.history]


def test_a_resume_point_round_trips_every_array_and_the_header(tmp_path):
    point = resume_point.ResumePoint(
        epoch=7,
        model_vars=[np.arange(6, dtype=np.float32).reshape(2, 3), np.array([3, 9], dtype=np.uint32)],
        optimizer_vars=[np.array(12, dtype=np.int64)],
        early_stopping={"wait": 2, "stopped_epoch": 0, "best": 0.25, "best_epoch": 4},
        checkpoint={"best": float("inf"), "saved_epochs": [0, 4]},
        summary={"best_epoch": 5, "best_value": 0.25},
        es_best_weights=[np.ones(3, dtype=np.float32)],
    )
    resume_point.write(tmp_path, point)
    back = resume_point.read(tmp_path)
    assert back.epoch == 7 and back.summary == point.summary
    assert back.early_stopping == point.early_stopping and back.checkpoint == point.checkpoint
    arrays = ("model_vars", "optimizer_vars", "es_best_weights")
    for a, b in zip(*(sum((getattr(p, k) for k in arrays), []) for p in (back, point)), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == [resume_point.FILE_NAME]  # no temp file left


def test_the_throttle_keeps_resume_points_under_one_percent_of_training_time(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(resume_point.time, "perf_counter", lambda: now[0])
    throttle = resume_point.Throttle()
    assert resume_point.MAX_OVERHEAD == 0.01
    assert throttle.due()  # the first epoch always writes one
    throttle.wrote(0.5)  # a slow write: half a second
    now[0] += 49.0
    assert not throttle.due()
    now[0] += 0.5  # 49.5 s of training since: 0.5 / (49.5 + 0.5) = 1 %
    assert throttle.due()


def test_headless_resume_command(tmp_path, reference):
    runs_dir = tmp_path / "runs"
    trainer = Trainer(RunStore(runs_dir))
    run = trainer.start(resumable_config())
    while run.snapshot().epoch < 3:
        time.sleep(0.02)
    trainer.stop(run.id)
    trainer.wait(run.id)
    trainer.store.close()

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [sys.executable, "-m", "core", "resume", run.id, "--runs-dir", str(runs_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Resuming after epoch" in out.stdout
    assert out.stdout.splitlines()[-1].startswith(f"run {run.id}: finished. Early stopping at epoch")
    _assert_same_ending(RunStore(runs_dir).load(run.id), reference)


def test_what_a_resume_trains_again_is_said_in_words():
    assert resume_point.trained_again(5, 5) == ""
    assert resume_point.trained_again(14, 15) == "epoch 15 is trained again"
    assert resume_point.trained_again(12, 15) == "epochs 13-15 are trained again"
