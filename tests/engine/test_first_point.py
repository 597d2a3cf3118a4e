"""Quicker to the first point (issue 12, item 5): a warm worker, and a Stop that shows at once.

Real training in a real worker process; nothing here is timed. The order of what the server's copy of
a run receives is recorded by wrapping its methods (they still run as always).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.data import datasets
from core.engine import worker_process
from core.engine.queue import Trainer
from core.presets import quick_digits
from core.store.runs import STOPPED, STOPPING, RunStore


@pytest.fixture
def pool(monkeypatch):
    """A pool of this test's own (see test_worker_process.py)."""
    own = worker_process.WorkerPool(max_runs=2)
    monkeypatch.setattr(worker_process, "_pool", own)
    yield own
    own.close()


def _tensorflow_mapped(pid: int) -> bool:
    """TensorFlow's native library is loaded in that process (it was imported, not just found)."""
    return "_pywrap_tensorflow_internal" in Path(f"/proc/{pid}/maps").read_text()


def test_the_worker_is_warm_before_the_first_run_is_started(pool):
    pool.warm_up()  # what the app does when its first page asks for the trainer
    worker = pool.workers()["tensorflow"]  # the default backend's, as the app warms it
    assert worker.ready.wait(timeout=300) and worker.alive
    assert worker.runs_done == 0
    assert _tensorflow_mapped(worker.proc.pid)
    # Keras imported, a first fit and evaluation done (TensorFlow's one-time set-up), the session cleared.
    assert worker.warmed["keras"] is True
    assert worker.warmed["fitted"] is True


def test_a_built_in_dataset_is_read_once_and_cannot_be_changed_by_a_run():
    cfg = quick_digits()
    a = datasets.load(cfg.data, validation_split=0.2, seed=1)
    a.x_train[:] = 0  # a run's own arrays are its copy
    b = datasets.load(cfg.data, validation_split=0.2, seed=1)
    assert b.x_train.any()
    from core.data.sources import sklearn_sets

    bunch = sklearn_sets.read_bundled("load_digits")
    assert bunch is sklearn_sets.read_bundled("load_digits")
    with pytest.raises(ValueError, match="read-only"):
        bunch.data[0, 0] = 1.0


def test_a_stop_shows_stopped_before_the_test_metrics_then_they_arrive(pool, tmp_path):
    trainer = Trainer(RunStore(tmp_path / "runs"), train_in="process")
    cfg = quick_digits()
    cfg.fit.max_epochs, cfg.fit.batch_size = 500, 8
    cfg.early_stopping.enabled = False
    run = trainer.start(cfg)
    events: list[tuple] = []  # what reaches the server's copy, in order
    stored_when_ended: list = []
    update, set_evaluation = run._update, run.set_evaluation

    def record_update(persist=True, expect=None, **changes):
        done = update(persist, expect, **changes)
        if "status" in changes or "test_metrics" in changes:
            snap = run.snapshot()
            events.append(("update", snap.status, snap.fit_ended, dict(snap.test_metrics)))
            if snap.fit_ended and not stored_when_ended:  # the worker wrote it before forwarding it
                stored_when_ended.append(trainer.store.load(run.id))
        return done

    def record_evaluation(batch, steps):
        set_evaluation(batch, steps)
        events.append(("evaluation", batch, steps))

    run._update, run.set_evaluation = record_update, record_evaluation
    deadline = time.monotonic() + 300
    while run.snapshot().epoch < 2:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    final = trainer.wait(run.id, timeout=120)

    assert final.status == STOPPED and final.stop_reason == "user"
    assert set(final.test_metrics) == {"loss", "accuracy"}
    assert final.evaluation is None
    ended = next(i for i, e in enumerate(events) if e[0] == "update" and e[2])
    # Stopped (with its reason and message) while the test metrics did not exist yet ...
    assert events[ended][1] == STOPPING and events[ended][3] == {}
    [stored] = stored_when_ended
    assert (stored.status, stored.stop_reason, stored.test_metrics) == (STOPPING, "user", {})
    assert stored.message == final.message and final.message.startswith("Stopped by user after")
    # ... then the evaluation's progress, batch by batch, to its last batch ...
    progress = [e for e in events[ended:] if e[0] == "evaluation"]
    steps = progress[-1][2]
    assert progress[0][1] == 0 and progress[-1][1] == steps == -(-360 // 8)  # 360 test samples
    # ... then the final status with the test metrics, last.
    assert events[-1][:2] == ("update", STOPPED) and events[-1][3] == final.test_metrics
    assert all(e[0] == "evaluation" or e[3] == {} for e in events[:-1])
    assert trainer.store.load(run.id).test_metrics == final.test_metrics
