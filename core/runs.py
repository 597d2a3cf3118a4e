"""Runs: the live, thread-safe state of a run, its immutable snapshots, and the store on disk.

The training thread writes into a ``Run``; pages read ``RunSnapshot`` copies, never the live
object, so a reader can never see half an update. Everything that must survive a crash goes to
disk as it happens: an SQLite index row (status, best, timings) and one folder per run holding
``config.json``, ``history.jsonl`` (one line per finished epoch), ``log.txt`` and the checkpoint.
Epochs here are 1-based, as Keras prints them ("Epoch 3/200").
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import RunConfig, load_stored

RUNS_DIR_ENV = "ESLAB_RUNS_DIR"
_ID_RE = re.compile(r"^[0-9a-f]{32}$")

QUEUED, RUNNING, STOPPING = "queued", "running", "stopping"
FINISHED, STOPPED, FAILED, INTERRUPTED = "finished", "stopped", "failed", "interrupted"
LIVE_STATUSES = (QUEUED, RUNNING, STOPPING)
STATUS_LABELS = {
    QUEUED: "queued",
    RUNNING: "running",
    STOPPING: "stopping",
    FINISHED: "finished",
    STOPPED: "stopped by user",
    FAILED: "failed",
    INTERRUPTED: "interrupted",
}
STOP_REASONS = {
    "early_stopping": "early stopping",
    "max_epochs": "reached max epochs",
    "user": "stopped by user",
    "nan_loss": "loss became NaN",
    "error": "error",
    "interrupted": "interrupted (server stopped)",
}

MAX_BATCH_POINTS = 2000  # bound on batch-level points kept per run, whatever its length


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV, "runs")).resolve()


def new_run_id() -> str:
    return uuid.uuid4().hex


def is_run_id(value: object) -> bool:
    """Only ids of this exact shape ever become paths (no traversal)."""
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))  # fullmatch: "$" allows a "\n"


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch: Keras' epoch logs plus what the callbacks did with them."""

    epoch: int  # 1-based
    logs: dict[str, float]
    seconds: float  # wall time of the epoch, validation included
    saved: bool = False  # the checkpoint was written at this epoch
    es_wait: int | None = None  # EarlyStopping's wait counter after this epoch
    es_best_epoch: int | None = None  # 1-based

    def to_json(self) -> str:
        logs = {k: _json_float(v) for k, v in self.logs.items()}
        return json.dumps(
            {
                "epoch": self.epoch,
                "logs": logs,
                "seconds": round(self.seconds, 4),
                "saved": self.saved,
                "es_wait": self.es_wait,
                "es_best_epoch": self.es_best_epoch,
            }
        )

    @classmethod
    def from_json(cls, line: str) -> EpochRecord:
        d = json.loads(line)
        logs = {k: (math.nan if v is None else float(v)) for k, v in d["logs"].items()}
        return cls(d["epoch"], logs, d["seconds"], d["saved"], d["es_wait"], d["es_best_epoch"])


def _json_float(v: float) -> float | str | None:
    # JSON has no NaN/inf; keep them readable and round-trippable.
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


@dataclass(frozen=True)
class RunSnapshot:
    """A consistent copy of a run at one moment; everything a page shows comes from here."""

    id: str
    config: RunConfig
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    epoch: int = 0  # epochs finished
    batch: int = 0  # batches done in the epoch in flight
    steps_per_epoch: int | None = None
    history: tuple[EpochRecord, ...] = ()
    batch_points: tuple[tuple[float, float, float | None], ...] = ()  # (epoch position, loss, metric)
    log_lines: tuple[str, ...] = ()
    monitor: str | None = None
    best_epoch: int | None = None
    best_value: float | None = None
    checkpoint_path: str | None = None
    checkpoint_epoch: int | None = None
    stopped_epoch: int | None = None  # 1-based epoch at which EarlyStopping stopped
    stop_reason: str | None = None
    message: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    queue_position: int | None = None
    version: int = 0

    @property
    def max_epochs(self) -> int:
        return self.config.fit.max_epochs

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def stop_label(self) -> str | None:
        return STOP_REASONS.get(self.stop_reason or "", self.stop_reason)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    def history_frame(self) -> pd.DataFrame:
        """One row per finished epoch: ``epoch`` (1-based), every logged metric, ``seconds``."""
        rows = [{"epoch": r.epoch, **r.logs, "seconds": r.seconds} for r in self.history]
        return pd.DataFrame(rows, columns=_history_columns(self.history))

    def history_csv(self) -> bytes:
        return self.history_frame().to_csv(index=False).encode()


def _history_columns(history: tuple[EpochRecord, ...]) -> list[str]:
    keys: dict[str, None] = {}
    for r in history:
        keys.update(dict.fromkeys(r.logs))
    return ["epoch", *keys, "seconds"]


class Run:
    """The live state of one run, written by the training thread, read through ``snapshot()``.

    Every mutation goes through the lock and, where it must survive a crash, straight to the store.
    """

    def __init__(self, run_id: str, config: RunConfig, store: RunStore, created_at: float | None = None):
        self.id = run_id
        self.config = config
        self.store = store
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()  # guards the in-memory state
        self._write_lock = threading.Lock()  # keeps index writes in the order of the updates
        self._snap = RunSnapshot(
            id=run_id, config=config, status=QUEUED, created_at=created_at or time.time()
        )
        self._history: list[EpochRecord] = []
        self._log: list[str] = []
        self._batch_points: list[tuple[float, float, float | None]] = []
        self._batch_stride = 1  # keep every n-th point once the bound is reached
        self._batch_seen = 0
        self._progress: tuple[int, int, int | None] = (0, 0, None)  # (epochs done, batch, steps)
        self.resume_epoch: int | None = None  # set when this run continues from a resume point
        # False for the copy a server keeps of a run its worker process trains: the worker writes.
        self.persist = True

    @classmethod
    def from_snapshot(cls, snap: RunSnapshot, store: RunStore, **kwargs: Any) -> Run:
        """The same run in another process (the training worker), from the state it was sent."""
        run = cls(snap.id, snap.config, store, created_at=snap.created_at, **kwargs)
        run._history = list(snap.history)
        run._log = list(snap.log_lines)
        run._progress = (snap.epoch, 0, snap.steps_per_epoch)
        run._snap = replace(snap, history=(), log_lines=(), batch_points=(), queue_position=None)
        return run

    @classmethod
    def continuing(cls, snap: RunSnapshot, store: RunStore, epoch: int, summary: dict[str, Any]) -> Run:
        """A stopped or interrupted run, queued again to continue after ``epoch``.

        Epochs recorded after the resume point are dropped from the history: they are trained again
        (to the same numbers) from the saved state.
        """
        known = {k: summary.get(k) for k in ("monitor", "best_epoch", "best_value", "checkpoint_epoch")}
        kept = tuple(r for r in snap.history if r.epoch <= epoch)
        queued = replace(
            snap,
            status=QUEUED,
            finished_at=None,
            stop_reason=None,
            message=None,
            stopped_epoch=None,
            test_metrics={},
            history=kept,
            epoch=epoch,
            batch=0,
            **known,
        )
        run = cls.from_snapshot(queued, store)
        run.resume_epoch = epoch
        store.rewrite_history(snap.id, list(kept))
        return run

    @property
    def dir(self) -> Path:
        return self.store.run_dir(self.id)

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            epoch, batch, steps = self._progress
            return replace(
                self._snap,
                epoch=epoch,
                batch=batch,
                steps_per_epoch=steps,
                history=tuple(self._history),
                log_lines=tuple(self._log),
                batch_points=tuple(self._batch_points),
            )

    @property
    def status(self) -> str:
        return self._snap.status

    def _update(self, persist: bool = True, expect: tuple[str, ...] | None = None, **changes: Any) -> bool:
        with self._write_lock:
            with self._lock:
                if expect is not None and self._snap.status not in expect:
                    return False
                self._snap = replace(self._snap, version=self._snap.version + 1, **changes)
                snap, epochs_run = self._snap, len(self._history)
            if persist and self.persist:
                try:
                    self.store.write_index(snap, epochs_run=epochs_run)
                except sqlite3.Error:
                    if snap.is_live:
                        raise  # a run that cannot record itself must stop (and fail)
                    # Ending a run on a full disk: the page still gets the outcome from memory.
        return True

    # -- written by the training thread -------------------------------------------------------
    def set_status(self, status: str, expect: tuple[str, ...] | None = None, **changes: Any) -> bool:
        """Moves to ``status``; with ``expect``, only from one of those (False if it was not)."""
        if status == RUNNING and self._snap.started_at is None:
            changes.setdefault("started_at", time.time())
        if status not in LIVE_STATUSES:
            changes.setdefault("finished_at", time.time())
        return self._update(expect=expect, status=status, **changes)

    def set_fields(self, **changes: Any) -> None:
        self._update(**changes)

    def set_progress(self, epoch: int, batch: int, steps: int | None) -> None:
        """Per batch, so as cheap as it gets: one tuple assignment (atomic under the GIL)."""
        self._progress = (epoch, batch, steps)

    def add_batch_point(self, position: float, loss: float, metric: float | None) -> None:
        """Keep at most MAX_BATCH_POINTS by halving the density whenever the bound is hit."""
        with self._lock:
            self._batch_seen += 1
            if self._batch_seen % self._batch_stride:
                return
            self._batch_points.append((position, loss, metric))
            if len(self._batch_points) >= MAX_BATCH_POINTS:
                self._batch_points = self._batch_points[::2]
                self._batch_stride *= 2

    def add_epoch(self, record: EpochRecord, **changes: Any) -> None:
        if self.persist:
            self.store.append_history(self.id, record)
        with self._lock:
            self._history.append(record)
            self._progress = (record.epoch, 0, self._progress[2])
        self._update(**changes)

    def log(self, line: str) -> None:
        """Raises when the log file cannot be written, but the console (in memory) still gets the line."""
        try:
            if self.persist:
                self.store.append_log(self.id, line)
        finally:
            with self._lock:
                self._log.append(line)
                self._snap = replace(self._snap, version=self._snap.version + 1)


# ------------------------------------------------------------------------------------------------
# The store: SQLite index + one folder per run.

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    dataset TEXT,
    model TEXT,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    epochs_run INTEGER DEFAULT 0,
    max_epochs INTEGER,
    monitor TEXT,
    best_epoch INTEGER,
    best_value REAL,
    checkpoint_path TEXT,
    checkpoint_epoch INTEGER,
    stopped_epoch INTEGER,
    stop_reason TEXT,
    message TEXT,
    test_metrics TEXT,
    owner_pid INTEGER,
    stop_requested INTEGER DEFAULT 0,
    owner TEXT
)
"""
_INDEX_FIELDS = (
    "status",
    "started_at",
    "finished_at",
    "monitor",
    "best_epoch",
    "best_value",
    "checkpoint_path",
    "checkpoint_epoch",
    "stopped_epoch",
    "stop_reason",
    "message",
)


class RunStore:
    """Thread-safe and multi-process-safe (SQLite WAL); a run folder is written by one process."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._db_path = self.root / "runs.sqlite"
        self._lock = threading.Lock()
        # One connection, shared under the lock: opening one per write costs more than the write.
        # WAL + synchronous=NORMAL: a commit survives the process being killed (the OS has it);
        # only a power loss can take the last commits, and checkpoints are fsynced on their own.
        self._db = sqlite3.connect(self._db_path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._connect() as db:
            db.execute(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            # Indexes made by earlier versions: add what they lack.
            if "stop_requested" not in columns:
                db.execute("ALTER TABLE runs ADD COLUMN stop_requested INTEGER DEFAULT 0")
            if "owner" not in columns:
                db.execute("ALTER TABLE runs ADD COLUMN owner TEXT")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def run_dir(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise ValueError(f"Not a run id: {run_id!r}")
        return self.root / run_id

    # -- writing ----------------------------------------------------------------------------------
    def create(self, run_id: str, config: RunConfig, created_at: float) -> None:
        d = self.run_dir(run_id)
        d.mkdir(parents=True, exist_ok=False)
        try:
            _atomic_write(d / "config.json", config.to_json().encode())
            with self._connect() as db:
                db.execute(
                    "INSERT INTO runs (id, name, status, config, dataset, model, created_at, max_epochs,"
                    " owner_pid, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        config.name,
                        QUEUED,
                        config.to_json(),
                        config.data.name,
                        config.model.name,
                        created_at,
                        config.fit.max_epochs,
                        os.getpid(),
                        process_identity(),
                    ),
                )
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)  # no folder without its index row (it would never show)
            raise

    def write_index(self, snap: RunSnapshot, epochs_run: int) -> None:
        values = [getattr(snap, f) for f in _INDEX_FIELDS]
        values = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
        with self._connect() as db:
            db.execute(
                f"UPDATE runs SET {', '.join(f + ' = ?' for f in _INDEX_FIELDS)}, epochs_run = ?,"
                " test_metrics = ? WHERE id = ?",
                (*values, epochs_run, json.dumps(snap.test_metrics), snap.id),
            )

    def append_history(self, run_id: str, record: EpochRecord) -> None:
        # No fsync: the page cache outlives a killed process, and an fsync per epoch costs more
        # than the epoch's whole bookkeeping (design: streaming must cost nothing measurable).
        _append_line(self.run_dir(run_id) / "history.jsonl", record.to_json())

    def rewrite_history(self, run_id: str, records: list[EpochRecord]) -> None:
        _atomic_write(
            self.run_dir(run_id) / "history.jsonl", "".join(r.to_json() + "\n" for r in records).encode()
        )

    def request_stop(self, run_id: str) -> bool:
        """Asks whichever process trains ``run_id`` to stop it (it checks about once a second)."""
        with self._connect() as db:
            live = ", ".join("?" * len(LIVE_STATUSES))
            cur = db.execute(
                f"UPDATE runs SET stop_requested = 1 WHERE id = ? AND status IN ({live})",
                (run_id, *LIVE_STATUSES),
            )
            return cur.rowcount == 1

    def stop_requested(self, run_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def claim(self, run_id: str, from_statuses: tuple[str, ...]) -> bool:
        """Queues a finished run again for this process; False if it is not in ``from_statuses``.

        One UPDATE with the status in its WHERE clause: two sessions (or two servers) resuming the
        same run at once cannot both win.
        """
        with self._connect() as db:
            cur = db.execute(
                "UPDATE runs SET status = ?, owner_pid = ?, owner = ?, finished_at = NULL,"
                " stop_reason = NULL, stop_requested = 0, message = NULL, stopped_epoch = NULL,"
                f" test_metrics = '{{}}' WHERE id = ? AND status IN ({', '.join('?' * len(from_statuses))})",
                (QUEUED, os.getpid(), process_identity(), run_id, *from_statuses),
            )
            return cur.rowcount == 1

    def append_log(self, run_id: str, line: str) -> None:
        _append_line(self.run_dir(run_id) / "log.txt", line)

    def rename(self, run_id: str, name: str) -> None:
        with self._connect() as db:
            row = db.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(run_id)
            config = load_stored(row[0])
            config.name = name
            db.execute("UPDATE runs SET name = ?, config = ? WHERE id = ?", (name, config.to_json(), run_id))

    def delete(self, run_id: str) -> None:
        d = self.run_dir(run_id)
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(d, ignore_errors=True)

    def mark_interrupted(self) -> list[str]:
        """Runs left live by a process that is gone: interrupted. Called when a process opens the store."""
        with self._connect() as db:
            live = ", ".join("?" * len(LIVE_STATUSES))
            rows = db.execute(
                f"SELECT id, owner_pid, owner FROM runs WHERE status IN ({live})", LIVE_STATUSES
            ).fetchall()
            dead = [rid for rid, pid, owner in rows if not _owner_alive(pid, owner)]
            for rid in dead:
                db.execute(
                    "UPDATE runs SET status = ?, stop_reason = ?, message = ?, finished_at = ? WHERE id = ?",
                    (
                        INTERRUPTED,
                        "interrupted",
                        "The process training this run ended before it finished (server restart or crash). "
                        "Every finished epoch and the best checkpoint so far are kept.",
                        time.time(),
                        rid,
                    ),
                )
        return dead

    # -- reading ----------------------------------------------------------------------------------
    def list(self) -> pd.DataFrame:
        """The index, newest first."""
        with self._connect() as db:
            frame = pd.read_sql_query("SELECT * FROM runs ORDER BY created_at DESC", db)
        return frame.drop(columns=["config"])

    def ids(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT id FROM runs ORDER BY created_at DESC")]

    def exists(self, run_id: str) -> bool:
        if not is_run_id(run_id):
            return False
        with self._connect() as db:
            return db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    def load(self, run_id: str) -> RunSnapshot:
        """A snapshot rebuilt from disk (runs of other processes, or of earlier ones)."""
        if not is_run_id(run_id):
            raise KeyError(run_id)
        with self._connect() as db:
            cur = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
            names = [c[0] for c in cur.description]
            found = cur.fetchone()
        if found is None:
            raise KeyError(run_id)
        row = dict(zip(names, found))
        d = self.run_dir(run_id)
        history = tuple(read_history(d / "history.jsonl"))
        # The index lags history.jsonl by an epoch when its write failed after the epoch's checkpoint was
        # saved (a full disk): the last epoch history.jsonl records as saved is the checkpoint's.
        saved = [r.epoch for r in history if r.saved]
        checkpoint_epoch = row["checkpoint_epoch"]
        if saved and (checkpoint_epoch or 0) < saved[-1]:
            checkpoint_epoch = saved[-1]
        log_path = d / "log.txt"
        log_lines = tuple(log_path.read_text(errors="replace").splitlines()) if log_path.exists() else ()
        return RunSnapshot(
            id=run_id,
            config=load_stored(row["config"]),  # earlier versions' data.path is migrated
            status=row["status"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            epoch=history[-1].epoch if history else 0,
            history=history,
            log_lines=log_lines,
            monitor=row["monitor"],
            best_epoch=row["best_epoch"],
            best_value=row["best_value"],
            # Rebuilt from this store's folder, not the stored absolute path: the folder may have moved.
            checkpoint_path=str(d / Path(row["checkpoint_path"]).name) if row["checkpoint_path"] else None,
            checkpoint_epoch=checkpoint_epoch,
            stopped_epoch=row["stopped_epoch"],
            stop_reason=row["stop_reason"],
            message=row["message"],
            test_metrics=json.loads(row["test_metrics"] or "{}"),
        )


def read_history(path: Path) -> list[EpochRecord]:
    """Every complete line; a line torn by a crash mid-write is dropped, not fatal."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(EpochRecord.from_json(line))
        except (ValueError, KeyError, TypeError):
            continue
    return records


def _append_line(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line.replace("\n", " ") + "\n")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def process_identity(pid: int | None = None) -> str:
    """A process, told apart from a later one that got the same pid (a container restart often does).

    ``<boot id>/<pid>/<start time in clock ticks since boot>`` on Linux; just the pid elsewhere.
    """
    pid = pid or os.getpid()
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        with open(f"/proc/{pid}/stat") as fh:
            start = fh.read().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        return str(pid)
    return f"{boot}/{pid}/{start}"


def _owner_alive(pid: int | None, owner: str | None) -> bool:
    """Is the process that owns a live run still the one that started it? Ours counts as alive."""
    if owner is not None:
        if owner == process_identity():
            return True
        return _pid_alive(pid) and pid is not None and process_identity(pid) == owner
    return pid == os.getpid() or _pid_alive(pid)  # rows written before owners were recorded


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped) is not training anything.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


# ------------------------------------------------------------------------------------------------
# What a finished run offers for download (read only when the user clicks).


def checkpoint_file_name(snap: RunSnapshot) -> str:
    """``<run name>-best-epoch<N><ext>``: says what the file is once it sits in a downloads folder."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", snap.config.name).strip("-") or "run"
    kind = "best" if snap.config.checkpoint.save_best_only else "last"
    epoch = f"-{kind}-epoch{snap.checkpoint_epoch}" if snap.checkpoint_epoch else ""
    return f"{safe}{epoch}{snap.config.checkpoint.format}"


def read_checkpoint(snap: RunSnapshot) -> bytes:
    if not snap.checkpoint_path:
        raise FileNotFoundError("This run kept no checkpoint.")
    return Path(snap.checkpoint_path).read_bytes()


def has_checkpoint(snap: RunSnapshot) -> bool:
    return bool(snap.checkpoint_path) and Path(snap.checkpoint_path).is_file()
