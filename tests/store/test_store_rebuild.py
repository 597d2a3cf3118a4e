"""The run folders are the truth, the index (runs.sqlite) a cache: lost, damaged or locked, nothing is lost.

Every index write also writes the run folder's ``summary.json``; an index that is deleted (even mid-run),
garbage, truncated or another program's database is set aside and rebuilt from the folders. Damaged or
crafted run files never raise out of the store.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from core.engine.queue import Trainer
from core.store.runs import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    MAX_LINE_BYTES,
    QUEUED,
    RUNNING,
    EpochRecord,
    RunStore,
    new_run_id,
)
from tests.engine.test_disk_failures import _check_the_checkpoint_is_epoch, _finish, _read_until
from tests.engine.test_training import digits_config
from tests.headless import start_headless

pytestmark = pytest.mark.xdist_group("store-rebuild")  # its module fixture trains once, on one worker

INDEX = "runs.sqlite"


# ------------------------------------------------------------------------------------------------
# Helpers


def _finished_run(trainer: Trainer, **fit) -> str:
    cfg = digits_config(max_epochs=fit.pop("max_epochs", 4), **fit)
    cfg.name = "before"
    snap = trainer.wait(trainer.start(cfg).id, timeout=120)
    assert snap.status == FINISHED, snap.message
    return snap.id


def _same_run(again, snap) -> None:
    """What a rebuilt index shows is what the original showed."""
    assert again.config == snap.config
    for field in (
        "status", "created_at", "started_at", "finished_at", "monitor", "best_epoch", "best_value",
        "checkpoint_epoch", "stopped_epoch", "stop_reason", "message", "test_metrics", "epoch",
    ):  # fmt: skip
        assert getattr(again, field) == getattr(snap, field), field
    assert again.history == snap.history
    assert again.log_lines == snap.log_lines
    assert again.checkpoint_path == snap.checkpoint_path


def _set_aside(root: Path, name: str = INDEX) -> list[Path]:
    return sorted(root.glob(f"{name}.corrupt-*"))


# ------------------------------------------------------------------------------------------------
# 1. The index deleted while a run trains (in another process).


@pytest.mark.parametrize("files", ["runs.sqlite", "runs.sqlite*"], ids=["index-only", "with-wal-and-shm"])
def test_deleting_the_index_mid_run_loses_no_run(tmp_path, trainer, files):
    earlier = _finished_run(trainer)
    before = trainer.store.load(earlier)
    cfg = digits_config(batch_size=64, max_epochs=12)
    cfg.early_stopping.enabled = False
    cfg.checkpoint.save_best_only = False  # a save every epoch: the last one is epoch 12's
    proc, runs_dir = start_headless(tmp_path, cfg)  # the same tmp_path/runs as the trainer's store
    seen: list[str] = []
    try:
        _read_until(proc, seen, lambda: sum(line.startswith("Epoch 3/") for line in seen) >= 1)
        for path in runs_dir.glob(files):
            path.unlink()
        # Another process opening the store now (a server starting) finds no index: it rebuilds it.
        during = RunStore(runs_dir)
        live_id = seen[0].split()[1]
        assert sorted(during.ids()) == sorted([earlier, live_id])
        assert during.load(live_id).status == RUNNING
        assert len(during.load(live_id).history) >= 3
        _same_run(during.load(earlier), before)
        lines = _finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "\n".join(lines)
    assert proc.returncode == 0, output
    assert lines[-1] == f"run {live_id}: finished. Trained all 12 epochs.", output

    # The training process noticed the new index and went on writing into it.
    after = RunStore(runs_dir)
    assert after.recovered == []  # nothing left to recover: both runs are in the rebuilt index
    snap = after.load(live_id)
    assert (snap.status, snap.stop_reason, snap.epoch, snap.checkpoint_epoch) == (
        FINISHED,
        "max_epochs",
        12,
        12,
    )
    assert [r.epoch for r in snap.history] == list(range(1, 13))
    assert set(snap.test_metrics) == {"loss", "accuracy"}
    listed = after.list().set_index("id")
    assert listed.loc[live_id, "status"] == FINISHED and listed.loc[live_id, "epochs_run"] == 12
    assert listed.loc[earlier, "name"] == "before"
    _check_the_checkpoint_is_epoch(Path(snap.checkpoint_path), cfg, snap.history[-1].logs)
    _same_run(after.load(earlier), before)
    if files == "runs.sqlite":  # the deleted index's WAL and shared memory were set aside, not reused
        assert len(list(runs_dir.glob("runs.sqlite-wal.stale-*"))) == 1


def test_summary_json_holds_the_index_row(trainer):
    run_id = _finished_run(trainer)
    snap = trainer.store.load(run_id)
    summary = json.loads((trainer.store.run_dir(run_id) / "summary.json").read_text())
    assert summary["id"] == run_id and summary["name"] == "before"
    assert summary["status"] == FINISHED and summary["epochs_run"] == len(snap.history)
    assert summary["checkpoint"] == "checkpoint.keras"  # a file name, never an absolute path
    assert summary["best_epoch"] == snap.best_epoch and summary["test_metrics"] == snap.test_metrics
    assert summary["owner"] and summary["dataset"] == "digits" and summary["model"] == "mlp"
    trainer.rename(run_id, "after")
    assert json.loads((trainer.store.run_dir(run_id) / "summary.json").read_text())["name"] == "after"


# ------------------------------------------------------------------------------------------------
# 2. A bad index at open: set aside, rebuilt.


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot an index" * 5000)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _foreign(path: Path) -> None:
    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, lap_time REAL)")  # someone else's "runs"
        db.execute("INSERT INTO runs VALUES ('x', 61.2)")
    db.close()


def _empty_foreign(path: Path) -> None:
    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    db.close()


@pytest.fixture(scope="module")
def two_finished_runs(tmp_path_factory) -> tuple[Path, list[str]]:
    """A runs folder with two finished runs, trained once for the module; each test damages a copy
    (a moved runs folder keeps working: tests/engine/test_training.py)."""
    trainer = Trainer(RunStore(tmp_path_factory.mktemp("two-runs") / "runs"))
    ids = [_finished_run(trainer, max_epochs=3), _finished_run(trainer, max_epochs=2)]
    trainer.store.close()
    return trainer.store.root, ids


@pytest.mark.parametrize("damage", [_garbage, _truncated, _foreign, _empty_foreign])
def test_a_bad_index_is_set_aside_and_rebuilt_from_the_folders(tmp_path, two_finished_runs, damage):
    template, ids = two_finished_runs
    root = shutil.copytree(template, tmp_path / "runs")
    original = RunStore(root)
    before = {rid: original.load(rid) for rid in ids}
    original.close()  # checkpoints the WAL into runs.sqlite: the file alone is the index
    assert not (root / "runs.sqlite-wal").exists()
    damage(root / INDEX)
    bad = (root / INDEX).read_bytes()

    store = RunStore(root)
    [aside] = _set_aside(root)
    assert aside.read_bytes() == bad  # kept for a human, byte for byte
    assert sorted(store.recovered) == sorted(ids)
    assert sorted(store.ids()) == sorted(ids)
    for rid in ids:
        _same_run(store.load(rid), before[rid])
    cfg = before[ids[0]].config
    snap = store.load(ids[0])
    _check_the_checkpoint_is_epoch(
        Path(snap.checkpoint_path), cfg, snap.history[snap.checkpoint_epoch - 1].logs
    )
    # The rebuilt index is a working one, and the next open changes nothing.
    assert RunStore(root).recovered == [] and len(_set_aside(root)) == 1
    store.create(new_run_id(), digits_config(), time.time())
    assert len(store.ids()) == 3


def test_a_truncated_index_of_many_runs_is_rebuilt(store):
    ids = [new_run_id() for _ in range(60)]
    for i, rid in enumerate(ids):
        store.create(rid, digits_config(), 1000.0 + i)
    store.close()
    path = store.root / INDEX
    data = path.read_bytes()
    assert len(data) > 4 * 4096
    path.write_bytes(data[: len(data) // 2])
    again = RunStore(store.root)
    assert len(_set_aside(store.root)) == 1
    assert again.ids() == ids[::-1]  # newest first, created_at from summary.json
    assert again.load(ids[0]).status == QUEUED  # as summary.json recorded it


def test_an_empty_index_file_is_filled_from_the_folders(store):
    rid = new_run_id()
    store.create(rid, digits_config(), time.time())
    store.close()
    (store.root / INDEX).write_bytes(b"")
    for p in store.root.glob("runs.sqlite-*"):
        p.unlink()
    again = RunStore(store.root)
    assert again.ids() == [rid] and again.recovered == [rid]


def test_a_locked_index_at_open_is_not_mistaken_for_a_damaged_one(store, monkeypatch):
    monkeypatch.setenv("ESLAB_INDEX_TIMEOUT_S", "0.2")
    holder = sqlite3.connect(store.root / INDEX, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        again = RunStore(store.root)  # readers are not blocked in WAL mode
        assert again.ids() == [] and _set_aside(store.root) == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# ------------------------------------------------------------------------------------------------
# 3. Folders written by an earlier version (no summary.json).


def test_a_folder_without_summary_json_is_recovered(trainer):
    finished = _finished_run(trainer, max_epochs=200)  # stops early
    stopped_early = trainer.store.load(finished)
    assert stopped_early.stop_reason == "early_stopping"
    cut = _finished_run(trainer, max_epochs=3)
    root = trainer.store.root
    trainer.store.close()
    for rid in (finished, cut):
        (root / rid / "summary.json").unlink()
    # The second one's log ends mid-training: it cannot be proven finished.
    log = root / cut / "log.txt"
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines() if "Test set" not in line))
    for p in root.glob("runs.sqlite*"):
        p.unlink()

    store = RunStore(root)
    assert sorted(store.recovered) == sorted([finished, cut])
    snap = store.load(finished)
    assert (snap.status, snap.stop_reason) == (FINISHED, "early_stopping")
    assert snap.config == stopped_early.config
    for field in ("stopped_epoch", "best_epoch", "best_value", "checkpoint_epoch", "monitor", "epoch"):
        assert getattr(snap, field) == getattr(stopped_early, field), field
    assert snap.history == stopped_early.history
    assert snap.test_metrics == pytest.approx(stopped_early.test_metrics, abs=1e-4)  # as the log prints it
    assert "without summary.json" in snap.message
    other = store.load(cut)
    assert (other.status, other.stop_reason, other.epoch) == (INTERRUPTED, "interrupted", 3)
    assert other.checkpoint_epoch is not None and Path(other.checkpoint_path).is_file()


def test_a_folder_being_created_is_not_recovered(store):
    """create(): mkdir, a staged config, the row, then config.json. A folder without config.json is left."""
    rid = new_run_id()
    (store.root / rid).mkdir()
    (store.root / rid / ".config.json.staged").write_text(digits_config().to_json())
    again = RunStore(store.root)
    assert again.ids() == [] and again.recovered == []
    (store.root / "not-a-run").mkdir()
    (store.root / "not-a-run" / "config.json").write_text(digits_config().to_json())
    assert RunStore(store.root).ids() == []


def test_a_create_racing_a_rebuild_in_another_store_wins(store):
    """Many creates while other stores keep opening (and reconciling) the same folder: every run, once."""
    other_stores: list[RunStore] = []
    stop = threading.Event()

    def reopen() -> None:
        while not stop.is_set():
            other = RunStore(store.root)
            other.close()
            other_stores.append(other)

    thread = threading.Thread(target=reopen)
    thread.start()
    try:
        ids = [new_run_id() for _ in range(40)]
        for rid in ids:
            store.create(rid, digits_config(), time.time())
    finally:
        stop.set()
        thread.join()
    assert sorted(store.ids()) == sorted(ids)
    assert all(store.load(rid).status == QUEUED for rid in ids)  # none taken for a recovered run
    assert other_stores


def test_a_deleted_run_is_not_brought_back(store):
    rid = new_run_id()
    store.create(rid, digits_config(), time.time())
    store.delete(rid)
    assert RunStore(store.root).ids() == [] and not list(store.root.glob("*" + rid + "*"))


# ------------------------------------------------------------------------------------------------
# 4. A locked index mid-run.


def test_an_index_locked_mid_run_fails_the_run_with_a_plain_message(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_INDEX_TIMEOUT_S", "1")
    store = RunStore(tmp_path / "runs")
    trainer = Trainer(store)
    cfg = digits_config(batch_size=8, max_epochs=500)
    cfg.early_stopping.enabled = False
    cfg.checkpoint.save_best_only = False
    run = trainer.start(cfg)
    deadline = time.monotonic() + 120
    while trainer.snapshot(run.id).epoch < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    holder = sqlite3.connect(store.root / INDEX, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    summary = store.run_dir(run.id) / "summary.json"
    try:
        snap = trainer.wait(run.id, timeout=60)
        # Its ending's index write waits its second, gives up, and writes summary.json alone.
        deadline = time.monotonic() + 30
        while json.loads(summary.read_text())["status"] != FAILED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        reader = sqlite3.connect(f"file:{store.root / INDEX}?mode=ro", uri=True)
        assert reader.execute("SELECT status FROM runs").fetchone() == (RUNNING,)  # not in the index
        reader.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert snap.status == FAILED and snap.stop_reason == "error"
    epoch = snap.checkpoint_epoch
    assert epoch == snap.epoch >= 2  # that epoch's checkpoint was saved before its index write waited
    assert snap.message == (
        f"The run index (runs.sqlite in {store.root}) stayed locked by another program for 1 s, so this "
        f"run could not record its progress. Training stopped; every finished epoch is kept and the "
        f"checkpoint of epoch {epoch} is intact. Close the program holding the index (a database browser, "
        "a backup tool) and resume or train again."
    )
    assert "database is locked" not in snap.message
    _check_the_checkpoint_is_epoch(Path(snap.checkpoint_path), cfg, snap.history[epoch - 1].logs)
    # Once the lock is gone, the index takes the ending from summary.json (pages reap every 5 s).
    assert store.mark_interrupted() == []
    again = RunStore(store.root).load(run.id)
    assert (again.status, again.message, again.checkpoint_epoch) == (FAILED, snap.message, epoch)
    assert [r.epoch for r in again.history] == list(range(1, epoch + 1))


def test_the_index_timeout_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("ESLAB_INDEX_TIMEOUT_S", "2.5")
    assert RunStore(tmp_path / "a").timeout == 2.5
    monkeypatch.setenv("ESLAB_INDEX_TIMEOUT_S", "soon")
    assert RunStore(tmp_path / "b").timeout == 30.0
    monkeypatch.delenv("ESLAB_INDEX_TIMEOUT_S")
    assert RunStore(tmp_path / "c").timeout == 30.0


# ------------------------------------------------------------------------------------------------
# 5. Damaged or crafted run files.


def _queued(store: RunStore) -> str:
    rid = new_run_id()
    store.create(rid, digits_config(), time.time())
    return rid


def test_a_damaged_history_keeps_its_valid_epochs(store):
    rid = _queued(store)
    good = [EpochRecord(e, {"loss": 1.0 / e, "val_loss": 2.0 / e}, 0.1, e == 2, 0, 2) for e in (1, 2, 3)]
    lines = [
        good[0].to_json(),
        "garbage {",
        '{"epoch": "x", "logs": {}, "seconds": 1, "saved": false, "es_wait": null, "es_best_epoch": null}',
        '{"epoch": 2, "logs": [1, 2], "seconds": 1, "saved": false, "es_wait": null, "es_best_epoch": null}',
        '{"epoch": 2, "logs": {"loss": "high"}, "seconds": 1, "saved": false}',
        '{"epoch": true, "logs": {}, "seconds": 1, "saved": false}',
        "[" * 100_000 + "]" * 100_000,  # deep nesting: RecursionError in json
        '{"logs": {"loss": ' + "1" * (MAX_LINE_BYTES + 10) + "}}",  # a huge line
        good[1].to_json(),
        good[0].to_json(),  # out of order
        "\x00\xff\xfe",
        "[]",
        good[2].to_json(),
        '{"epoch": 4, "logs": {"loss"',  # torn by a crash
    ]
    (store.run_dir(rid) / "history.jsonl").write_text("\n".join(lines))
    (store.run_dir(rid) / "log.txt").write_bytes(b"one\n" + b"x" * (3 * MAX_LINE_BYTES) + b"\ntwo\n\xff\n")
    snap = store.load(rid)
    assert snap.history == tuple(good)
    assert snap.epoch == 3 and snap.checkpoint_epoch == 2
    assert snap.log_lines == ("one", "two", "\ufffd")
    assert len(store.list()) == 1


@pytest.mark.parametrize(
    "config",
    [
        "not json at all",
        "[1, 2, 3]",
        '{"fit": 3}',
        '{"surprise": true}',
        '{"data": {"name": "digits", "rm -rf": 1}}',
        "",
        "\x00" * 100,
    ],
)
def test_a_damaged_config_lists_and_opens_with_a_message(store, config):
    rid = _queued(store)
    with sqlite3.connect(store.root / INDEX) as db:  # the index's copy and the folder's, both damaged
        db.execute("UPDATE runs SET config = ?, status = ? WHERE id = ?", (config, INTERRUPTED, rid))
    db.close()
    (store.run_dir(rid) / "config.json").write_text(config)
    assert store.ids() == [rid] and len(store.list()) == 1
    snap = store.load(rid)
    assert snap.status == INTERRUPTED  # unchanged
    assert snap.damaged
    assert snap.message.startswith("This run's config.json is damaged: ")
    assert snap.config.name == "digits-test"  # the index's name column
    trainer = Trainer(store)
    assert trainer.snapshot(rid).damaged
    with pytest.raises(Exception, match="config.json is damaged"):
        trainer.resume(rid)
    trainer.rename(rid, "still renamable")
    assert store.load(rid).config.name == "still renamable"
    # And rebuilt from its folder alone: still listed, still damaged.
    store.close()
    for p in store.root.glob("runs.sqlite*"):
        p.unlink()
    again = RunStore(store.root)
    assert again.ids() == [rid]
    assert again.load(rid).damaged and again.load(rid).config.name == "still renamable"


def test_a_config_whose_name_is_not_text_opens(store):
    rid = _queued(store)
    with sqlite3.connect(store.root / INDEX) as db:
        db.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps({"name": 5}), rid))
    db.close()
    snap = store.load(rid)
    assert isinstance(snap.config.name, str)


def test_a_crafted_summary_json_cannot_point_outside_its_folder(store):
    rid = _queued(store)
    crafted = {
        "id": rid,
        "name": "x\n" * 3,
        "status": "pwned",
        "created_at": "yesterday",
        "epochs_run": [1],
        "best_value": float("inf"),
        "checkpoint": "../../../../etc/passwd",
        "test_metrics": {"loss": "0.1", "accuracy": 0.9},
        "owner_pid": True,
        "message": 7,
    }
    (store.run_dir(rid) / "summary.json").write_text(json.dumps(crafted))
    store.close()
    for p in store.root.glob("runs.sqlite*"):
        p.unlink()
    again = RunStore(store.root)
    snap = again.load(rid)
    assert snap.status == INTERRUPTED and snap.checkpoint_path is None
    assert snap.config.name == "digits-test" and snap.test_metrics == {"accuracy": 0.9}
    assert snap.message is None and isinstance(snap.created_at, float)
    row = again.list().iloc[0]
    assert row["epochs_run"] == 0 and row["name"] == "digits-test"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (5, "name: must be text, not int"),
        (None, "name: must be text"),
        ("two\nlines", "name: must be one line"),
        ("bell\x07", "name: must be one line"),
        ("x" * 201, "name: at most 200 characters"),
        ("   ", "name: a run needs a name"),
    ],
)
def test_rename_refuses_a_bad_name(store, name, words):
    rid = _queued(store)
    with pytest.raises(ValueError, match=words):
        store.rename(rid, name)
    with pytest.raises(ValueError, match=words):
        Trainer(store).rename(rid, name)
    assert store.load(rid).config.name == "digits-test"
    store.rename(rid, "ok " + "é" * 197)
    assert store.load(rid).config.name == "ok " + "é" * 197


def test_a_missing_run_folder_still_loads(store):
    """An index row whose folder is gone (deleted by hand) opens empty rather than raising."""
    rid = _queued(store)
    shutil.rmtree(store.run_dir(rid))
    snap = store.load(rid)
    assert snap.history == () and snap.log_lines == ()
    assert os.path.basename(store.root) == "runs"


def test_a_live_run_of_a_dead_process_is_interrupted_after_a_rebuild(store):
    rid = _queued(store)
    with sqlite3.connect(store.root / INDEX) as db:  # running, owned by a process long gone
        db.execute(
            "UPDATE runs SET status = ?, owner_pid = 999999999, owner = 'boot/999999999/1' WHERE id = ?",
            (RUNNING, rid),
        )
    db.close()
    store.rename(rid, "orphan")  # (any index write): summary.json now says running, with that owner
    store.close()
    for p in store.root.glob("runs.sqlite*"):
        p.unlink()
    trainer = Trainer(RunStore(store.root))
    assert trainer.interrupted == [rid]
    snap = trainer.snapshot(rid)
    assert (snap.status, snap.config.name) == (INTERRUPTED, "orphan")
    assert json.loads((store.run_dir(rid) / "summary.json").read_text())["status"] == INTERRUPTED


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_an_index_that_is_a_folder_or_a_pipe_is_set_aside_not_waited_on(store, kind):
    """Second audit of issue 9: ``runs.sqlite`` as a named pipe blocked every process opening the store
    for ever (open() of a FIFO waits for a writer); as a folder, every page ended with an app-wide
    error ("unable to open database file")."""
    ids = [new_run_id() for _ in range(3)]
    for i, rid in enumerate(ids):
        store.create(rid, digits_config(), 1000.0 + i)
    store.close()
    root = store.root
    for p in root.glob(INDEX + "*"):
        p.unlink()
    if kind == "folder":
        (root / INDEX).mkdir()
    else:
        os.mkfifo(root / INDEX)
    code = "import sys; from core.store.runs import RunStore; print(len(RunStore(sys.argv[1]).ids()))"
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(  # a process of its own: before, the pipe's open() never returned
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=30, cwd=repo
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "3"
    [aside] = _set_aside(root)
    assert aside.is_dir() if kind == "folder" else aside.is_fifo()  # kept for a human, never deleted
