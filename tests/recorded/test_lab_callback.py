"""eslab.LabCallback in a user's own script: a real fit in its own process, recorded into a runs folder.
from tests.subprocesses import pythonpath

What Keras decided in that fit (its History, EarlyStopping's stop and best epoch, ModelCheckpoint's
file) must be what the app shows and replays; the app's Stop must end that fit; the pages must show
the run as one recorded outside the app (no script, no retraining); and a runs folder that cannot be
written must never break the user's training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import RunConfig
from core.recorded.lab_callback import STOP_POLL_SECONDS
from core.replay import replay_early_stopping
from core.store.runs import RunStore
from core.validate import validate
from tests.subprocesses import pythonpath

pytestmark = pytest.mark.xdist_group("lab-callback")  # its module fixture runs once, on one worker

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("user_script.py")
ENV = {**os.environ, "PYTHONPATH": pythonpath(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def result_of(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The user's script run once to the end: (runs folder, its work folder, what Keras decided)."""
    base = tmp_path_factory.mktemp("lab")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(base / "runs"), str(base)],
        capture_output=True, text=True, cwd=base, env=ENV, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return base / "runs", base, result_of(out.stdout)


@pytest.mark.slow
def test_the_fit_is_recorded_as_keras_decided_it(recorded):
    runs, work, keras_did = recorded
    store = RunStore(runs)
    snap = store.load(keras_did["run_id"])
    assert snap.config.origin == "callback" and snap.config.name == "my script run"
    assert snap.status == "finished" and snap.stop_reason == "early_stopping"
    # The history, exactly: every metric of every epoch as the fit's History holds it.
    assert len(snap.history) == keras_did["epochs"]
    for key, values in keras_did["history"].items():
        assert [r.logs[key] for r in snap.history] == values, key
    # EarlyStopping's decisions (0-based in Keras) and its settings, read from the user's callback.
    assert snap.stopped_epoch == keras_did["stopped_epoch"] + 1
    es = snap.config.early_stopping
    assert (es.monitor, es.patience, es.min_delta, es.restore_best_weights) == ("val_loss", 3, 1e-4, True)
    assert snap.history[-1].es_best_epoch == keras_did["best_epoch"] + 1
    # The replay of the recording with those settings is what EarlyStopping did (what-if stands on it).
    replay = replay_early_stopping(
        keras_did["history"]["val_loss"], patience=3, min_delta=1e-4, mode="min", restore_best_weights=True
    )
    assert (replay.stopped_epoch, replay.final_weights_epoch) == (
        keras_did["stopped_epoch"],
        keras_did["best_epoch"],
    )
    # ModelCheckpoint's file, copied into the run folder: the same bytes, and it loads.
    assert snap.checkpoint_epoch == snap.best_epoch == keras_did["best_epoch"] + 1
    copy = Path(snap.checkpoint_path)
    assert copy.parent == runs / snap.id
    assert copy.read_bytes() == (work / "best.keras").read_bytes()
    import keras

    assert keras.models.load_model(copy, safe_mode=True).count_params() == 321
    # Keras' own messages and the model summary in the console; no Streamlit in the user's process.
    console = "\n".join(snap.log_lines)
    assert "Total params: 321" in console and f"Epoch {snap.stopped_epoch}: early stopping" in console
    assert f"Restoring model weights from the end of the best epoch: {snap.best_epoch}." in console
    assert "val_loss improved from None to" in console and ", saving model to best.keras" in console
    assert keras_did["streamlit_imported"] is False


@pytest.mark.slow
def test_the_apps_stop_ends_the_users_fit(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(runs), str(tmp_path), "slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=ENV,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        run_id = None
        while time.time() < deadline:
            store = RunStore(runs) if runs.exists() else None
            ids = store.ids() if store else []
            if ids and len(store.load(ids[0]).history) >= 2:
                run_id = ids[0]
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.2)
        assert run_id, "the run never showed two epochs"
        # The batch in flight reaches the index (for the live view) while the fit runs.
        deadline = time.time() + 30
        while not (0 < store.load(run_id).batch <= 19 and store.load(run_id).steps_per_epoch == 19):
            assert time.time() < deadline, "no batch progress in the index"
            time.sleep(0.1)
        asked = time.time()
        assert store.request_stop(run_id)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    keras_did = result_of(out)
    # The watcher asks the index every STOP_POLL_SECONDS; then the fit ends after the batch in flight.
    assert keras_did["returned_at"] - asked < STOP_POLL_SECONDS + 3.0, keras_did["returned_at"] - asked
    assert keras_did["epochs"] < 400
    snap = RunStore(runs).load(run_id)
    assert (snap.status, snap.stop_reason) == ("stopped", "user")
    assert "Stop requested from the app." in snap.log_lines
    assert len(snap.history) == keras_did["epochs"]


def test_a_runs_folder_that_cannot_be_written_warns_once_and_training_goes_on(tmp_path):
    import keras

    import eslab

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x, x[:, 0], epochs=3, verbose=0, callbacks=[eslab.LabCallback(runs_dir=blocker / "runs")]
        )
    assert len(history.epoch) == 3
    ours = [w for w in caught if "eslab.LabCallback could not" in str(w.message)]
    assert len(ours) == 1 and "training goes on" in str(ours[0].message)


def test_a_recorded_run_cannot_be_trained_by_the_app():
    problems = validate(RunConfig(origin="callback"))
    assert [p.field for p in problems] == ["origin"]
    assert "recorded by your own script (eslab.LabCallback)" in problems[0].message


def test_a_bad_run_name_is_refused_when_the_callback_is_made():
    import eslab

    with pytest.raises(ValueError, match="LabCallback name: "):
        eslab.LabCallback(name="line\nbreak")


# --------------------------------------------------------------------------------------------
# The pages on a recorded run.


@pytest.fixture
def on_pages(recorded, monkeypatch):
    runs, _, keras_did = recorded
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")
    st.cache_resource.clear()
    yield keras_did["run_id"]
    st.cache_resource.clear()


def page(name: str, run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(name)
    if run_id:
        at.query_params["run"] = run_id
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_the_train_page_shows_the_recorded_run_without_a_script_or_retraining(on_pages):
    at = page("pages/1_Train.py", on_pages)
    shown = " ".join(str(e.value) for e in [*at.success, *at.caption, *at.warning])
    assert "Early stopping at epoch" in shown
    assert "Recorded outside the app" in shown
    keys = {b.key for b in at.get("download_button")}
    assert {"dl_checkpoint", "dl_history", "dl_tensorboard"} <= keys and "dl_script" not in keys
    assert any(
        "recorded outside the app: the settings here are the defaults" in w.value for w in at.sidebar.warning
    )
    assert at.sidebar.selectbox(key="data.name").value != "recorded"


@pytest.mark.slow
def test_the_what_if_and_runs_pages_work_on_the_recorded_run(on_pages):
    at = page("pages/4_What_if.py", on_pages)
    assert not any(b.key == "wi_full_curve" for b in at.button)
    runs = page("pages/2_Runs.py")
    table = runs.dataframe[0].value
    row = table[table["name"] == "my script run"].iloc[0]
    assert row["dataset"] == "your own (recorded)" and row["model"] == "your own (recorded)"


def test_settings_outside_the_declaration_are_recorded_as_off_and_said(tmp_path):
    import keras

    import eslab

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    es = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10**9)
    lab = eslab.LabCallback(name="odd settings", runs_dir=tmp_path / "runs")
    model.fit(x, x[:, 0], validation_split=0.25, epochs=2, verbose=0, callbacks=[es, lab])
    snap = RunStore(tmp_path / "runs").load(lab.run_id)
    assert snap.config.early_stopping.enabled is False and snap.status == "finished"
    said = [line for line in snap.log_lines if line.startswith("Your early_stopping settings")]
    assert said and "early_stopping.patience" in said[0] and "recorded as off" in said[0]
    assert len(snap.history) == 2


@pytest.mark.slow
def test_the_project_installs_as_a_package_that_gives_eslab(tmp_path):
    """`pip install .` (here into a folder, offline: no build isolation, no dependencies) gives `eslab`
    and `core` (the public replay API) to a script run from anywhere."""
    import shutil

    source, target = tmp_path / "checkout", tmp_path / "site"
    skip = shutil.ignore_patterns(".*", "runs", "build", "*.egg-info", "__pycache__", "tests", "bench")
    shutil.copytree(ROOT, source, ignore=skip)  # setuptools builds in the tree: not in the real one
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    assert {"eslab", "core"} <= {p.name for p in target.iterdir()}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(target)}
    code = "import eslab, core.replay, sys; print(eslab.LabCallback.__module__, 'streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["core.recorded.lab_callback", "False"]
    assert str(ROOT) not in out.stderr


def test_keep_best_keeps_the_best_epochs_model_when_the_script_has_no_checkpoint(tmp_path):
    import keras

    import eslab

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype("float32")
    y = (x[:, 0] + rng.normal(size=120) > 0).astype("float32")
    x_val, y_val = x[:30], y[:30]
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.05), "mse")
    lab = eslab.LabCallback(name="keep best", runs_dir=tmp_path / "runs", keep_best=True)
    history = model.fit(x[30:], y[30:], validation_data=(x_val, y_val), epochs=25, verbose=0, callbacks=[lab])
    val = history.history["val_loss"]
    best = val.index(min(val)) + 1
    snap = RunStore(tmp_path / "runs").load(lab.run_id)
    assert (snap.monitor, snap.best_epoch, snap.checkpoint_epoch) == ("val_loss", best, best)
    assert best < 25, "the fixture must overfit so that the best epoch is not the last"
    kept = keras.models.load_model(snap.checkpoint_path, safe_mode=True)
    assert kept.evaluate(x_val, y_val, verbose=0) == pytest.approx(min(val), rel=1e-6)
    assert [r.epoch for r in snap.history if r.saved][-1] == best


class _Interrupt(Exception):
    """Stands for the KeyboardInterrupt a notebook user sends (pytest would take a real one)."""


def test_a_fit_that_raises_ends_its_run_instead_of_leaving_it_running(tmp_path):
    """Keras calls no callback when an exception leaves ``fit``; in a notebook the process lives on, so
    the run must not stay "running" for ever. The epochs recorded before it are kept."""
    import keras

    import eslab

    class InterruptAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise _Interrupt

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    lab = eslab.LabCallback(name="interrupted", runs_dir=tmp_path / "runs")
    with pytest.raises(_Interrupt):
        model.fit(x, x[:, 0], epochs=50, verbose=0, callbacks=[lab, InterruptAt()])
    store = RunStore(tmp_path / "runs")
    deadline = time.time() + 10 * STOP_POLL_SECONDS
    while store.load(lab.run_id).status == "running":
        assert time.time() < deadline, "the run still shows running"
        time.sleep(0.1)
    snap = store.load(lab.run_id)
    assert (snap.status, snap.stop_reason) == ("interrupted", "exception")
    assert [r.epoch for r in snap.history] == [1, 2, 3]
    assert "ended with an exception" in snap.message
    # The same callback records the next fit in the notebook as a new run, and ends it as Keras did.
    model.fit(x, x[:, 0], epochs=2, verbose=0, callbacks=[lab])
    again = store.load(lab.run_id)
    assert again.id != snap.id
    assert (again.status, again.stop_reason) == ("finished", "max_epochs")


def test_a_fit_that_finishes_is_never_taken_for_one_that_raised(tmp_path):
    """The watcher looks for the fit's frame on its thread: a fit slower than the poll, ended by
    Keras, must end as Keras ended it (the watcher stops with on_train_end)."""
    import keras

    import eslab

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(STOP_POLL_SECONDS * 0.8)

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    lab = eslab.LabCallback(name="slow", runs_dir=tmp_path / "runs")
    model.fit(x, x[:, 0], epochs=4, verbose=0, callbacks=[Slow(), lab])
    time.sleep(2 * STOP_POLL_SECONDS)
    snap = RunStore(tmp_path / "runs").load(lab.run_id)
    assert (snap.status, snap.stop_reason, len(snap.history)) == ("finished", "max_epochs", 4)
