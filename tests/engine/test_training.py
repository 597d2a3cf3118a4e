"""The engine end to end: real Keras training on digits, real checkpoints loaded back."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig
from core.data import datasets
from core.engine.fit_one import load_checkpoint
from core.engine.queue import InvalidConfig
from core.store.runs import FINISHED, INTERRUPTED, STOPPED, RunStore
from tests.headless import start_headless


def digits_config(**fit) -> RunConfig:
    """Digits MLP that overfits within ~15 epochs at this learning rate, so patience 3 stops it early."""
    return RunConfig(
        name="digits-test",
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=128, depth=2),
        fit=FitConfig(max_epochs=fit.pop("max_epochs", 200), learning_rate=0.01, **fit),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=3),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
    )


def test_early_stopping_keeps_the_best_epoch_and_evaluates_it(trainer):
    cfg = digits_config()
    run = trainer.start(cfg)
    snap = trainer.wait(run.id, timeout=300)

    assert snap.status == FINISHED, snap.message
    assert snap.stop_reason == "early_stopping"
    hist = snap.history_frame()
    assert len(hist) < cfg.fit.max_epochs
    assert snap.stopped_epoch == len(hist)
    best_row = hist.loc[hist["val_loss"].idxmin()]
    assert snap.best_epoch == int(best_row["epoch"])
    assert snap.best_epoch < len(hist)  # the last epoch is not the best one: the point of the test
    assert snap.checkpoint_epoch == snap.best_epoch

    # The checkpoint is the best epoch's model: it reproduces that epoch's val_loss.
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    model = load_checkpoint(snap.checkpoint_path)
    val = model.evaluate(ds.x_val, ds.y_val, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert abs(val["loss"] - best_row["val_loss"]) < 1e-5
    assert abs(val["loss"] - hist["val_loss"].iloc[-1]) > 1e-4

    # The test split was evaluated on that checkpoint, and the numbers are the checkpoint's.
    test = model.evaluate(ds.x_test, ds.y_test, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert set(snap.test_metrics) == {"loss", "accuracy"}
    assert snap.test_metrics["loss"] == pytest.approx(test["loss"], abs=1e-6)
    assert snap.test_metrics["accuracy"] > 0.9

    # Keras-style log lines for the console.
    log = "\n".join(snap.log_lines)
    assert f"Epoch {snap.stopped_epoch}: early stopping" in log
    assert "val_loss improved from None to" in log
    assert "did not improve from" in log
    assert "Test set" in log

    # Everything is on disk, and a fresh store sees the same run.
    again = RunStore(trainer.store.root).load(run.id)
    assert again.status == FINISHED
    assert again.best_epoch == snap.best_epoch
    assert len(again.history) == len(hist)
    assert again.test_metrics == snap.test_metrics


def test_stop_mid_epoch_ends_within_one_batch(trainer):
    cfg = digits_config(batch_size=4, max_epochs=50)  # 288 batches an epoch: room to stop mid-epoch
    cfg.early_stopping.enabled = False
    run = trainer.start(cfg)
    deadline = time.monotonic() + 120
    while True:
        snap = trainer.snapshot(run.id)
        if snap.epoch >= 2 and snap.batch >= 30:
            break
        assert time.monotonic() < deadline
        time.sleep(0.005)
    trainer.stop(run.id)
    requested_at = trainer.snapshot(run.id).batch
    snap = trainer.wait(run.id, timeout=60)

    assert snap.status == STOPPED
    assert snap.stop_reason == "user"
    assert snap.batch <= requested_at + 2  # the batch in flight, plus the one whose end saw the flag
    assert snap.batch < snap.steps_per_epoch
    # Only whole epochs are in the history; the partial one is logged as not counted.
    assert [r.epoch for r in snap.history] == list(range(1, len(snap.history) + 1))
    assert any("stopped by user; this partial epoch is not counted" in line for line in snap.log_lines)
    assert snap.checkpoint_epoch is not None
    model = load_checkpoint(snap.checkpoint_path)
    assert model.count_params() > 0
    assert snap.test_metrics["accuracy"] > 0.5


def test_seed_conv1d_matches_the_tutorial_layer_by_layer():
    from core import models

    ds = datasets.Dataset(
        x_train=np.zeros((4, 400), "int32"),
        y_train=np.zeros(4, "float32"),
        x_val=None,
        y_val=None,
        x_test=np.zeros((4, 400), "int32"),
        y_test=np.zeros(4, "float32"),
        task="binary",
        input_kind="sequence",
        classes=["negative", "positive"],
        input_shape=(400,),
        vocab_size=5000,
        feature_names=[],
        description="shape only",
    )
    model = models.build(ds, ModelConfig(name="seed_conv1d"), FitConfig())
    counts = [(type(layer).__name__, layer.count_params()) for layer in model.layers]
    assert counts == [
        ("Embedding", 250_000),
        ("Dropout", 0),
        ("Conv1D", 37_750),
        ("GlobalMaxPooling1D", 0),
        ("Dense", 62_750),
        ("Dropout", 0),
        ("Activation", 0),
        ("Dense", 251),
        ("Activation", 0),
    ]
    assert model.loss == "binary_crossentropy"
    assert type(model.optimizer).__name__ == "Adam"


def test_invalid_config_is_refused_before_anything_is_stored(trainer):
    cfg = digits_config()
    cfg.fit.validation_split = 0.0
    with pytest.raises(InvalidConfig, match="validation split is 0"):
        trainer.start(cfg)
    assert trainer.store.ids() == []


def test_runs_are_queued_one_at_a_time(trainer):
    cfg = digits_config(max_epochs=3)
    cfg.early_stopping.enabled = False
    runs = [trainer.start(cfg) for _ in range(3)]
    positions = [trainer.snapshot(r.id).queue_position for r in runs]
    assert positions[2] in (1, 2)  # the first may already have started
    assert positions[1] in (None, 1)
    snaps = [trainer.wait(r.id, timeout=120) for r in runs]
    assert [s.status for s in snaps] == [FINISHED] * 3
    # One at a time: each started after the previous one finished.
    for a, b in zip(snaps, snaps[1:]):
        assert b.started_at >= a.finished_at - 0.05


def test_nan_loss_stops_the_run_and_keeps_the_best_checkpoint(trainer):
    cfg = digits_config(max_epochs=40)
    cfg.early_stopping.enabled = False
    cfg.fit.optimizer = "sgd"
    cfg.fit.learning_rate = 5.0  # diverges within a few epochs on purpose
    run = trainer.start(cfg)
    snap = trainer.wait(run.id, timeout=120)
    assert snap.stop_reason == "nan_loss", snap.message
    assert "NaN" in snap.message
    assert all(math.isfinite(r.logs["loss"]) for r in snap.history)
    if snap.checkpoint_epoch is not None:
        model = load_checkpoint(snap.checkpoint_path)
        assert np.isfinite(model.get_weights()[0]).all()


@pytest.mark.slow
def test_sigkill_mid_run_leaves_an_interrupted_run_with_its_epochs(tmp_path):
    runs_dir = tmp_path / "runs"
    cfg = digits_config(batch_size=8, max_epochs=500)
    cfg.early_stopping.enabled = False
    cfg.checkpoint.save_best_only = False  # a save every epoch: the kill may land mid-save
    proc, runs_dir = start_headless(tmp_path, cfg)
    try:
        deadline = time.monotonic() + 180
        seen = 0
        for line in proc.stdout:
            if line.startswith("Epoch ") and " - loss: " in line:
                seen += 1
            if seen >= 4:
                break
            assert time.monotonic() < deadline
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    probe = (
        "import json, sys\n"
        "from core.store.runs import RunStore\n"
        "from core.engine.queue import Trainer\n"
        "from core.engine.fit_one import load_checkpoint\n"
        f"t = Trainer(RunStore({str(runs_dir)!r}))\n"
        "[rid] = t.store.ids()\n"
        "s = t.snapshot(rid)\n"
        "m = load_checkpoint(s.checkpoint_path)\n"
        "print(json.dumps({'status': s.status, 'epochs': [r.epoch for r in s.history],"
        " 'interrupted': t.interrupted, 'id': rid, 'params': m.count_params()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(os.getcwd())}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == INTERRUPTED
    assert result["interrupted"] == [result["id"]]
    assert len(result["epochs"]) >= 4
    assert result["epochs"] == list(range(1, len(result["epochs"]) + 1))
    assert result["params"] > 0
    leftovers = [p.name for p in (runs_dir / result["id"]).iterdir() if ".partial" in p.name]
    leftovers = [n for n in leftovers if not n.startswith(".summary.json.")]  # a kill mid-write: ignored
    assert leftovers in ([], ["checkpoint.partial.keras"])  # a torn temp file at most, never the real one


def test_headless_command_trains_and_the_run_appears_in_the_store(tmp_path):
    cfg = digits_config(max_epochs=3)
    cfg.name = "headless"
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json())
    env = {**os.environ, "PYTHONPATH": str(os.getcwd())}
    out = subprocess.run(
        [sys.executable, "-m", "core", "train", str(path), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    run_id = lines[0].split()[1]
    assert "Epoch 3/3 - " in out.stdout
    assert "val_loss improved from" in out.stdout
    assert lines[-1].startswith(f"run {run_id}: finished. Trained all 3 epochs.")
    snap = RunStore(tmp_path / "runs").load(run_id)
    assert (snap.config.name, snap.status, len(snap.history)) == ("headless", FINISHED, 3)


def test_stop_from_another_process_stops_a_headless_run(tmp_path):
    """The app's Stop button on a run that ``python -m core train`` is training (through the index)."""
    from core.engine.queue import Trainer

    runs_dir = tmp_path / "runs"
    cfg = digits_config(batch_size=8, max_epochs=500)
    cfg.early_stopping.enabled = False
    proc, runs_dir = start_headless(tmp_path, cfg)
    try:
        run_id = proc.stdout.readline().split()[1]
        for line in proc.stdout:
            if line.startswith("Epoch 2/"):
                break
        server = Trainer(RunStore(runs_dir))  # another process's view, as the app has it
        assert server.snapshot(run_id).is_live
        server.stop(run_id)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Stop requested from another process." in out
    snap = RunStore(runs_dir).load(run_id)
    assert snap.status == STOPPED and snap.stop_reason == "user"
    assert 2 <= len(snap.history) < 500


def test_a_headless_run_killed_while_the_server_runs_shows_interrupted_without_a_restart(tmp_path):
    from core.engine.queue import Trainer

    runs_dir = tmp_path / "runs"
    cfg = digits_config(batch_size=8, max_epochs=500)
    cfg.early_stopping.enabled = False
    proc, runs_dir = start_headless(tmp_path, cfg)
    try:
        run_id = proc.stdout.readline().split()[1]
        for line in proc.stdout:
            if line.startswith("Epoch 1/"):
                break
        server = Trainer(RunStore(runs_dir))
        assert server.snapshot(run_id).status == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert server.snapshot(run_id).status == "running"  # checked at most every 5 s
    server._last_reap = float("-inf")  # (instead of waiting 5 s)
    assert server.snapshot(run_id).status == INTERRUPTED
    listed = server.list_runs().set_index("id")
    assert listed.loc[run_id, "status"] == INTERRUPTED


def test_headless_command_refuses_a_bad_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"fit": {"validation_split": 0.0}}))
    out = subprocess.run(
        [sys.executable, "-m", "core", "train", str(path), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(os.getcwd())},
        timeout=120,
    )
    assert out.returncode == 2
    assert (
        "error: early_stopping.monitor: EarlyStopping monitors 'val_loss', but validation split is 0"
        in out.stderr
    )


@pytest.mark.parametrize(
    ("data", "model"),
    [("digits_images", "cnn"), ("digits_images", "mlp"), ("wine", "mlp")],
)
def test_presets_train_on_their_data(trainer, data, model):
    cfg = RunConfig(
        data=DataConfig(name=data),
        model=ModelConfig(name=model, units=32, filters=8),
        fit=FitConfig(max_epochs=2),
        checkpoint=CheckpointConfig(format=".weights.h5", save_weights_only=True),
    )
    snap = trainer.wait(trainer.start(cfg).id, timeout=120)
    assert snap.status == FINISHED, snap.message
    assert snap.checkpoint_path.endswith("checkpoint.weights.h5")
    assert snap.test_metrics["accuracy"] > 0.3  # weights-only checkpoint rebuilt and evaluated


@pytest.mark.parametrize(
    ("data", "model"),
    [
        ("digits", "mlp"),
        ("wine", "mlp"),
        ("digits_images", "cnn"),
        ("digits_images", "mlp"),
        ("text_sentiment", "seed_conv1d"),
    ],
)
def test_parameter_estimate_matches_keras(data, model):
    from core import models

    dcfg = DataConfig(name=data, max_samples=200, maxlen=50, num_words=300)
    mcfg = ModelConfig(name=model, units=24, depth=3, filters=4)
    info = datasets.describe(dcfg)
    ds = datasets.load(dcfg, validation_split=0.2, seed=0)
    built = models.build(ds, mcfg, FitConfig())
    estimate = models.estimate_params(mcfg, info.input_shape, info.task, info.n_classes, dcfg.num_words)
    assert estimate == built.count_params()


def test_keep_every_epoch_hands_out_any_epoch_exactly(trainer, tmp_path):
    from core import models
    from core.store import epoch_weights

    cfg = digits_config(max_epochs=6)
    cfg.early_stopping.enabled = False
    cfg.checkpoint.keep_every_epoch = True
    snap = trainer.wait(trainer.start(cfg).id, timeout=120)
    run_dir = trainer.store.run_dir(snap.id)
    assert epoch_weights.kept_epochs(run_dir) == [1, 2, 3, 4, 5, 6]

    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    import keras

    for epoch in (2, 5):
        path = tmp_path / f"e{epoch}.keras"
        path.write_bytes(epoch_weights.model_bytes(run_dir, epoch))
        model = keras.models.load_model(path)
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        val = model.evaluate(ds.x_val, ds.y_val, batch_size=32, verbose=0, return_dict=True)
        assert val["loss"] == pytest.approx(snap.history[epoch - 1].logs["val_loss"], abs=1e-5)

    # The disk estimate shown on the Train page is close to what was written.
    info = datasets.describe(cfg.data)
    params = models.estimate_params(cfg.model, info.input_shape, info.task, info.n_classes)
    size = epoch_weights.epoch_file(run_dir, 1).stat().st_size
    assert 0.7 < epoch_weights.estimate_bytes_per_epoch(params) / size < 1.3, size


def test_pages_and_engine_import_without_tensorflow():
    """The first page draws at once: TensorFlow (about 4 s to import) waits for the first run."""
    probe = (
        "import sys\n"
        "import core.engine.queue, core.store.runs, core.data.datasets, core.models\n"
        "import core.charts.figures, core.analysis.whatif, core.export.script\n"
        "import core.stopping.replay, core.stopping.sweeps, core.analysis.compare\n"
        "import core.presets, core.validate\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported too early'\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_a_moved_runs_folder_keeps_working(trainer, tmp_path):
    """README: stop the app, move the folder, point ESLAB_RUNS_DIR at it: every run and checkpoint is kept."""
    import shutil

    cfg = digits_config(max_epochs=2)
    snap = trainer.wait(trainer.start(cfg).id, timeout=120)
    trainer.store.close()
    moved = tmp_path / "elsewhere"
    shutil.move(str(trainer.store.root), moved)
    again = RunStore(moved).load(snap.id)
    assert again.checkpoint_path == str(moved / snap.id / "checkpoint.keras")
    assert load_checkpoint(again.checkpoint_path).count_params() > 0


@pytest.mark.slow
def test_a_full_disk_at_save_time_fails_the_run_and_keeps_the_last_checkpoint(tmp_path):
    """The file-size limit of the training process drops below a checkpoint's size mid-run (as a disk
    filling up would): the next save fails, the run fails with a plain message, the last one is intact."""
    import resource

    runs_dir = tmp_path / "runs"
    cfg = digits_config(batch_size=8, max_epochs=500)
    cfg.early_stopping.enabled = False
    cfg.checkpoint.save_best_only = False  # a save every epoch
    proc, runs_dir = start_headless(tmp_path, cfg, ignore_sigxfsz=True)  # EFBIG instead of a kill
    try:
        saves = 0
        for line in proc.stdout:
            saves += "saving model to checkpoint.keras" in line
            if saves >= 2:
                break
        # A limit below the checkpoint's size and well above every other file the run writes to.
        [run_dir] = [p for p in runs_dir.iterdir() if p.is_dir()]
        checkpoint = (run_dir / "checkpoint.keras").stat().st_size
        # (The resume point is bigger than the checkpoint: it is written after it, so never reached.)
        others = [
            p.stat().st_size
            for p in [*runs_dir.iterdir(), *run_dir.iterdir()]
            if p.is_file() and p.name != "resume.npz"
        ]
        others.remove(checkpoint)
        limit = checkpoint * 3 // 4
        assert max(others) < limit // 2
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    store = RunStore(runs_dir)
    # As the app does when it opens the runs folder (and every few seconds while it runs): the index
    # write of the ending can fail on the full disk too (its WAL grows past the limit), while the
    # run's summary.json has it; the folder is the truth.
    store.mark_interrupted()
    [run_id] = store.ids()
    snap = store.load(run_id)
    assert snap.status == "failed"
    assert "Could not write to the runs folder" in snap.message
    assert f"the checkpoint of epoch {snap.checkpoint_epoch} is intact" in snap.message
    assert load_checkpoint(snap.checkpoint_path).count_params() > 0
    assert not [p.name for p in (runs_dir / run_id).iterdir() if ".partial" in p.name]
    assert snap.message in out
    from core.engine import resume_point

    # Intact, so the run can resume: resume points are throttled to 1% of training time, so the last
    # one may be a few epochs before the checkpoint (a resume trains those again, to the same numbers).
    point = resume_point.saved_epoch(runs_dir / run_id)
    assert point is not None and 1 <= point <= snap.checkpoint_epoch
    assert resume_point.read(runs_dir / run_id).epoch == point


def test_a_run_left_by_an_earlier_process_with_our_pid_is_marked_interrupted(tmp_path):
    """A container restart often gives the new server the old one's pid: the pid alone must not count."""
    import sqlite3

    from core.store.runs import RUNNING, process_identity

    store = RunStore(tmp_path / "runs")
    store.create("a" * 32, digits_config(), time.time())  # queued, owned by this process
    store.create("b" * 32, digits_config(), time.time())
    boot, pid, start = process_identity().split("/")
    earlier_me = f"{boot}/{pid}/{int(start) - 1}"  # same pid, started before us: another process
    with sqlite3.connect(store.root / "runs.sqlite") as db:
        db.execute("UPDATE runs SET status = ?, owner = ? WHERE id = ?", (RUNNING, earlier_me, "a" * 32))
    assert store.mark_interrupted() == ["a" * 32]
    assert store.load("a" * 32).status == INTERRUPTED
    assert store.load("b" * 32).status == "queued"  # ours, still waiting


def test_an_index_from_an_earlier_version_gains_the_new_columns(tmp_path):
    import sqlite3

    root = tmp_path / "runs"
    root.mkdir()
    with sqlite3.connect(root / "runs.sqlite") as db:
        db.execute(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,"
            " config TEXT NOT NULL, dataset TEXT, model TEXT, created_at REAL, started_at REAL,"
            " finished_at REAL, epochs_run INTEGER DEFAULT 0, max_epochs INTEGER, monitor TEXT,"
            " best_epoch INTEGER, best_value REAL, checkpoint_path TEXT, checkpoint_epoch INTEGER,"
            " stopped_epoch INTEGER, stop_reason TEXT, message TEXT, test_metrics TEXT, owner_pid INTEGER)"
        )
        db.execute(
            "INSERT INTO runs (id, name, status, config, owner_pid) VALUES (?, ?, 'running', ?, 999999999)",
            ("c" * 32, "old", digits_config().to_json()),
        )
    store = RunStore(root)
    assert store.mark_interrupted() == ["c" * 32]  # its owner pid is long gone
    (root / ("c" * 32)).mkdir()
    assert store.load("c" * 32).status == INTERRUPTED
    store.create("d" * 32, digits_config(), time.time())
    assert store.request_stop("d" * 32) and store.stop_requested("d" * 32)
