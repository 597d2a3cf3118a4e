"""Runs: the live, thread-safe state of a run, its immutable snapshots, and the store on disk.

The training thread writes into a ``Run``; pages read ``RunSnapshot`` copies, never the live
object, so a reader can never see half an update. Everything that must survive a crash goes to
disk as it happens: an SQLite index row (status, best, timings) and one folder per run holding
``config.json``, ``history.jsonl`` (one line per finished epoch), ``log.txt`` and the checkpoint.
Epochs here are 1-based, as Keras prints them ("Epoch 3/200").
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from core.config import ConfigError, RunConfig, load_stored, loads_limited, run_name_problem
from core.paths import RUNS_DIR_ENV, default_runs_dir  # noqa: F401 - part of the store's API
from core.store.prefix import Prefix
from core.store.tail import LineTail

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
    "stopped_in_script": "stopped by the script",
    "imported": "imported (how it stopped is not recorded)",
    "nan_loss": "loss became NaN",
    "error": "error",
    "interrupted": "interrupted (server stopped)",
    "exception": "the script's fit raised (an interrupt or an error)",
}


def stop_label(reason: str | None) -> str | None:
    """How a run ended, in words (``rule:<name>``: one of the config's stopping rules ended it)."""
    if not reason:
        return reason
    if reason.startswith("rule:"):
        return f"stopping rule {reason.removeprefix('rule:')}"
    return STOP_REASONS.get(reason, reason)


MAX_BATCH_POINTS = 2000  # bound on batch-level points kept per run, whatever its length


def new_run_id() -> str:
    return uuid.uuid4().hex


def is_run_id(value: object) -> bool:
    """Only ids of this exact shape ever become paths (no traversal)."""
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))  # fullmatch: "$" allows a "\n"


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One finished epoch: Keras' epoch logs plus what the callbacks did with them."""

    epoch: int  # 1-based
    logs: dict[str, float]
    seconds: float  # wall time of the epoch, validation included
    saved: bool = False  # the checkpoint was written at this epoch
    es_wait: int | None = None  # EarlyStopping's wait counter after this epoch
    es_best_epoch: int | None = None  # 1-based
    # What the training process used during the epoch (None: not measured, e.g. a run recorded before).
    cpu_seconds: float | None = None  # its CPU time over all its threads (above `seconds`: several cores)
    rss_mb: float | None = None  # its resident memory at the epoch's end
    gpu_mb: float | None = None  # memory in use on its first GPU, when it has one

    def to_json(self) -> str:
        logs = {k: _json_float(v) for k, v in self.logs.items()}
        out = {
            "epoch": self.epoch,
            "logs": logs,
            "seconds": round(self.seconds, 4),
            "saved": self.saved,
            "es_wait": self.es_wait,
            "es_best_epoch": self.es_best_epoch,
        }
        for key in ("cpu_seconds", "rss_mb", "gpu_mb"):
            if (value := getattr(self, key)) is not None:
                out[key] = round(value, 4)
        return json.dumps(out)

    @classmethod
    def from_json(cls, line: str) -> EpochRecord:
        """ValueError for anything but a line we wrote: the file may be damaged or crafted."""
        d = json.loads(line)
        if not isinstance(d, dict) or not isinstance(d.get("logs"), dict):
            raise ValueError("not an epoch record")
        logs = {}
        for k, v in d["logs"].items():
            if v is not None and not _is_number(v):
                raise ValueError(f"logs.{k} is not a number")
            logs[k] = math.nan if v is None else float(v)
        epoch, seconds, saved = d.get("epoch"), d.get("seconds"), d.get("saved", False)
        if not _is_int(epoch) or epoch < 1 or not _is_number(seconds) or not isinstance(saved, bool):
            raise ValueError("epoch, seconds or saved has the wrong type")
        es_wait, es_best = d.get("es_wait"), d.get("es_best_epoch")
        if not all(v is None or _is_int(v) for v in (es_wait, es_best)):
            raise ValueError("es_wait or es_best_epoch is not an integer")
        usage = [d.get(key) for key in ("cpu_seconds", "rss_mb", "gpu_mb")]
        if not all(v is None or (_is_number(v) and math.isfinite(v) and v >= 0) for v in usage):
            raise ValueError("cpu_seconds, rss_mb or gpu_mb is not a non-negative number")
        return cls(
            epoch,
            logs,
            float(seconds),
            saved,
            es_wait,
            es_best,
            *(None if v is None else float(v) for v in usage),
        )


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


AUTO_GROUP_LOG = "steps_per_execution auto: "  # how the engine logs what "auto" chose
_AUTO_GROUP_RE = re.compile(r"^steps_per_execution auto: (\d+) ")


def recorded_steps_per_execution(log_lines: Iterable[str]) -> int | None:
    """The group size "auto" chose for a run, from its log (None before it was chosen)."""
    for line in log_lines:
        found = _AUTO_GROUP_RE.match(line)
        if found is not None:
            return int(found.group(1))
    return None


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


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
    history: Sequence[EpochRecord] = ()  # a tuple, or a Prefix of a live run's growing list
    batch_points: tuple[tuple[float, float, float | None], ...] = ()  # (epoch position, loss, metric)
    log_lines: Sequence[str] = ()
    monitor: str | None = None
    best_epoch: int | None = None
    best_value: float | None = None
    checkpoint_path: str | None = None
    checkpoint_epoch: int | None = None
    stopped_epoch: int | None = None  # 1-based epoch at which EarlyStopping or a stopping rule stopped
    stop_reason: str | None = None
    message: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    queue_position: int | None = None
    version: int = 0
    damaged: str | None = None  # why the run's config could not be read; ``config`` is then a stand-in
    # (test batches done, of how many) while the kept checkpoint is evaluated on the test split; in the
    # memory of the processes that train or show the run only (it lasts a second or so)
    evaluation: tuple[int, int | None] | None = None

    @property
    def max_epochs(self) -> int:
        return self.config.fit.max_epochs

    @property
    def steps_per_execution(self) -> int | None:
        """Batches per train step: the config's count, or the one "auto" chose (the run's log records it;
        None until it has). A resumed run and the exported script use this number."""
        k = self.config.fit.steps_per_execution
        return k if isinstance(k, int) else recorded_steps_per_execution(self.log_lines)

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def fit_ended(self) -> bool:
        """Training is over and how it ended is known (``stop_reason``, ``message``), but the run is
        still live: the kept checkpoint is being evaluated on the test split. Only the user's stop
        is recorded this early, so the page says "stopped" at once."""
        return self.status == STOPPING and self.stop_reason is not None

    @property
    def stop_label(self) -> str | None:
        return stop_label(self.stop_reason)

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
        """The history as CSV; a column name a spreadsheet would run as a formula (a crafted
        history.jsonl key such as ``=HYPERLINK(...)``) gets a leading ``'``, as OWASP advises."""
        frame = self.history_frame()
        frame.columns = ["'" + c if c[:1] in ("=", "+", "-", "@", "\t", "\r") else c for c in frame.columns]
        return frame.to_csv(index=False).encode()


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
        self._history_copy: Sequence[EpochRecord] = ()  # what snapshot() handed out last
        self._log_copy: Sequence[str] = ()
        self._batch_points: list[tuple[float, float, float | None]] = []
        self._batch_stride = 1  # keep every n-th point once the bound is reached
        self._batch_seen = 0
        self._progress: tuple[int, int, int | None] = (0, 0, None)  # (epochs done, batch, steps)
        self._evaluation: tuple[int, int | None] | None = None  # (test batches done, steps)
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
        run._snap = replace(
            snap, history=(), log_lines=(), batch_points=(), queue_position=None, evaluation=None
        )
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
            # The lists only grow (a resume makes a new Run): a snapshot holds a prefix of each, no copy
            # (a copy is O(epochs): 100,000 cost 1 ms).
            if len(self._history_copy) != len(self._history):
                self._history_copy = Prefix(self._history)
            if len(self._log_copy) != len(self._log):
                self._log_copy = Prefix(self._log)
            return replace(
                self._snap,
                epoch=epoch,
                batch=batch,
                steps_per_epoch=steps,
                history=self._history_copy,
                log_lines=self._log_copy,
                batch_points=tuple(self._batch_points),
                evaluation=self._evaluation if self._snap.status in LIVE_STATUSES else None,
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
                except (sqlite3.Error, OSError):
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

    def apply_changes(self, changes: dict[str, Any]) -> None:
        """Changes the process that trains this run sent (the server's copy of a worker's run)."""
        self._update(**changes)

    def set_fields(self, **changes: Any) -> None:
        self._update(**changes)

    def set_progress(self, epoch: int, batch: int, steps: int | None) -> None:
        """Per batch, so as cheap as it gets: one tuple assignment (atomic under the GIL)."""
        self._progress = (epoch, batch, steps)

    def set_evaluation(self, batch: int, steps: int | None) -> None:
        """Per test batch of the final evaluation: one tuple assignment, as ``set_progress``."""
        self._evaluation = (batch, steps)

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
# The store: one folder per run (the truth) and an SQLite index of them (a cache, rebuilt when lost).

INDEX_NAME = "runs.sqlite"
SUMMARY_NAME = "summary.json"
INDEX_TIMEOUT_ENV = "ESLAB_INDEX_TIMEOUT_S"
MAX_LINE_BYTES = 1_000_000  # a longer line of history.jsonl or log.txt is skipped as damaged
MAX_CONFIG_BYTES = 1_000_000
_CHECKPOINT_RE = re.compile(r"^checkpoint(\.keras|\.h5|\.weights\.h5)$")
_CHECKPOINT_NAMES = ("checkpoint.keras", "checkpoint.h5", "checkpoint.weights.h5")

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
    owner TEXT,
    progress TEXT
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
# The columns of the first index this app wrote: a "runs" table without them is not ours.
_REQUIRED_COLUMNS = frozenset(
    ("id", "name", "status", "config", "dataset", "model", "created_at", "started_at", "finished_at",
     "epochs_run", "max_epochs", "monitor", "best_epoch", "best_value", "checkpoint_path",
     "checkpoint_epoch", "stopped_epoch", "stop_reason", "message", "test_metrics", "owner_pid")
)  # fmt: skip


def index_timeout() -> float:
    """Seconds an index write waits for a lock another program holds (``ESLAB_INDEX_TIMEOUT_S``)."""
    try:
        value = float(os.environ.get(INDEX_TIMEOUT_ENV, "30"))
    except ValueError:
        return 30.0
    return value if math.isfinite(value) and value >= 0 else 30.0


class RunStore:
    """Thread-safe and multi-process-safe (SQLite WAL); a run folder is written by one process.

    Every write of a run's index row also writes its folder's ``summary.json``, so the folders alone
    describe every run. On opening, and whenever ``runs.sqlite`` turns out deleted or replaced, an index
    that is damaged or not ours is set aside (``runs.sqlite.corrupt-<time>``, never deleted) and every
    run folder it lacks is put back into it.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._db_path = self.root / INDEX_NAME
        self.timeout = index_timeout()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the index we opened
        self._closed = False
        self.set_aside: list[Path] = []  # bad index files this store moved away
        self.recovered: list[str] = []  # runs it put back into the index from their folders
        self._followed: dict[str, _FollowedRun] = {}  # runs whose files were read, newest last
        self._followed_lock = threading.Lock()
        with self._lock:
            self._open()

    # -- opening, checking, rebuilding --------------------------------------------------------------
    def _open(self) -> None:
        """Under ``self._lock``, and a file lock across processes: one at a time sets aside and rebuilds."""
        with _file_lock(self.root / f".{INDEX_NAME}.lock"):
            self._set_aside_if_bad()
            # One connection, shared under the lock: opening one per write costs more than the write.
            # WAL + synchronous=NORMAL: a commit survives the process being killed (the OS has it);
            # only a power loss can take the last commits, and checkpoints are fsynced on their own.
            db = sqlite3.connect(self._db_path, timeout=self.timeout, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                with db:
                    _migrate(db)
                st = os.stat(self._db_path)
                self._identity = (st.st_dev, st.st_ino)
                self._reconcile(db)
            except BaseException:
                db.close()
                raise
            self._db = db

    def _set_aside_if_bad(self) -> None:
        path = self._db_path
        companions = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        if not path.exists():
            # Left by a deleted index: a new one must not pick them up (SQLite would share the old
            # write-ahead log's index with it, and fail with "disk I/O error").
            for p in companions:
                _move_aside(p, "stale", self.set_aside)
            return
        if index_problem(path, self.timeout) is not None:
            for p in (path, *companions):
                _move_aside(p, "corrupt", self.set_aside)

    def _reconcile(self, db: sqlite3.Connection) -> None:
        """Puts back every run folder the index lacks. INSERT OR IGNORE: a run created meanwhile wins."""
        try:
            with db:
                known = {r[0] for r in db.execute("SELECT id FROM runs")}
                for run_id in _run_folder_ids(self.root):
                    if run_id not in known and self._insert_from_folder(db, run_id):
                        self.recovered.append(run_id)
        except sqlite3.OperationalError:
            pass  # a read-only or locked index: readable as it is; the next open tries again

    def _insert_from_folder(self, db: sqlite3.Connection, run_id: str) -> bool:
        row = row_from_folder(self.root / run_id)
        if row is None:
            return False  # no config.json (yet): create() has not committed it
        cols = ", ".join(row)
        cur = db.execute(
            f"INSERT OR IGNORE INTO runs ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
        return cur.rowcount == 1

    def _check_index_file(self) -> None:
        """An index deleted or replaced under us (one stat, a microsecond) is reopened, and rebuilt."""
        try:
            st = os.stat(self._db_path)
            identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            identity = None
        if identity != self._identity or self._db is None:
            old, self._db = self._db, None
            if old is not None:
                old.close()  # SQLite neither checkpoints nor unlinks the WAL of a moved file on close
            self._open()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed RunStore.")
            self._check_index_file()
            with self._db:
                yield self._db

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()

    def run_dir(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise ValueError(f"Not a run id: {run_id!r}")
        return self.root / run_id

    # -- summary.json ---------------------------------------------------------------------------------
    def _sync_summary(self, db: sqlite3.Connection, run_id: str) -> OSError | None:
        """Writes the row as the run's summary.json, inside the row's transaction (so in commit order)."""
        cur = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
        found = cur.fetchone()
        if found is None:
            return None
        row = dict(zip([c[0] for c in cur.description], found))
        return self._write_summary(run_id, summary_of(row))

    def _write_summary(self, run_id: str, summary: dict[str, Any]) -> OSError | None:
        # No fsync: ~50 µs instead of milliseconds; a killed process loses nothing (the page cache has
        # it), and a file torn by a power loss is skipped: the run is then inferred from its other files.
        try:
            _atomic_write(self.run_dir(run_id) / SUMMARY_NAME, json.dumps(summary).encode(), fsync=False)
        except OSError as exc:
            return exc
        return None

    # -- writing ----------------------------------------------------------------------------------
    def create(self, run_id: str, config: RunConfig, created_at: float) -> None:
        """config.json appears only after its row is committed: a folder with one always has a row or
        is a run to recover (``_reconcile`` in another process never races this)."""
        d = self.run_dir(run_id)
        d.mkdir(parents=True, exist_ok=False)
        staged = d / ".config.json.staged"
        try:
            _atomic_write(staged, config.to_json().encode())
            with self._connect() as db:
                db.execute(
                    "INSERT INTO runs (id, name, status, config, dataset, model, created_at, max_epochs,"
                    " owner_pid, owner, test_metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
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
                error = self._sync_summary(db, run_id)
                if error is not None:
                    raise error  # rolls the row back
            os.replace(staged, d / "config.json")
        except BaseException:
            self._forget(run_id)
            shutil.rmtree(d, ignore_errors=True)  # no folder without its index row (it would never show)
            raise

    def _forget(self, run_id: str) -> None:
        try:
            with self._connect() as db:
                db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        except sqlite3.Error:
            pass

    def write_index(self, snap: RunSnapshot, epochs_run: int) -> None:
        """The row and summary.json; raises (after committing the row) if summary.json cannot be written."""
        values = [getattr(snap, f) for f in _INDEX_FIELDS]
        values = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
        update = (
            f"UPDATE runs SET {', '.join(f + ' = ?' for f in _INDEX_FIELDS)}, epochs_run = ?,"
            " test_metrics = ? WHERE id = ?"
        )
        params = (*values, epochs_run, json.dumps(snap.test_metrics), snap.id)
        try:
            with self._connect() as db:
                if db.execute(update, params).rowcount == 0 and self._insert_from_folder(db, snap.id):
                    db.execute(update, params)  # its row was lost (an index rebuilt without it)
                error = self._sync_summary(db, snap.id)
        except sqlite3.Error:
            if not snap.is_live:  # how the run ended reaches its folder at least (see _adopt_endings)
                self._write_summary(snap.id, _summary_of_snapshot(snap, epochs_run))
            raise
        if error is not None:
            raise error

    def append_history(self, run_id: str, record: EpochRecord) -> None:
        # No fsync: the page cache outlives a killed process, and an fsync per epoch costs more
        # than the epoch's whole bookkeeping (streaming must cost nothing measurable).
        _append_line(self.run_dir(run_id) / "history.jsonl", record.to_json())

    def rewrite_history(self, run_id: str, records: list[EpochRecord]) -> None:
        _atomic_write(
            self.run_dir(run_id) / "history.jsonl", "".join(r.to_json() + "\n" for r in records).encode()
        )

    def write_progress(self, run_id: str, batch: int, steps: int | None) -> None:
        """The batch in flight of a run trained by another process (a user's script), for its live view;
        its writer calls this at most a few times a second."""
        with self._connect() as db:
            db.execute("UPDATE runs SET progress = ? WHERE id = ?", (json.dumps([batch, steps]), run_id))

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
            if cur.rowcount == 1:
                self._sync_summary(db, run_id)  # best effort: the run's next write tries again
            return cur.rowcount == 1

    def append_log(self, run_id: str, line: str) -> None:
        _append_line(self.run_dir(run_id) / "log.txt", line)

    def rename(self, run_id: str, name: str) -> None:
        """ValueError("name: …") for a name that is not one line of at most 200 printable characters."""
        problem = name_problem(name)
        if problem:
            raise ValueError(f"name: {problem}")
        with self._connect() as db:
            row = db.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(run_id)
            config = _parse_config(row[0])
            if isinstance(config, RunConfig):
                config.name = name
                db.execute(
                    "UPDATE runs SET name = ?, config = ? WHERE id = ?", (name, config.to_json(), run_id)
                )
            else:  # a damaged config keeps its text; the name column still changes
                db.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))
            self._sync_summary(db, run_id)

    def delete(self, run_id: str) -> None:
        """The folder is moved out of the run-id namespace first, so no reconcile can bring it back."""
        d = self.run_dir(run_id)
        doomed = self.root / f".deleting-{run_id}-{uuid.uuid4().hex[:8]}"
        with self._followed_lock:
            self._followed.pop(run_id, None)
        try:
            os.replace(d, doomed)
        except OSError:
            doomed = d
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(doomed, ignore_errors=True)

    def mark_interrupted(self) -> list[str]:
        """Runs left live by a process that is gone: interrupted. Called when a process opens the store."""
        with self._connect() as db:
            live = ", ".join("?" * len(LIVE_STATUSES))
            rows = db.execute(
                f"SELECT id, owner_pid, owner FROM runs WHERE status IN ({live})", LIVE_STATUSES
            ).fetchall()
            ended = self._adopt_endings(db, [r[0] for r in rows])
            dead = [rid for rid, pid, owner in rows if rid not in ended and not _owner_alive(pid, owner)]
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
                self._sync_summary(db, rid)
        return dead

    def _adopt_endings(self, db: sqlite3.Connection, live_ids: list[str]) -> set[str]:
        """Live rows whose summary.json says the run ended: the ending's index write failed (a locked
        or full index) and only the folder got it. The folder is the truth."""
        ended = set()
        for rid in live_ids:
            summary = _read_summary(self.root / rid) if is_run_id(rid) else None
            if not summary or summary.get("status") in LIVE_STATUSES:
                continue
            fields = {k: summary[k] for k in (*_INDEX_FIELDS, "epochs_run") if k != "checkpoint_path"}
            fields["test_metrics"] = json.dumps(summary["test_metrics"])
            db.execute(
                f"UPDATE runs SET {', '.join(k + ' = ?' for k in fields)} WHERE id = ?",
                (*fields.values(), rid),
            )
            ended.add(rid)
        return ended

    # -- reading ----------------------------------------------------------------------------------
    def list(self) -> pd.DataFrame:
        """The index, newest first; instead of each config, its upload's ``file_name`` (for display)."""
        with self._connect() as db:
            frame = pd.read_sql_query("SELECT * FROM runs ORDER BY created_at DESC", db)
        frame["file_name"] = [_file_name_of(raw) for raw in frame["config"]]
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
        """A snapshot rebuilt from disk (runs of other processes, or of earlier ones).

        Never raises for damaged files: a run whose config cannot be read opens with ``damaged`` set
        and a message saying so, a stand-in config and its status unchanged. KeyError for no such run.
        """
        if not is_run_id(run_id):
            raise KeyError(run_id)
        with self._connect() as db:
            cur = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
            names = [c[0] for c in cur.description]
            found = cur.fetchone()
        if found is None:
            raise KeyError(run_id)
        d = self.run_dir(run_id)
        raw = dict(zip(names, found))
        row = clean_row(raw)
        batch, steps = _progress(raw.get("progress")) if row["status"] in LIVE_STATUSES else (0, None)
        config, damaged = _config_of(row, d)
        history, last_saved, log_lines = self._follow(run_id).read()
        # The index lags history.jsonl by an epoch when its write failed after the epoch's checkpoint was
        # saved (a full disk): the last epoch history.jsonl records as saved is the checkpoint's.
        checkpoint_epoch = row["checkpoint_epoch"]
        if last_saved is not None and (checkpoint_epoch or 0) < last_saved:
            checkpoint_epoch = last_saved
        checkpoint = row["checkpoint"]
        message = row["message"]
        if damaged:
            message = f"This run's config.json is damaged: {damaged}" + (f" ({message})" if message else "")
        return RunSnapshot(
            id=run_id,
            config=config,
            status=row["status"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            epoch=history[-1].epoch if history else 0,
            batch=batch,
            steps_per_epoch=steps,
            history=history,
            log_lines=log_lines,
            monitor=row["monitor"],
            best_epoch=row["best_epoch"],
            best_value=row["best_value"],
            # Rebuilt from this store's folder, not a stored absolute path: the folder may have moved.
            checkpoint_path=str(d / checkpoint) if checkpoint else None,
            checkpoint_epoch=checkpoint_epoch,
            stopped_epoch=row["stopped_epoch"],
            stop_reason=row["stop_reason"],
            message=message,
            test_metrics=row["test_metrics"],
            damaged=damaged,
        )

    def _follow(self, run_id: str) -> _FollowedRun:
        with self._followed_lock:
            followed = self._followed.pop(run_id, None) or _FollowedRun(self.run_dir(run_id))
            self._followed[run_id] = followed  # the newest last: the oldest go first
            while len(self._followed) > FOLLOWED_RUNS:
                del self._followed[next(iter(self._followed))]
        return followed


FOLLOWED_RUNS = 32  # runs whose history and log a store keeps parsed (a page compares at most 20)


class _FollowedRun:
    """A run's history.jsonl and log.txt as parsed so far: each load parses only the lines added since
    the last one (a live view of a 100,000-epoch run re-parsed 1 s of JSON twice a second)."""

    def __init__(self, run_dir: Path):
        self._lock = threading.Lock()
        self._history_tail = LineTail(run_dir / "history.jsonl", MAX_LINE_BYTES)
        self._log_tail = LineTail(run_dir / "log.txt", MAX_LINE_BYTES)
        self._records: list[EpochRecord] = []  # only appended to (a restart makes a new list)
        self._history: Sequence[EpochRecord] = ()
        self._last_saved: int | None = None
        self._log: list[str] = []  # the same
        self._log_lines: Sequence[str] = ()

    def read(self) -> tuple[Sequence[EpochRecord], int | None, Sequence[str]]:
        """(the history, the last epoch it records as saved, the log lines), as ``read_history`` and
        ``read_lines`` would read them now (an unfinished last line included, not kept)."""
        with self._lock:
            history, last_saved = self._read_history()
            update = self._log_tail.read()
            if update.restarted:
                self._log = []
            if update.restarted or update.lines:
                self._log.extend(update.lines)
                self._log_lines = Prefix(self._log)
            log = self._log_lines if update.pending is None else (*self._log_lines, update.pending)
            return history, last_saved, log

    def _read_history(self) -> tuple[Sequence[EpochRecord], int | None]:
        update = self._history_tail.read()
        if update.restarted:
            self._records, self._last_saved = [], None
        for line in update.lines:
            self._add(line)
        if update.restarted or update.lines:
            self._history = Prefix(self._records)
        record = _record_after(update.pending, self._records)
        if record is None:
            return self._history, self._last_saved
        return (*self._history, record), record.epoch if record.saved else self._last_saved

    def _add(self, line: str) -> None:
        record = _record_after(line, self._records)
        if record is not None:
            self._records.append(record)
            if record.saved:
                self._last_saved = record.epoch


def _record_after(line: str | None, records: list[EpochRecord]) -> EpochRecord | None:
    """The line's record if it is valid and comes after ``records`` (see ``read_history``)."""
    if line is None:
        return None
    try:
        record = EpochRecord.from_json(line)
    except (ValueError, RecursionError):  # json's errors are ValueErrors
        return None
    return record if not records or record.epoch > records[-1].epoch else None


def _migrate(db: sqlite3.Connection) -> None:
    db.execute(_SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    # Indexes made by earlier versions: add what they lack.
    if "stop_requested" not in columns:
        db.execute("ALTER TABLE runs ADD COLUMN stop_requested INTEGER DEFAULT 0")
    if "owner" not in columns:
        db.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
    if "progress" not in columns:
        db.execute("ALTER TABLE runs ADD COLUMN progress TEXT")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock, best effort: a folder we cannot create the lock file in still opens."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _move_aside(path: Path, why: str, moved: list[Path]) -> None:
    """``runs.sqlite`` -> ``runs.sqlite.corrupt-20261130T101500.123456``: kept for a human, never deleted."""
    if not path.exists():
        return
    stamp = time.strftime("%Y%m%dT%H%M%S") + f".{time.time_ns() // 1000 % 1_000_000:06d}"
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    os.replace(path, target)
    moved.append(target)


def index_problem(path: Path, timeout: float = 30.0) -> str | None:
    """Why ``path`` is not a usable index of ours, or None. A lock or a permission is no problem of the
    file's: those raise, and the file stays where it is.

    The file is read through SQLite only, never with ``open()``: this process may hold it open in
    SQLite already (a second store on the same folder), and closing any other descriptor of the file
    drops every POSIX lock the process holds on it. Another process then found itself the index's last
    user at its close and deleted the write-ahead log this process went on committing into: those
    commits were invisible to every other process (tests/store/test_two_stores_one_process.py).
    """
    try:
        st = os.stat(path)
    except OSError:
        return None  # SQLite will say why when it opens it
    if not stat.S_ISREG(st.st_mode):  # open() of a named pipe would wait for ever
        return "not a regular file (a folder, a named pipe or a device)"
    if st.st_size == 0:
        return None  # empty: SQLite makes a new database of it
    db = sqlite3.connect(path, timeout=timeout)
    try:
        result = [r[0] for r in db.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            return "damaged: " + "; ".join(map(str, result[:3]))
        columns = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            return "not an SQLite file"
        if any(w in str(exc) for w in ("malformed", "corrupt")):
            return f"damaged: {exc}"
        raise
    finally:
        db.close()
    if not columns:
        return "an SQLite database without a runs table (not this app's index)"
    missing = _REQUIRED_COLUMNS - columns
    return f"a runs table without {', '.join(sorted(missing))} (not this app's index)" if missing else None


def _run_folder_ids(root: Path) -> list[str]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    return sorted(e.name for e in entries if is_run_id(e.name) and e.is_dir(follow_symlinks=False))


# -- what a run folder says about its run -----------------------------------------------------------


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a run's name (None if it can): it is shown, linked and put in file names.

    The declaration's rule (``core.config.run_name_problem``): a name a config validates with is
    stored and read back exactly, never replaced."""
    return run_name_problem(name)


def _parse_config(text: object) -> RunConfig | str:
    """The config, or why it cannot be read. Any exception counts: a crafted file must not raise."""
    if not isinstance(text, str):
        return "not text"
    try:
        return load_stored(text)  # earlier versions' data.path is migrated
    except ConfigError as exc:
        if exc.problems and all(p.field == "name" for p in exc.problems):
            return _with_stand_in_name(text)  # the settings are fine; the name is the index's
        return str(exc) or type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - ConfigError by contract; anything else is damage too
        return str(exc) or type(exc).__name__


def _with_stand_in_name(text: str) -> RunConfig | str:
    """A stored config whose only problem is its name (one written before names were checked as they
    are now, or crafted): its settings, named "(unnamed run)" until the index's name replaces it."""
    try:
        data = loads_limited(text)
        data["name"] = "(unnamed run)"
        return load_stored(json.dumps(data))
    except Exception as exc:  # noqa: BLE001 - as above
        return str(exc) or type(exc).__name__


def _file_name_of(raw: object) -> str | None:
    """``data.file_name`` of an index row's config ("iris.csv"); None when it has none or is damaged."""
    if not isinstance(raw, str) or len(raw) > MAX_CONFIG_BYTES:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    section = data.get("data") if isinstance(data, dict) else None
    name = section.get("file_name") if isinstance(section, dict) else None
    return name if isinstance(name, str) and name else None


def _config_of(row: dict[str, Any], run_dir: Path) -> tuple[RunConfig, str | None]:
    """The index's config (it has the run's current name), else config.json's, else a stand-in."""
    config = _parse_config(row["config"])
    if isinstance(config, str):
        from_file = _parse_config(_read_capped(run_dir / "config.json", MAX_CONFIG_BYTES))
        if isinstance(from_file, RunConfig):
            from_file.name = row["name"] or from_file.name
            return from_file, None
        return RunConfig(name=row["name"] or "(unnamed run)"), config
    config.name = row["name"] or config.name  # the name column is the run's current name, checked
    return config, None


# What a summary.json / index row field may hold; anything else is read as missing.
_OPT_INT = (int, type(None))
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "created_at": (int, float),
    "started_at": (int, float, type(None)),
    "finished_at": (int, float, type(None)),
    "epochs_run": (int,),
    "max_epochs": _OPT_INT,
    "monitor": (str, type(None)),
    "best_epoch": _OPT_INT,
    "best_value": (int, float, type(None)),
    "checkpoint_epoch": _OPT_INT,
    "stopped_epoch": _OPT_INT,
    "stop_reason": (str, type(None)),
    "message": (str, type(None)),
    "owner_pid": _OPT_INT,
    "owner": (str, type(None)),
    "dataset": (str, type(None)),
    "model": (str, type(None)),
}
_FIELD_DEFAULTS: dict[str, Any] = {"status": INTERRUPTED, "created_at": 0.0, "epochs_run": 0}


def _clean(key: str, value: Any) -> Any:
    types = _FIELD_TYPES[key]
    ok = isinstance(value, types) and not isinstance(value, bool)
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if ok and key == "status" and value not in STATUS_LABELS:
        ok = False
    if ok and isinstance(value, str) and len(value) > 10_000:
        value = value[:10_000]
    return value if ok else _FIELD_DEFAULTS.get(key)


def _clean_metrics(value: Any) -> dict[str, float]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    if not isinstance(value, dict):
        return {}
    return {k: float(v) for k, v in value.items() if isinstance(k, str) and _is_number(v)}


def _clean_checkpoint(value: Any) -> str | None:
    """Only our own file names: a crafted "../x" or absolute path never becomes a path."""
    if not isinstance(value, str):
        return None
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    return name if _CHECKPOINT_RE.fullmatch(name) else None


def _progress(raw: object) -> tuple[int, int | None]:
    """(batch, steps) from the index's progress column; (0, None) for anything but what we wrote."""
    try:
        batch, steps = json.loads(raw) if isinstance(raw, str) and len(raw) < 100 else (0, None)
    except (ValueError, TypeError):
        return 0, None
    ok = (
        isinstance(batch, int)
        and 0 <= batch < 2**31
        and (steps is None or isinstance(steps, int) and 0 < steps < 2**31)
    )
    return (batch, steps) if ok else (0, None)


def clean_row(raw: dict[str, Any]) -> dict[str, Any]:
    """An index row or summary.json with every field of the right type (or None), the checkpoint as a
    bare file name (``checkpoint``) and test metrics as a dict."""
    row = {key: _clean(key, raw.get(key)) for key in _FIELD_TYPES}
    name = raw.get("name")
    row["name"] = name if name_problem(name) is None else None  # None: not a usable name
    row["checkpoint"] = _clean_checkpoint(raw.get("checkpoint", raw.get("checkpoint_path")))
    row["test_metrics"] = _clean_metrics(raw.get("test_metrics"))
    row["config"] = raw.get("config")
    return row


def summary_of(row: dict[str, Any]) -> dict[str, Any]:
    """summary.json: the index row, minus the config (config.json has it) and the stop flag."""
    clean = clean_row(row)
    out = {"format": 1, "id": row["id"], "name": row["name"]}
    out.update({k: clean[k] for k in _FIELD_TYPES})
    out["checkpoint"] = clean["checkpoint"]
    out["test_metrics"] = clean["test_metrics"]
    return out


def _summary_of_snapshot(snap: RunSnapshot, epochs_run: int) -> dict[str, Any]:
    row = {f: getattr(snap, f) for f in _INDEX_FIELDS}
    row.update(
        id=snap.id,
        name=snap.config.name,
        created_at=snap.created_at,
        epochs_run=epochs_run,
        max_epochs=snap.config.fit.max_epochs,
        test_metrics=snap.test_metrics,
        owner_pid=os.getpid(),
        owner=process_identity(),
        dataset=snap.config.data.name,
        model=snap.config.model.name,
    )
    return summary_of(row)


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    """summary.json cleaned of anything of the wrong type; None if missing or unreadable."""
    text = _read_capped(run_dir / SUMMARY_NAME, MAX_CONFIG_BYTES)
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict) or raw.get("id") != run_dir.name:
        return None
    return clean_row(raw)


def row_from_folder(run_dir: Path) -> dict[str, Any] | None:
    """The index row of a run folder the index lacks; None without a config.json. Never raises.

    From summary.json when the folder has a readable one. Folders of earlier versions have none:
    their row is inferred (see ``_infer``).
    """
    config_text = _read_capped(run_dir / "config.json", MAX_CONFIG_BYTES)
    if config_text is None:
        return None
    config = _parse_config(config_text)
    found = _read_summary(run_dir)
    row = found if found is not None else _infer(run_dir, config)
    name = row["name"] if found is not None else None
    if isinstance(config, RunConfig):
        config.name = name or config.name
        if name_problem(config.name):
            config.name = "(unnamed run)"
        row.update(name=config.name, config=config.to_json())
        row.update({k: v for k, v in _config_columns(config).items() if row.get(k) is None})
    else:
        row.update(name=name or f"damaged run {run_dir.name[:8]}", config=config_text)
    checkpoint = row.pop("checkpoint")
    row.update(
        id=run_dir.name,
        checkpoint_path=str(run_dir / checkpoint) if checkpoint else None,
        test_metrics=json.dumps(row["test_metrics"]),
    )
    return row


def _config_columns(config: RunConfig) -> dict[str, Any]:
    return {"dataset": config.data.name, "model": config.model.name, "max_epochs": config.fit.max_epochs}


_EARLY_STOP_RE = re.compile(r"^Epoch (\d+): early stopping$")
_TEST_RE = re.compile(r"^Test set \(.*\): (.*)$")


def _infer(run_dir: Path, config: RunConfig | str) -> dict[str, Any]:
    """The row of a folder without summary.json (written by an earlier version). Inferred:

    - status ``finished`` only when the log proves it: a "Test set" line (written once, after training
      ended) and either Keras' "Epoch N: early stopping" line or every epoch trained; then the stop
      reason follows, and the test metrics are read back from that line (rounded to 4 decimals, as
      printed). Anything else is ``interrupted`` (resumable if it has a resume point).
    - created_at: config.json's modification time; finished_at: the newest of history.jsonl / log.txt.
    - checkpoint: the ``checkpoint.*`` file in the folder, its epoch the last one history.jsonl marks
      saved; the best epoch and value: the checkpoint's (save_best_only), else EarlyStopping's best.
    """
    history = read_history(run_dir / "history.jsonl")
    log = read_lines(run_dir / "log.txt")
    times = [_mtime(run_dir / n) for n in ("history.jsonl", "log.txt")]
    row: dict[str, Any] = {key: None for key in _FIELD_TYPES}
    row.update(
        created_at=_mtime(run_dir / "config.json") or time.time(),
        finished_at=max((t for t in times if t), default=None),
        epochs_run=len(history),
        test_metrics={},
        checkpoint=next((n for n in _CHECKPOINT_NAMES if (run_dir / n).is_file()), None),
    )
    saved = [r.epoch for r in history if r.saved]
    row["checkpoint_epoch"] = saved[-1] if saved and row["checkpoint"] else None
    stops = [int(m.group(1)) for m in map(_EARLY_STOP_RE.match, log) if m]
    tests = [m.group(1) for m in map(_TEST_RE.match, log) if m]
    if isinstance(config, RunConfig):
        row.update(_infer_best(config, history))
        all_epochs = bool(history) and history[-1].epoch == config.fit.max_epochs
        if tests and (stops or all_epochs):
            row.update(status=FINISHED, stop_reason="early_stopping" if stops else "max_epochs")
            row.update(stopped_epoch=stops[-1] if stops else None, test_metrics=_parse_test_line(tests[-1]))
            row["message"] = "Recovered from its folder (an earlier version's, without summary.json)."
    if row.get("status") is None:
        row.update(
            status=INTERRUPTED,
            stop_reason="interrupted",
            message="Recovered from its folder (an earlier version's, without summary.json): how it "
            "ended is not recorded there, so it shows as interrupted. Every finished epoch and its "
            "checkpoint are kept.",
        )
    return row


def _infer_best(config: RunConfig, history: list[EpochRecord]) -> dict[str, Any]:
    ck, es = config.checkpoint, config.early_stopping
    if ck.enabled and ck.save_best_only:
        saved = [r for r in history if r.saved]
        if saved:
            value = saved[-1].logs.get(ck.monitor)
            return {
                "monitor": ck.monitor,
                "best_epoch": saved[-1].epoch,
                "best_value": _finite_or_none(value),
            }
    elif es.enabled:
        best = [r.es_best_epoch for r in history if r.es_best_epoch]
        if best and best[-1] <= len(history):
            value = next((r.logs.get(es.monitor) for r in history if r.epoch == best[-1]), None)
            return {"monitor": es.monitor, "best_epoch": best[-1], "best_value": _finite_or_none(value)}
    return {}


def _finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _parse_test_line(text: str) -> dict[str, float]:
    metrics = {}
    for part in text.split(" - "):
        key, _, value = part.partition(": ")
        try:
            metrics[key.strip()] = float(value)
        except ValueError:
            continue
    return {k: v for k, v in metrics.items() if k and math.isfinite(v)}


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; OSError for anything else. Opened without
    blocking and checked on the open file: a named pipe would wait for a writer for ever, and a device
    (a link to /dev/zero) never ends."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_capped(path: Path, limit: int) -> str | None:
    """The file's text if it exists and is at most ``limit`` bytes; a bigger one reads as ``""``."""
    try:
        with _open_regular(path) as fh:
            data = fh.read(limit + 1)
    except OSError:
        return None
    return "" if len(data) > limit else data.decode("utf-8", errors="replace")


def read_lines(path: Path, max_bytes: int = MAX_LINE_BYTES) -> list[str]:
    """The file's lines; one longer than ``max_bytes`` is skipped as damaged (and never held whole)."""
    lines: list[str] = []
    try:
        with _open_regular(path) as fh:
            while chunk := fh.readline(max_bytes + 1):
                if len(chunk) > max_bytes and not chunk.endswith(b"\n"):
                    while (rest := fh.readline(max_bytes + 1)) and not rest.endswith(b"\n"):
                        pass  # the rest of the oversized line
                    continue
                lines.append(chunk.decode("utf-8", errors="replace").rstrip("\r\n"))
    except OSError:
        pass  # missing (no epoch yet), or unreadable: what was read is what there is
    return lines


def read_history(path: Path) -> list[EpochRecord]:
    """Every valid line in epoch order; a line torn by a crash, garbage, a wrong type or an epoch out of
    order is dropped, not fatal."""
    records: list[EpochRecord] = []
    for line in read_lines(path):
        record = _record_after(line, records)
        if record is not None:
            records.append(record)
    return records


def _append_line(path: Path, line: str) -> None:
    """Appends to a regular file only: a named pipe put in a run's folder would block the training
    process's next log line for ever (opened without blocking, checked on the open file)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        fh.write(line.replace("\n", " ") + "\n")


def _atomic_write(path: Path, data: bytes, fsync: bool = True) -> None:
    """Temp file + rename: readers see the old file or the new one. The temp name is the writer's own
    (two processes may write one summary.json), and it is removed when the write fails."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


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
