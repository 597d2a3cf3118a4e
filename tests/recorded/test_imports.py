"""Importing what was recorded: files written by Keras' own History, CSVLogger and TensorBoard callbacks
during a real fit become runs whose curves are the fit's, exactly, so that replaying the fit's
EarlyStopping on them gives what it decided. Malformed files are refused naming what is wrong.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.recorded import imports
from core.recorded.imports import RecordingError
from core.replay import replay_early_stopping
from core.store.runs import RunStore
from tests.subprocesses import pythonpath

pytestmark = pytest.mark.xdist_group("recorded-imports")  # its module fixture runs once, on one worker

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": pythonpath(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}

FIT = """
import json, sys
import keras, numpy as np
keras.utils.set_random_seed(3)
rng = np.random.default_rng(1)
x = rng.normal(size=(160, 12)).astype("float32")
y = (x[:, 0] + rng.normal(size=160) > 0).astype("float32")  # noisy and small: it overfits soon
model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
es = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, min_delta=1e-3)
h = model.fit(x, y, validation_split=0.3, epochs=300, verbose=0, callbacks=[
    es, keras.callbacks.CSVLogger("log.csv"), keras.callbacks.TensorBoard("tb")])
json.dump(h.history, open("history.json", "w"))
print("RESULT " + json.dumps({"stopped_epoch": es.stopped_epoch, "best_epoch": es.best_epoch,
                              "history": h.history}))
"""


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    """A real fit, in its own process, with EarlyStopping, CSVLogger and TensorBoard; its folder and
    what Keras decided."""
    work = tmp_path_factory.mktemp("fit")
    out = subprocess.run(
        [sys.executable, "-c", FIT], cwd=work, env=ENV, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    did = json.loads(line.removeprefix("RESULT "))
    assert 0 < did["stopped_epoch"] < 299, "the fixture's fit must stop early"
    return work, did


def zipped(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in folder.rglob("*"):
            if f.is_file():
                z.write(f, f"logs/{f.relative_to(folder)}")
    return buf.getvalue()


def readings(work: Path) -> dict[str, imports.Recording]:
    return {
        "history_json": imports.read_file((work / "history.json").read_bytes(), "history.json"),
        "csv_logger": imports.read_file((work / "log.csv").read_bytes(), "log.csv"),
        "tensorboard": imports.read_tensorboard(work / "tb", "tb"),
        "tensorboard_zip": imports.read_file(zipped(work / "tb"), "tb.zip"),
    }


@pytest.mark.slow
def test_each_format_gives_the_fits_history_and_the_replay_gives_its_decision(fit):
    work, did = fit
    for how, rec in readings(work).items():
        for key, values in did["history"].items():
            assert [e[key] for e in rec.epochs] == values, (how, key)
        val = [e["val_loss"] for e in rec.epochs]
        r = replay_early_stopping(val, patience=4, min_delta=1e-3, mode="min")
        assert (r.stopped_epoch, r.best_epoch) == (did["stopped_epoch"], did["best_epoch"]), how


@pytest.mark.slow
def test_tensorboard_files_are_read_without_tensorflow(fit):
    """The app's server never imports TensorFlow; TensorBoard's reader then uses its own stub."""
    work, did = fit
    code = (
        "import json, sys\nfrom pathlib import Path\nfrom core.recorded import imports\n"
        f"rec = imports.read_tensorboard(Path({str(work / 'tb')!r}), 'tb')\n"
        "print(json.dumps({'tf': 'tensorflow' in sys.modules, 'val': [e['val_loss'] for e in rec.epochs]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.splitlines()[-1])
    assert got == {"tf": False, "val": did["history"]["val_loss"]}


@pytest.mark.slow
def test_an_imported_run_is_stored_finished_without_a_checkpoint(fit, tmp_path):
    work, did = fit
    store = RunStore(tmp_path / "runs")
    run_id = imports.import_run(store, readings(work)["csv_logger"], "from CSVLogger")
    snap = store.load(run_id)
    assert (snap.config.origin, snap.status, snap.stop_reason) == ("imported", "finished", "imported")
    assert snap.checkpoint_path is None and len(snap.history) == len(did["history"]["loss"])
    val = did["history"]["val_loss"]
    assert (snap.monitor, snap.best_epoch, snap.best_value) == ("val_loss", val.index(min(val)) + 1, min(val))
    assert "Imported from log.csv (CSVLogger file)" in snap.log_lines[0]
    assert "No checkpoint" in " ".join(snap.log_lines)


@pytest.mark.slow
def test_the_command_imports_a_folder_and_refuses_a_bad_file_without_a_traceback(fit, tmp_path):
    work, _ = fit
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "core", "import", "--runs-dir", str(runs)]
    ok = subprocess.run([*cmd, str(work / "tb"), "--tags", "loss,val_loss", "--name", "tb run"],
                        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "imported" in ok.stdout
    snap = RunStore(runs).load(RunStore(runs).ids()[0])
    assert set(snap.history[0].logs) == {"loss", "val_loss"} and snap.config.name == "tb run"
    bad = tmp_path / "bad.json"
    bad.write_text('{"loss": [0.5, "x"]}')
    no = subprocess.run([*cmd, str(bad)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert no.returncode == 2
    assert no.stderr.strip() == "error: bad.json: 'loss', epoch 2: 'x' is not a number."


# --------------------------------------------------------------------------------------------
# Malformed inputs: refused, naming what is wrong.


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"[1, 2]", "a History is a JSON object of metric -> list, not list"),
        (b'{"loss": 3}', "'loss' must be a list of numbers, not int"),
        (b'{"loss": [1, true]}', "'loss', epoch 2: 'True' is not a number"),
        (b'{"loss": [1, 2], "val_loss": [1]}', "'val_loss' has 1 values, other metrics 2"),
        (b'{"loss": [1], "loss": [2]}', "the key 'loss' appears twice"),
        (b'{"bad key!": [1]}', "'bad key!' is not a metric name Keras logs"),
        (b'{"loss": []}', "no epochs recorded"),
        (b"{}", "no metrics found"),
        (b'{"loss": [1,', "not valid JSON"),
        (b"\xff{}", "not UTF-8 text"),
        (b"[" * 100_000, "nested too deeply"),
        (b"loss,val_loss\n1,2\n", "line 1 must start with 'epoch'"),
        (b"epoch,loss\n0,1\n1,0.5\n0,0.9\n", "line 4: epoch '0' where 2 was expected"),
        (b"epoch,loss\n0,1,2\n", "line 2: 3 fields, the header has 2"),
        (b"epoch,loss\n0,abc\n", "line 2: 'loss' holds 'abc', not a number"),
        (b"epoch,loss,loss\n0,1,2\n", "the column 'loss' appears twice"),
        (b"PK\x03\x04 not really", "not a zip file"),
    ],
)
def test_malformed_files_are_refused_naming_what_is_wrong(data, says):
    with pytest.raises(RecordingError) as err:
        imports.read_file(data, "f")
    assert says in str(err.value)


def test_missing_values_are_kept_as_missing_and_said():
    rec = imports.read_file(b"epoch,loss,val_loss\n0,1.0,NA\n1,nan,0.5\n2,0.25,inf\n", "log.csv")
    assert rec.epochs == [{"loss": 1.0, "val_loss": None}, {"loss": None, "val_loss": 0.5},
                          {"loss": 0.25, "val_loss": None}]  # fmt: skip
    assert rec.notes == ["2 values were not a finite number (NaN or inf): kept as missing."]


def test_a_zip_never_writes_outside_its_folder_and_is_bounded(tmp_path, monkeypatch):
    outside = tmp_path / "escaped"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"../../../{outside}/train/events.out.tfevents.1", b"not events")
        z.writestr("/abs/validation/events.out.tfevents.2", b"not events")
    with pytest.raises(RecordingError, match="no epoch scalars found"):
        imports.read_file(buf.getvalue(), "evil.zip")
    assert not outside.exists()
    monkeypatch.setattr(imports, "MAX_BYTES", 1000)
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("logs/train/events.out.tfevents.1", b"\0" * 100_000)  # compresses to ~100 bytes
    with pytest.raises(RecordingError, match="unpacks to over 1,000 bytes"):
        imports.read_file(big.getvalue(), "bomb.zip")
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", b"hello")
    with pytest.raises(RecordingError, match="no event files under train/ or validation/"):
        imports.read_file(empty.getvalue(), "empty.zip")


# --------------------------------------------------------------------------------------------
# The other way: any run as a TensorBoard log folder, read back exactly.


@pytest.mark.slow
def test_an_app_run_written_as_tensorboard_logs_reads_back_exactly(fit, tmp_path):
    from core.export import tensorboard_log

    work, did = fit
    store = RunStore(tmp_path / "runs")
    run_id = imports.import_run(store, readings(work)["history_json"], "round trip")
    snap = store.load(run_id)
    command = [sys.executable, "-m", "core", "tensorboard", run_id, str(tmp_path / "tb")]
    out = subprocess.run(
        [*command, "--runs-dir", str(store.root)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for rec in (
        imports.read_tensorboard(tmp_path / "tb", "tb"),
        imports.read_file(tensorboard_log.zipped(snap), "tb.zip"),
    ):
        for key, values in did["history"].items():
            assert [e[key] for e in rec.epochs] == values, key
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["train", "validation"]
