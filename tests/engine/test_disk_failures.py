"""A runs folder that cannot be written at save time: read-only (EROFS / EACCES), or its index (runs.sqlite).

Each test trains a real run in a ``python -m core train`` child and takes the disk away from it mid-run, after
epoch 2's checkpoint exists, the way ``test_training.py::test_a_full_disk…`` does with ``prlimit``:

- read-only file system: the child runs in its own mount namespace (``unshare --mount``); mid-run, the runs
  folder is bind-mounted onto itself read-only inside that namespace only (``nsenter`` + ``mount -o
  remount,ro,bind``). Nothing leaks to the rest of the machine, and the mount goes with the child.
- permission denied: we are root, and root ignores file modes; so the child runs as root *without*
  CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (``setpriv --bounding-set``), which makes file modes apply to it, and
  the runs folder is ``chmod -R a-w`` mid-run. (Running it as ``nobody`` does not work here: the venv's
  interpreter lives under /root, mode 0700.)
- the index: the child's file-size limit drops below the size of the SQLite write-ahead log (runs.sqlite-wal),
  which only grows during a run, so the next index write fails with EFBIG, while the checkpoint (a tiny model)
  stays under the limit, or not.

Open file descriptors keep working in the first two cases (the index stays writable: SQLite opened it before);
only files opened after the change fail, which is what a folder turned read-only under a running process does.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from core.config import RunConfig
from core.data import datasets
from core.store.runs import FAILED, RunStore, read_history
from tests.engine.test_training import digits_config
from tests.headless import start_headless

SAVE_LINE = "saving model to checkpoint.keras"
ROOT = Path(__file__).resolve().parents[2]
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


# ------------------------------------------------------------------------------------------------
# Helpers


def _train_child(
    tmp_path: Path, cfg: RunConfig, prefix: list[str] | None = None
) -> tuple[subprocess.Popen, Path]:
    return start_headless(tmp_path, cfg, prefix=prefix, ignore_sigxfsz=True)


def _read_until(
    proc: subprocess.Popen, seen: list[str], done: Callable[[], bool], timeout: float = 180
) -> None:
    """Reads the child's output into ``seen`` until ``done()``; fails with it if the child ends first."""
    deadline = time.monotonic() + timeout
    if done():
        return
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if done():
            return
        assert time.monotonic() < deadline, "timed out; output so far:\n" + "\n".join(seen)
    pytest.fail(f"the training process ended early (exit {proc.wait()}); its output:\n" + "\n".join(seen))


def _finish(proc: subprocess.Popen, seen: list[str]) -> list[str]:
    # Not communicate(timeout=...): it reads the pipe's fd directly, and would lose the lines already
    # buffered by the iteration above. The child ends on its own; pytest's timeout is the backstop.
    rest = proc.stdout.read()
    proc.wait(timeout=60)
    return seen + rest.splitlines()


def _the_run_dir(runs_dir: Path) -> Path:
    [run_dir] = [p for p in runs_dir.iterdir() if p.is_dir()]
    return run_dir


def _history_lines(run_dir: Path) -> int:
    path = run_dir / "history.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_quiet(run_dir: Path, quiet: float = 0.1, timeout: float = 10) -> None:
    """Until no file of the run changes for ``quiet`` seconds and no temp file is open: epoch 2's writes
    (checkpoint, history, log, index, resume point) are done, and the next ones come at the end of epoch 3."""

    def state() -> list[tuple[str, int, int]]:
        return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in run_dir.iterdir())

    deadline = time.monotonic() + timeout
    before = state()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = state()
        if now == before and not [name for name, *_ in now if ".partial" in name]:
            return
        before = now
    pytest.fail(f"the run folder never went quiet: {before}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(cmd: list[str], what: str) -> None:
    """Runs a set-up command; a technique this machine does not allow fails the test and says why."""
    missing = shutil.which(cmd[0]) is None
    out = None if missing else subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if missing or out.returncode != 0:
        reason = f"{cmd[0]} is not installed" if missing else f"exit {out.returncode}: {out.stderr.strip()}"
        pytest.fail(
            f"Cannot {what} on this machine ({' '.join(cmd)}: {reason}). This test needs root with "
            "CAP_SYS_ADMIN (mount namespaces) and CAP_SETPCAP, and util-linux (unshare, nsenter, setpriv)."
        )


def _check_the_checkpoint_is_epoch(path: Path, cfg: RunConfig, epoch_logs: dict[str, float]) -> None:
    """Loads in safe mode, predicts, and reproduces that epoch's val_loss: the file is that epoch's model."""
    import keras

    model = keras.models.load_model(str(path), safe_mode=True)
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    pred = model.predict(ds.x_test, verbose=0)
    assert pred.shape == (len(ds.x_test), 10)
    assert np.isfinite(pred).all()
    assert np.allclose(pred.sum(axis=1), 1, atol=1e-4)
    val = model.evaluate(ds.x_val, ds.y_val, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert val["loss"] == pytest.approx(epoch_logs["val_loss"], abs=1e-5)


# ------------------------------------------------------------------------------------------------
# 1. The runs folder turns read-only at save time.


def _make_read_only_mount(proc: subprocess.Popen, runs_dir: Path) -> None:
    # Inside the child's own mount namespace: the test process and the rest of the machine still see it rw.
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1"'
    _run(["nsenter", "-t", str(proc.pid), "-m", "--", "sh", "-c", script, "sh", str(runs_dir)], "remount ro")


def _make_unwritable(proc: subprocess.Popen, runs_dir: Path) -> None:
    _run(["chmod", "-R", "a-w", str(runs_dir)], "chmod the runs folder")


READ_ONLY = {
    # technique: (command prefix of the child, how to take the folder away, errno text in the message)
    "read-only-mount": (["unshare", "--mount", "--propagation", "private", "--"], _make_read_only_mount,
                        "Read-only file system"),
    "permission-denied": (NO_DAC, _make_unwritable, "Permission denied"),
}  # fmt: skip


def _check_technique(how: str, tmp_path: Path) -> None:
    """The technique works here: a file cannot be created in a folder it made read-only."""
    probe = tmp_path / "probe"
    probe.mkdir()
    if how == "read-only-mount":
        script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && ! touch "$1/x" 2>/dev/null'
        _run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", str(probe)],
             "make a read-only bind mount in a private mount namespace")  # fmt: skip
    else:
        probe.chmod(0o555)
        _run([*NO_DAC, "sh", "-c", '! touch "$1/x" 2>/dev/null', "sh", str(probe)], "drop CAP_DAC_OVERRIDE")
        probe.chmod(0o755)
    assert not (probe / "x").exists()


@pytest.mark.slow
@pytest.mark.parametrize("how", list(READ_ONLY))
def test_a_read_only_runs_folder_at_save_time_fails_the_run_and_keeps_the_last_checkpoint(tmp_path, how):
    prefix, take_away, reason = READ_ONLY[how]
    _check_technique(how, tmp_path)
    cfg = digits_config(batch_size=2, max_epochs=500)  # ~1 s an epoch: room to act between two saves
    cfg.early_stopping.enabled = False
    cfg.checkpoint.save_best_only = False  # a save every epoch: epoch 3's save is the one that fails
    proc, runs_dir = _train_child(tmp_path, cfg, prefix)
    seen: list[str] = []
    try:
        _read_until(proc, seen, lambda: sum(SAVE_LINE in line for line in seen) >= 2)
        run_dir = _the_run_dir(runs_dir)
        _read_until(proc, seen, lambda: _history_lines(run_dir) >= 2, timeout=10)  # epoch 2 recorded
        _wait_quiet(run_dir)  # and every other file of epoch 2 written: no save is in flight
        assert proc.poll() is None
        take_away(proc, runs_dir)
        assert _history_lines(run_dir) == 2, "too slow: epoch 3 finished before the folder became read-only"
        before = _sha(run_dir / "checkpoint.keras")
        lines = _finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["chmod", "-R", "u+w", str(runs_dir)], check=False, capture_output=True)
    output = "\n".join(lines)
    print(output)  # shown with -s, or when the test fails

    assert proc.returncode == 1, output
    assert "Traceback" not in output
    [run_id] = RunStore(runs_dir).ids()
    snap = RunStore(runs_dir).load(run_id)
    assert snap.status == FAILED, output
    assert snap.stop_reason == "error"
    assert snap.message == (
        f"Could not write to the runs folder {runs_dir} ({reason}). Training stopped; every finished epoch "
        "is kept and the checkpoint of epoch 2 is intact. Free some space (or fix the folder's permissions) "
        "and train again."
    ), output
    assert lines[-1] == f"run {run_id}: failed. {snap.message}"
    # Epoch 3's checkpoint save failed, before the epoch was logged.
    assert not [line for line in lines if line.startswith("Epoch 3/")]

    # The finished epochs are kept, and the checkpoint is epoch 2's, byte for byte, and works.
    assert [r.epoch for r in snap.history] == [1, 2]
    assert snap.checkpoint_epoch == 2
    assert snap.checkpoint_path == str(run_dir / "checkpoint.keras")
    assert _sha(run_dir / "checkpoint.keras") == before
    _check_the_checkpoint_is_epoch(run_dir / "checkpoint.keras", cfg, snap.history[1].logs)
    assert not [p.name for p in run_dir.iterdir() if ".partial" in p.name]


# ------------------------------------------------------------------------------------------------
# 2. The SQLite index cannot be written.


def _tiny_config() -> RunConfig:
    """A ~25 KB checkpoint, ~0.2 s epochs: the index's WAL (~4.6 KB a commit) outgrows it within seconds."""
    cfg = digits_config(batch_size=256, max_epochs=2000)
    cfg.model.units, cfg.model.depth = 4, 1
    cfg.early_stopping.enabled = False
    cfg.checkpoint.save_best_only = False  # a save every epoch, just before that epoch's index write
    return cfg


def _index_row(runs_dir: Path, run_id: str) -> dict:
    """The index row as it is on disk, read without opening a RunStore (which would mark the run)."""
    db = sqlite3.connect(f"file:{runs_dir / 'runs.sqlite'}?mode=ro", uri=True)
    try:
        cur = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
        return dict(zip([c[0] for c in cur.description], cur.fetchone()))
    finally:
        db.close()


@pytest.mark.parametrize(
    "checkpoint_fits", [True, False], ids=["checkpoint-still-saves", "checkpoint-fails-too"]
)
def test_an_index_that_cannot_be_written_loses_no_finished_epoch(tmp_path, checkpoint_fits):
    """checkpoint-still-saves: only the index fails, at an epoch's index write (the checkpoint of that epoch
    is already saved). checkpoint-fails-too: a full disk, really: that epoch's checkpoint save fails first,
    and then the index write that should record the failure."""
    cfg = _tiny_config()
    proc, runs_dir = _train_child(tmp_path, cfg)
    wal = runs_dir / "runs.sqlite-wal"
    seen: list[str] = []
    try:
        _read_until(proc, seen, lambda: sum(SAVE_LINE in line for line in seen) >= 2)
        run_dir = _the_run_dir(runs_dir)
        checkpoint = (run_dir / "checkpoint.keras").stat().st_size
        limit = 2 * checkpoint if checkpoint_fits else checkpoint // 2
        _read_until(proc, seen, lambda: wal.stat().st_size > limit + 8192)  # the WAL only grows in a run
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
        appended = [p.stat().st_size for p in run_dir.iterdir() if p.name.endswith((".jsonl", ".txt"))]
        assert max(appended) < limit // 2  # history and log appends still fit: the index is what fails
        lines = _finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "\n".join(lines)
    print(output)  # shown with -s, or when the test fails
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    run_id = lines[0].split()[1]
    history = read_history(run_dir / "history.jsonl")
    epochs = [r.epoch for r in history]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 2
    row = _index_row(runs_dir, run_id)
    assert row["status"] == "running"  # its last index write that worked; "failed" never reached the disk
    if checkpoint_fits:
        # The run failed in memory (the CLI prints it, the page would show it) and its traceback is in
        # error.txt. The failing epoch is in history.jsonl, not in the index.
        message = (
            f"Could not write to the runs folder {runs_dir} (runs.sqlite: disk I/O error). Training stopped; "
            f"every finished epoch is kept and the checkpoint of epoch {epochs[-1]} is intact."
        )
        assert lines[-1].startswith(f"run {run_id}: failed. {message}"), output
        assert "sqlite3.OperationalError: disk I/O error" in (run_dir / "error.txt").read_text()
        assert row["epochs_run"] == len(epochs) - 1
        assert history[-1].saved  # its checkpoint was saved before the index write failed
    else:
        message = (
            f"Could not write to the runs folder {runs_dir} (File too large). Training stopped; every "
            f"finished epoch is kept and the checkpoint of epoch {epochs[-1]} is intact."
        )
        assert lines[-1].startswith(f"run {run_id}: failed. {message}"), output
        assert row["epochs_run"] == len(epochs)

    # The ending the index could not take reached the run's summary.json: a later process opening the
    # store takes it from there (not "interrupted"), with every finished epoch.
    assert json.loads((run_dir / "summary.json").read_text())["status"] == FAILED
    store = RunStore(runs_dir)
    assert store.mark_interrupted() == []
    snap = store.load(run_id)
    assert snap.status == FAILED
    assert snap.stop_reason == "error"
    assert snap.message == lines[-1].split("failed. ", 1)[1]
    assert [r.epoch for r in snap.history] == epochs
    assert snap.epoch == epochs[-1]
    assert snap.checkpoint_epoch == epochs[-1]  # from history.jsonl when the index lags it
    assert snap.log_lines[-1] == "Failed: " + lines[-1].split("failed. ", 1)[1]  # the log append still fit

    # The checkpoint is intact: the last epoch whose save completed, and it loads and predicts.
    assert not [p.name for p in run_dir.iterdir() if ".partial" in p.name]
    assert snap.checkpoint_path == str(run_dir / "checkpoint.keras")
    _check_the_checkpoint_is_epoch(run_dir / "checkpoint.keras", cfg, history[-1].logs)


def test_an_index_made_read_only_mid_run_does_not_stop_the_run(tmp_path):
    """``chmod a-w runs.sqlite*`` under a running process changes nothing for it: SQLite opened the files
    before, and writes through those descriptors. The run finishes and is recorded as finished."""
    cfg = _tiny_config()
    cfg.fit.max_epochs = 12
    proc, runs_dir = _train_child(tmp_path, cfg, NO_DAC)  # file modes apply to this root child
    seen: list[str] = []
    try:
        _read_until(proc, seen, lambda: sum(SAVE_LINE in line for line in seen) >= 2)
        index_files = sorted(runs_dir.glob("runs.sqlite*"))
        assert [p.name for p in index_files] == ["runs.sqlite", "runs.sqlite-shm", "runs.sqlite-wal"]
        _run(["chmod", "a-w", *map(str, index_files)], "chmod the index")
        lines = _finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "\n".join(lines)
    assert proc.returncode == 0, output
    run_id = lines[0].split()[1]
    assert lines[-1] == f"run {run_id}: finished. Trained all 12 epochs.", output
    snap = RunStore(runs_dir).load(run_id)
    assert (snap.status, snap.epoch, snap.checkpoint_epoch) == ("finished", 12, 12)


def test_a_read_only_index_at_start_is_refused_with_a_message(tmp_path):
    """No traceback, and no run folder left without its index row (the app would never list it)."""
    runs_dir = tmp_path / "runs"
    RunStore(runs_dir).close()
    index_files = sorted(runs_dir.glob("runs.sqlite*"))
    _run(["chmod", "a-w", *map(str, index_files)], "chmod the index")
    config_path = tmp_path / "config.json"
    config_path.write_text(_tiny_config().to_json())
    out = subprocess.run(
        [*NO_DAC, sys.executable, "-m", "core", "train", str(config_path), "--runs-dir", str(runs_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert f"error: cannot write to {runs_dir}: attempt to write a readonly database" in out.stderr
    assert out.stdout == ""
    assert [p for p in runs_dir.iterdir() if p.is_dir()] == []
