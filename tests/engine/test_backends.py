"""The backend as a setting: a JAX run trains in a JAX worker, stops, resumes bit for bit, exports,
and its checkpoint loads on TensorFlow (and a TensorFlow one on JAX) with the same predictions.

This test process imports Keras on TensorFlow (the default), like the server: JAX runs go to the
pool's JAX worker, or to a child process (the headless command, the exported script).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig
from core.engine import resume_point, worker_process
from core.engine.queue import InvalidConfig, Trainer
from core.export.script import export_script
from core.store.runs import FINISHED, STOPPED, RunStore
from tests.export.test_export import assert_same_run, engine_summary, run_script
from tests.headless import start_headless
from tests.subprocesses import pythonpath

pytestmark = pytest.mark.xdist_group("backends")  # one JAX worker for the module, on one pytest worker
ROOT = Path(__file__).resolve().parents[2]


def jax_config(backend: str = "jax", **fit) -> RunConfig:
    """tests/engine/test_resume.py's digits MLP with dropout (early-stops around epoch 12), on JAX."""
    return RunConfig(
        name="backend-test",
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=64, depth=2, dropout=0.2),
        fit=FitConfig(max_epochs=fit.pop("max_epochs", 200), learning_rate=0.005, backend=backend, **fit),
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
    assert _val_losses(resumed) == _val_losses(reference)  # bit for bit, not approximately
    assert [r.es_wait for r in resumed.history] == [r.es_wait for r in reference.history]
    assert resumed.test_metrics == reference.test_metrics


@pytest.fixture(scope="module")
def pool():
    """A pool of this module's own: its JAX and TensorFlow workers are shared by its tests only."""
    own = worker_process.WorkerPool(max_runs=100)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_process, "_pool", own)
        yield own
    own.close()


@pytest.fixture(scope="module")
def reference(pool, tmp_path_factory):
    """The JAX run trained without a break, in the pool's JAX worker."""
    trainer = Trainer(RunStore(tmp_path_factory.mktemp("reference")), train_in="process")
    snap = trainer.wait(trainer.start(jax_config()).id, timeout=600)
    assert snap.status == FINISHED and snap.stop_reason == "early_stopping", snap.message
    assert snap.stopped_epoch >= 8
    return snap


def _process_trainer(tmp_path) -> Trainer:
    return Trainer(RunStore(tmp_path / "runs"), train_in="process")


def test_auto_is_resolved_when_the_run_starts_and_thread_mode_refuses_another_backend(trainer):
    # This process's Keras is TensorFlow's; ESLAB_TRAIN_IN=thread trains here.
    assert trainer.train_in == "thread"
    for backend, model in (("jax", "mlp"), ("auto", "mlp")):
        cfg = jax_config(backend)
        cfg.model = ModelConfig(name=model)
        with pytest.raises(InvalidConfig) as refused:
            trainer.start(cfg)
        [problem] = refused.value.problems
        assert problem.field == "fit.backend"
        assert problem.message.startswith("fit.backend: ")
        assert "runs on tensorflow" in problem.message and "KERAS_BACKEND=jax" in problem.message
        assert ("auto picks jax" in problem.message) == (backend == "auto")
        assert trainer.backend_problem(cfg) == problem  # what the Train page shows before Start
    assert trainer.store.list().empty  # refused before anything was stored

    # auto for the tutorial's Conv1D is TensorFlow: accepted here, and recorded as tensorflow.
    cfg = RunConfig(
        data=DataConfig(name="text_sentiment", max_samples=200, maxlen=40),
        model=ModelConfig(name="seed_conv1d"),
        fit=FitConfig(max_epochs=1, backend="auto"),
    )
    run = trainer.start(cfg)
    snap = trainer.wait(run.id, timeout=300)
    assert snap.status == FINISHED, snap.message
    assert snap.config.fit.backend == "tensorflow"
    assert trainer.store.load(run.id).config.fit.backend == "tensorflow"
    assert "Backend: tensorflow (Keras 3.15.1)." in snap.log_lines


def test_a_jax_run_trains_in_the_jax_worker_next_to_the_tensorflow_one(pool, tmp_path):
    trainer = _process_trainer(tmp_path)
    cfg = jax_config("auto", max_epochs=3)  # auto: the MLP's measured default is JAX
    jax_run = trainer.wait(trainer.start(cfg).id, timeout=600)
    tf_run = trainer.wait(trainer.start(jax_config("tensorflow", max_epochs=3)).id, timeout=600)
    assert jax_run.status == tf_run.status == FINISHED, (jax_run.message, tf_run.message)
    assert jax_run.config.fit.backend == "jax"  # resolved and recorded at start
    assert trainer.store.load(jax_run.id).config.fit.backend == "jax"
    assert "Backend: jax (Keras 3.15.1)." in jax_run.log_lines
    assert "Backend: tensorflow (Keras 3.15.1)." in tf_run.log_lines
    workers = pool.workers()
    assert set(workers) >= {"jax", "tensorflow"}
    assert workers["jax"].proc.pid != workers["tensorflow"].proc.pid
    # The same seed draws other initial weights and dropout masks on each backend (their random
    # generators differ), so the two runs are not the same numbers; both learn.
    for snap in (jax_run, tf_run):
        assert _val_losses(snap)[-1] < _val_losses(snap)[0] < 1.0


def test_stop_reaches_the_jax_worker_within_a_batch(pool, tmp_path):
    trainer = _process_trainer(tmp_path)
    cfg = jax_config(max_epochs=500, batch_size=8)
    cfg.early_stopping.enabled = False
    run = trainer.start(cfg)
    deadline = time.monotonic() + 300
    while run.snapshot().epoch < 2:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    snap = trainer.wait(run.id, timeout=60)
    assert snap.status == STOPPED and 2 <= snap.epoch < 500


@pytest.mark.slow
def test_a_stopped_jax_run_resumes_bit_exact_and_thread_mode_refuses_it(pool, reference, tmp_path):
    trainer = _process_trainer(tmp_path)
    run = trainer.start(jax_config())
    deadline = time.monotonic() + 300
    while run.snapshot().epoch < 4:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    stopped = trainer.wait(run.id)
    assert stopped.status == STOPPED and stopped.epoch < reference.stopped_epoch
    assert resume_point.saved_epoch(trainer.store.run_dir(run.id)) is not None

    # A server training in its own (TensorFlow) process must not resume it on TensorFlow.
    here = Trainer(trainer.store, train_in="thread")
    with pytest.raises(resume_point.ResumeError, match=r"^fit\.backend: .*runs on tensorflow"):
        here.resume(run.id)

    trainer.resume(run.id)
    resumed = trainer.wait(run.id, timeout=600)
    _assert_same_ending(resumed, reference)
    assert resumed.config.fit.backend == "jax"
    assert resumed.log_lines.count("Backend: jax (Keras 3.15.1).") == 2  # the start and the resume


_PREDICT = """
import sys
import keras
import numpy as np
from core.config import DataConfig
from core.data import datasets
assert keras.backend.backend() == sys.argv[2]
ds = datasets.load(DataConfig(name="digits"), validation_split=0.2, seed=42)
model = keras.models.load_model(sys.argv[1], safe_mode=True)
np.save(sys.argv[3], np.asarray(model.predict(ds.x_test, verbose=0)))
"""


def _predictions(checkpoint: str, backend: str, out: Path) -> np.ndarray:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": pythonpath(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _PREDICT, checkpoint, backend, str(out)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


@pytest.mark.slow
def test_a_checkpoint_saved_on_one_backend_loads_on_the_other_with_the_same_predictions(
    pool, reference, tmp_path
):
    trainer = _process_trainer(tmp_path)
    tf_run = trainer.wait(trainer.start(jax_config("tensorflow", max_epochs=4)).id, timeout=600)
    assert tf_run.status == FINISHED, tf_run.message
    for snap in (reference, tf_run):
        saved_on = snap.config.fit.backend
        preds = {
            b: _predictions(snap.checkpoint_path, b, tmp_path / f"{saved_on}-{b}.npy")
            for b in ("jax", "tensorflow")
        }
        assert preds["jax"].shape == preds["tensorflow"].shape == (360, 10)
        np.testing.assert_allclose(preds["jax"], preds["tensorflow"], rtol=0, atol=1e-5)
        assert (preds["jax"].argmax(1) == preds["tensorflow"].argmax(1)).all()


@pytest.mark.slow
def test_headless_train_and_resume_set_the_backend_before_keras_is_imported(reference, tmp_path):
    proc, runs_dir = start_headless(tmp_path, jax_config())  # ESLAB_TRAIN_IN=thread: trains in it
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if sum(x.startswith("Epoch ") and " - loss: " in x for x in lines) >= 4:
                proc.send_signal(signal.SIGINT)  # stops after the batch in flight
                break
        lines += proc.stdout.readlines()
    finally:
        proc.wait(timeout=120)
    out = "".join(lines)
    assert "Backend: jax (Keras 3.15.1)." in out, out[-3000:]
    assert proc.returncode == 128 + signal.SIGINT, out[-3000:]  # stopped, and no abort at exit
    [run_id] = [p.name for p in runs_dir.iterdir() if len(p.name) == 32]
    assert json.loads((runs_dir / run_id / "config.json").read_text())["fit"]["backend"] == "jax"

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "ESLAB_TRAIN_IN": "thread"}
    env.pop("KERAS_BACKEND", None)
    resumed = subprocess.run(
        [sys.executable, "-m", "core", "resume", run_id, "--runs-dir", str(runs_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    _assert_same_ending(RunStore(runs_dir).load(run_id), reference)


@pytest.mark.slow
def test_the_exported_script_sets_jax_and_repeats_the_run(pool, reference, tmp_path):
    src = export_script(reference.config)
    assert src.index('os.environ["KERAS_BACKEND"] = "jax"') < src.index("import keras")
    assert "JAX 0." in src  # the versions it was exported with
    result = run_script(src, tmp_path)
    assert_same_run(result, engine_summary(reference))
    assert result["best_value"] == reference.best_value  # bit for bit
    assert result["test"] == reference.test_metrics
    tf_src = export_script(jax_config("tensorflow"))
    assert "KERAS_BACKEND" not in tf_src and "JAX" not in tf_src  # as before the setting
