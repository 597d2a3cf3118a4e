"""Training in the recycled worker process: same numbers, Stop works, deaths are survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from core.engine import worker_process
from core.engine.fit_one import load_checkpoint
from core.engine.queue import Trainer
from core.presets import quick_digits
from core.store.runs import FAILED, FINISHED, STOPPED, RunStore


@pytest.fixture
def pool(monkeypatch):
    """A pool of this test's own, so worker deaths and recycling do not touch other tests."""
    own = worker_process.WorkerPool(max_runs=2)
    monkeypatch.setattr(worker_process, "_pool", own)
    yield own
    own.close()


def _config(epochs: int = 6, **fit):
    cfg = quick_digits()
    cfg.fit.max_epochs = epochs
    cfg.early_stopping.enabled = False
    for k, v in fit.items():
        setattr(cfg.fit, k, v)
    return cfg


def _wait_epochs(run, n: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while run.snapshot().epoch < n:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)


def test_a_run_in_the_worker_equals_the_same_run_in_a_thread(pool, tmp_path):
    in_process = Trainer(RunStore(tmp_path / "process"), train_in="process")
    in_thread = Trainer(RunStore(tmp_path / "thread"), train_in="thread")
    a = in_process.wait(in_process.start(_config()).id, timeout=300)
    b = in_thread.wait(in_thread.start(_config()).id, timeout=300)
    assert a.status == b.status == FINISHED, a.message
    assert [r.logs for r in a.history] == [r.logs for r in b.history]
    assert a.test_metrics == b.test_metrics
    assert pool.workers()["tensorflow"].proc.pid != os.getpid()
    # What the server shows (its copy) is what the worker wrote to the store.
    stored = in_process.store.load(a.id)
    assert [r.logs for r in stored.history] == [r.logs for r in a.history]
    assert stored.log_lines == a.log_lines
    assert (stored.best_epoch, stored.checkpoint_epoch) == (a.best_epoch, a.checkpoint_epoch)
    assert load_checkpoint(a.checkpoint_path).count_params() > 0
    assert a.batch_points, "batch points reach the server's copy for the live chart"


def test_stop_reaches_the_worker_within_a_batch(pool, tmp_path):
    trainer = Trainer(RunStore(tmp_path / "runs"), train_in="process")
    run = trainer.start(_config(epochs=500, batch_size=8))
    _wait_epochs(run, 2)
    trainer.stop(run.id)
    snap = trainer.wait(run.id, timeout=60)
    assert snap.status == STOPPED
    assert snap.epoch >= 2
    assert trainer.store.load(run.id).status == STOPPED


def test_a_worker_killed_mid_run_fails_that_run_only_and_it_can_be_resumed(pool, tmp_path):
    trainer = Trainer(RunStore(tmp_path / "runs"), train_in="process")
    run = trainer.start(_config(epochs=500, batch_size=8))
    waiting = trainer.start(_config(epochs=2))
    _wait_epochs(run, 3)
    os.kill(pool.workers()["tensorflow"].proc.pid, signal.SIGKILL)  # e.g. the kernel's OOM killer

    snap = trainer.wait(run.id, timeout=60)
    assert snap.status == FAILED
    assert "the training process was killed by SIGKILL" in snap.message
    assert "can be resumed" in snap.message
    stored = trainer.store.load(run.id)
    assert stored.status == FAILED and stored.message == snap.message  # the server wrote it down
    assert len(stored.history) >= 3
    # The next run gets a new worker and trains normally.
    assert trainer.wait(waiting.id, timeout=300).status == FINISHED
    assert pool.started == 2
    # And the killed run continues from its resume point.
    trainer.resume(run.id)
    trainer.stop(run.id)  # (not to the end: 500 epochs) - it resumed, then stopped cleanly
    assert trainer.wait(run.id, timeout=120).status == STOPPED


def test_the_worker_is_replaced_after_max_runs_and_the_server_stays_small(pool, tmp_path):
    trainer = Trainer(RunStore(tmp_path / "runs"), train_in="process")
    pids = []
    for _ in range(3):
        assert trainer.wait(trainer.start(_config(epochs=2)).id, timeout=300).status == FINISHED
        pids.append(pool.workers()["tensorflow"].proc.pid)
    assert pids[0] != pids[2]  # max_runs=2: a fresh process after two runs
    assert pool.started == 2
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE


def test_a_worker_outlives_the_short_lived_thread_that_started_it(pool):
    """The app warms the worker up from a thread that ends; PR_SET_PDEATHSIG would kill it then."""
    import threading

    def warm() -> None:
        pool.warm_up()
        assert pool.workers()["tensorflow"].ready.wait(timeout=180)

    starter = threading.Thread(target=warm)
    starter.start()
    starter.join()
    time.sleep(2)
    assert pool.workers()["tensorflow"].alive


def test_the_worker_dies_with_the_server(tmp_path):
    """kill -9 of the server must not leave an orphan training its run (it sees its socket close)."""
    script = (
        "import sys, time\n"
        "from core.presets import quick_digits\n"
        "from core.store.runs import RunStore\n"
        "from core.engine.queue import Trainer\n"
        "from core.engine import worker_process\n"
        f"t = Trainer(RunStore({str(tmp_path / 'runs')!r}), train_in='process')\n"
        "c = quick_digits(); c.fit.max_epochs = 500; c.fit.batch_size = 8; c.early_stopping.enabled = False\n"
        "r = t.start(c)\n"
        "while r.snapshot().epoch < 1: time.sleep(0.05)\n"
        "print(worker_process.shared_pool().workers()['tensorflow'].proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        worker_pid = int(server.stdout.readline())
        assert psutil.pid_exists(worker_pid)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        deadline = time.monotonic() + 30
        while psutil.pid_exists(worker_pid) and psutil.Process(worker_pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the worker outlived the server"
            time.sleep(0.1)
    finally:
        server.kill()
    # A new server then finds the run interrupted, with its epochs.
    trainer = Trainer(RunStore(tmp_path / "runs"))
    [run_id] = trainer.interrupted
    assert len(trainer.snapshot(run_id).history) >= 1


def test_a_run_over_the_memory_limit_fails_with_that_reason_and_resumes_under_the_normal_one(pool, tmp_path):
    """The watchdog's limit is lowered in the running worker, mid-run, below what it holds."""
    trainer = Trainer(RunStore(tmp_path / "runs"), train_in="process")
    run = trainer.start(_config(epochs=12, batch_size=16))
    _wait_epochs(run, 3)
    worker = pool.workers()["tensorflow"]
    assert worker.memory_limit_mb == worker_process.DEFAULT_MEMORY_MB
    worker.set_memory_limit(200)  # it holds ~850 MB

    snap = trainer.wait(run.id, timeout=60)
    assert snap.status == FAILED
    assert "the run went over the training process's memory limit of 200 MB (ESLAB_WORKER_MEMORY_MB" in (
        snap.message
    )
    assert "SIGKILL" not in snap.message and "can be resumed" in snap.message
    assert worker.proc.wait(timeout=10) == worker_process.EXIT_MEMORY
    stored = trainer.store.load(run.id)
    assert stored.status == FAILED and stored.message == snap.message
    kept = len(stored.history)
    assert kept >= 3

    trainer.resume(run.id)  # a new worker, with the normal limit
    done = trainer.wait(run.id, timeout=300)
    assert done.status == FINISHED, done.message
    assert [r.epoch for r in done.history] == list(range(1, 13))
    assert pool.started == 2


def test_the_memory_limit_setting(monkeypatch):
    monkeypatch.delenv(worker_process.MEMORY_ENV, raising=False)
    assert worker_process.memory_limit_mb() == worker_process.DEFAULT_MEMORY_MB
    monkeypatch.setenv(worker_process.MEMORY_ENV, "2048")
    assert worker_process.memory_limit_mb() == 2048
    for bad in ("lots", "-1", "0"):
        monkeypatch.setenv(worker_process.MEMORY_ENV, bad)
        assert worker_process.memory_limit_mb() == worker_process.DEFAULT_MEMORY_MB
