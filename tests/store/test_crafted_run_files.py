"""A damaged or crafted resume point or checkpoint: a message on the page and in the CLI, never a
traceback, never code run."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import streamlit as st

from core.engine import resume_point
from core.engine.queue import Trainer
from core.presets import quick_digits
from core.store import run_files
from core.store.runs import STOPPED, RunStore, new_run_id

ROOT = Path(__file__).resolve().parents[2]
GOOD_HEADER = {"epoch": 2, "counts": [1, 0, -1], "early_stopping": None, "checkpoint": None, "summary": {}}


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _npz(file: Path, header, **arrays) -> None:
    h = header if isinstance(header, str) else json.dumps(header)
    with open(file, "wb") as fh:
        np.savez(fh, header=np.array(h), **arrays)


def _bomb(file: Path) -> None:
    """A few hundred KB that would inflate to 200 MB."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(json.dumps(GOOD_HEADER)))
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("header.npy", buf.getvalue())
        with zf.open("m0.npy", "w") as out:
            np.lib.format.write_array_header_1_0(
                out, {"descr": "<f4", "fortran_order": False, "shape": (50_000_000,)}
            )
            chunk = bytes(1 << 20)
            for _ in range(200):
                out.write(chunk)


def _with(**change):
    return {**GOOD_HEADER, **change}


CRAFTED = {
    "not a zip": lambda f, m: f.write_bytes(b"garbage" * 100),
    "torn": lambda f, m: f.write_bytes(b"PK\x03\x04" + bytes(50)),
    "header not JSON": lambda f, m: _npz(f, "{not json", m0=np.zeros(2, np.float32)),
    "header a list": lambda f, m: _npz(f, [1, 2, 3], m0=np.zeros(2, np.float32)),
    "counts a string": lambda f, m: _npz(f, _with(counts="many"), m0=np.zeros(2, np.float32)),
    "epoch a string": lambda f, m: _npz(f, _with(epoch="2; rm -rf /"), m0=np.zeros(2, np.float32)),
    "epoch zero": lambda f, m: _npz(f, _with(epoch=0), m0=np.zeros(2, np.float32)),
    "early-stopping best a string": lambda f, m: _npz(
        f,
        _with(early_stopping={"wait": 1, "stopped_epoch": 0, "best": "x", "best_epoch": 1}),
        m0=np.zeros(2, np.float32),
    ),
    "monitor as markdown": lambda f, m: _npz(
        f, _with(summary={"monitor": "![x](http://127.0.0.1:9/p.png)"}), m0=np.zeros(2, np.float32)
    ),
    "strings for weights": lambda f, m: _npz(f, GOOD_HEADER, m0=np.array(["a", "b"])),
    "a pickled object": lambda f, m: _npz(f, GOOD_HEADER, m0=np.array([_Payload(m)], dtype=object)),
    "an array missing": lambda f, m: _npz(f, _with(counts=[3, 0, -1]), m0=np.zeros(2, np.float32)),
    "a zip bomb": lambda f, m: _bomb(f),
}


ARRAY_CASES = ("strings for weights", "a pickled object", "an array missing")


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_resume_point_is_refused_with_a_reason(tmp_path, case):
    marker = tmp_path / "pwned"
    CRAFTED[case](resume_point.path(tmp_path), marker)
    with pytest.raises(resume_point.ResumeError, match="cannot be read") as err:
        resume_point.read(tmp_path)
    assert len(str(err.value)) < 400
    if case not in ARRAY_CASES:  # the server reads the header only; the arrays are checked where it trains
        assert resume_point.saved_epoch(tmp_path) is None
    assert not marker.exists()


@pytest.fixture
def stopped_run(tmp_path):
    """A real run stopped after two epochs: it has a resume point and a checkpoint."""
    trainer = Trainer(RunStore(tmp_path / "runs"))
    cfg = quick_digits()
    cfg.fit.max_epochs = 500
    cfg.fit.batch_size = 8
    cfg.early_stopping.enabled = False
    cfg.checkpoint.keep_every_epoch = True
    run = trainer.start(cfg)
    deadline = time.monotonic() + 120
    while run.snapshot().epoch < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    trainer.stop(run.id)
    snap = trainer.wait(run.id)
    assert snap.status == STOPPED and resume_point.saved_epoch(trainer.store.run_dir(run.id))
    trainer.store.close()
    return tmp_path / "runs", run.id


def test_the_resume_command_says_why_on_a_crafted_resume_point(stopped_run, tmp_path):
    runs_dir, run_id = stopped_run
    marker = tmp_path / "pwned"
    for case in ("header a list", "monitor as markdown", "a zip bomb", "epoch zero"):
        CRAFTED[case](resume_point.path(runs_dir / run_id), marker)
        out = subprocess.run(
            [sys.executable, "-m", "core", "resume", run_id, "--runs-dir", str(runs_dir)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
            timeout=120,
        )
        assert out.returncode == 2, (case, out.stdout, out.stderr)
        assert (
            "error: This run has no resume point it can use. The resume point of this run cannot be read"
            in (out.stderr)
        ), case
        assert "Traceback" not in out.stdout + out.stderr
        assert not marker.exists()
        assert RunStore(runs_dir).load(run_id).status == STOPPED  # untouched


@pytest.fixture
def page_env(stopped_run, monkeypatch):
    runs_dir, run_id = stopped_run
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")
    st.cache_resource.clear()
    yield runs_dir, run_id
    st.cache_resource.clear()


def _train_page(run_id: str):
    from tests.ui.test_pages import app

    at = app()
    at.query_params["run"] = run_id
    return at.run()


def test_the_page_explains_a_crafted_resume_point_and_offers_no_resume(page_env):
    from tests.ui.test_pages import shown

    runs_dir, run_id = page_env
    CRAFTED["early-stopping best a string"](resume_point.path(runs_dir / run_id), None)
    at = _train_page(run_id)
    assert not at.exception
    assert not [b for b in at.button if b.key == "resume_run"]
    assert any("Cannot resume: This run has no resume point it can use." in shown(w) for w in at.warning)


def test_a_resume_point_crafted_after_the_page_was_drawn_fails_the_click_with_a_message(page_env):
    from tests.ui.test_pages import shown

    runs_dir, run_id = page_env
    at = _train_page(run_id)
    [button] = [b for b in at.button if b.key == "resume_run"]
    CRAFTED["header a list"](resume_point.path(runs_dir / run_id), None)
    button.click().run()
    assert not at.exception
    assert any(
        shown(e).startswith("Could not resume: This run has no resume point it can use.") for e in at.error
    )
    assert RunStore(runs_dir).load(run_id).status == STOPPED


def test_a_resume_point_whose_arrays_are_crafted_fails_the_run_with_a_message(page_env):
    """The header is fine, so the resume is queued; the training side reads the arrays and refuses."""
    from ui.state import get_trainer

    runs_dir, run_id = page_env
    file = resume_point.path(runs_dir / run_id)
    with np.load(file, allow_pickle=False) as npz:
        header = json.loads(str(npz["header"]))
    _npz(file, header, **{f"m{i}": np.array(["x"]) for i in range(header["counts"][0])})
    trainer = get_trainer()
    trainer.resume(run_id)
    snap = trainer.wait(run_id, timeout=120)
    assert snap.status == "failed"
    assert (
        "The resume point of this run cannot be read (an array of <U1 where numbers belong)" in snap.message
    )
    at = _train_page(run_id)
    assert not at.exception


@pytest.mark.parametrize("craft", ["garbage", "symlink", "lambda"])
def test_a_damaged_or_crafted_checkpoint_is_named_not_offered(page_env, craft, tmp_path):
    from tests.ui.test_pages import shown

    runs_dir, run_id = page_env
    snap = RunStore(runs_dir).load(run_id)
    ck = Path(snap.checkpoint_path)
    assert run_files.checkpoint_problem(str(ck), runs_dir / run_id) is None
    if craft == "garbage":
        ck.write_bytes(b"\x00" * 100)
        expected = "is damaged: it is not a .keras archive"
    elif craft == "symlink":
        secret = tmp_path / "secret.keras"
        secret.write_bytes(ck.read_bytes())
        ck.unlink()
        ck.symlink_to(secret)
        expected = "is not a plain file"
    else:
        _lambda_model(ck)
        expected = "holds a Lambda layer"
    at = _train_page(run_id)
    assert not at.exception
    assert "dl_checkpoint" not in [b.key for b in at.get("download_button")]
    assert any(expected in shown(w) for w in at.warning), [w.value for w in at.warning]


def _lambda_model(path: Path) -> None:
    import keras

    model = keras.Sequential([keras.layers.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(path)


def test_a_crafted_epoch_file_is_named_on_the_what_if_page_not_offered(page_env):
    from core.store import epoch_weights
    from tests.ui.test_pages import app, shown

    runs_dir, run_id = page_env
    run_dir = runs_dir / run_id
    kept = epoch_weights.kept_epochs(run_dir)
    assert kept
    assert run_files.epoch_model_problem(run_dir, kept[-1]) is None
    _lambda_model(epoch_weights.architecture_file(run_dir))
    for e in kept:
        epoch_weights.epoch_file(run_dir, e).write_bytes(b"not hdf5")
    at = app("pages/4_What_if.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    assert not [b for b in at.get("download_button") if b.key.startswith("wi_dl_")]
    assert any("model cannot be built" in shown(w) and "Lambda layer" in shown(w) for w in at.warning), [
        w.value for w in at.warning
    ]


@pytest.mark.parametrize("name", ["log.txt", "history.jsonl", "config.json", "summary.json"])
@pytest.mark.parametrize("craft", ["fifo", "dev-zero"])
def test_a_run_file_that_is_a_pipe_or_a_device_is_not_read(tmp_path, name, craft):
    """Second audit of issue 9: a named pipe in a run folder made every process that loaded the run, or
    rebuilt the index, wait for ever in open(); a link to /dev/zero spun for ever skipping one endless
    line. Only regular files are read; anything else reads as missing."""
    root = tmp_path / "runs"
    store = RunStore(root)
    from core.store.runs import new_run_id

    rid = new_run_id()
    store.create(rid, quick_digits(), time.time())
    store.close()
    file = root / rid / name
    file.unlink(missing_ok=True)
    if craft == "fifo":
        os.mkfifo(file)
    else:
        file.symlink_to("/dev/zero")
    for p in root.glob("runs.sqlite*"):  # the next open rebuilds from the folder (config.json, summary.json)
        p.unlink()
    code = (
        "import sys; from core.store.runs import RunStore; s = RunStore(sys.argv[1]); "
        "print(s.ids(), [len(s.load(r).history) for r in s.ids()])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = "[]" if name == "config.json" else f"['{rid}'] [0]"  # no config.json: no run to recover
    assert done.stdout.strip().startswith(expected), done.stdout


@pytest.mark.parametrize("craft", ["fifo", "dev-zero"])
def test_a_resume_point_that_is_a_pipe_or_a_device_is_refused_not_waited_on(tmp_path, craft):
    """Second audit of issue 9: resume.npz as a named pipe, or a link to /dev/zero, made the page of a
    stopped run (which asks whether it can resume) wait for ever."""
    root = tmp_path / "runs"
    store = RunStore(root)
    from core.store.runs import new_run_id

    rid = new_run_id()
    store.create(rid, quick_digits(), time.time())
    store.close()
    file = resume_point.path(root / rid)
    os.mkfifo(file) if craft == "fifo" else file.symlink_to("/dev/zero")
    code = (
        "import sys; from pathlib import Path; from core.engine import resume_point as r\n"
        "d = Path(sys.argv[1])\nprint(r.saved_epoch(d))\n"
        "try:\n    r.read(d)\nexcept r.ResumeError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root / rid)], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "None",
        "The resume point of this run cannot be read (it is not a regular file: a link, a named pipe or a "
        "device).",
    ]


def test_a_history_key_a_spreadsheet_would_run_is_quoted_in_the_history_csv():
    from core.config import RunConfig
    from core.store.runs import EpochRecord, RunSnapshot

    records = (
        EpochRecord(1, {"loss": 0.5, '=HYPERLINK("http://x")': 1.0, "+cmd": 2.0}, 0.1, False, None, None),
    )
    snap = RunSnapshot(id="0" * 32, config=RunConfig(), status="finished", created_at=0.0, history=records)
    header = snap.history_csv().decode().splitlines()[0]
    assert header.startswith("epoch,loss,")
    assert "'=HYPERLINK" in header and ",'+cmd," in header
    assert not any(cell.startswith(("=", "+")) for cell in header.split(","))


@pytest.mark.parametrize("name", ["log.txt", "history.jsonl"])
def test_a_log_or_history_that_is_a_named_pipe_is_refused_not_written_into_for_ever(tmp_path, name):
    """The writer appended with a blocking open(): a named pipe in a run's folder stopped the training
    process at its next log line, waiting for a reader. It must raise (the run reports the failure)."""
    root = tmp_path / "runs"
    store = RunStore(root)
    rid = new_run_id()
    store.create(rid, quick_digits(), time.time())
    store.close()
    os.mkfifo(root / rid / name)
    code = (
        "import sys; from core.store.runs import EpochRecord, RunStore; s = RunStore(sys.argv[1])\n"
        "try:\n"
        f"    s.append_log(sys.argv[2], 'a line') if {name!r} == 'log.txt' else "
        "s.append_history(sys.argv[2], EpochRecord(epoch=1, logs={'loss': 1.0}, seconds=0.1))\n"
        "except OSError as e:\n    print('refused:', e.strerror)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root), rid], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # With no reader, a non-blocking open of a pipe fails at once (ENXIO); with one, fstat refuses it.
    assert done.stdout.strip() in ("refused: No such device or address", "refused: not a regular file")
