"""Training in a separate, recycled worker process: the server's memory stays bounded.

Keras and TensorFlow keep growing a process by a few MB per run even with ``clear_session()``
(measured 5.6 MB a run, not returned by ``malloc_trim``), and Streamlit resets Keras' session
after every script run. So the server never trains: one worker process (``python -m
core.worker_process``) imports TensorFlow once, trains the runs it is sent one at a time, and is
replaced after ``MAX_RUNS`` runs or once it holds more than ``MAX_RSS_MB``, the way Celery's
``max_tasks_per_child`` / ``max_memory_per_child`` and gunicorn's ``max_requests`` bound theirs.

The worker writes the run to the store exactly as a training thread would (it is the same
``execute``) and forwards every change to the server over a socket pair, where a copy of the
run (``Run.persist = False``) keeps the live view going. A Stop travels the other way. If the
server dies, the worker sees its socket close and exits at once, so a restart finds the run
interrupted, as before; if the worker dies, the server fails the run with the reason.

One run cannot take the machine down: a watchdog thread in the worker ends it once its resident
memory goes over ``ESLAB_WORKER_MEMORY_MB`` (default 4,096 MB), and the run fails with that reason,
keeping its epochs, resumable (see ``MemoryWatchdog`` for the figures behind the default and why it
is not ``RLIMIT_AS``).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core import backends
from core.store.runs import LIVE_STATUSES, EpochRecord, Run, RunStore

MAX_RUNS = int(os.environ.get("ESLAB_WORKER_MAX_RUNS", "10"))
MAX_RSS_MB = int(os.environ.get("ESLAB_WORKER_MAX_RSS_MB", "1500"))
MEMORY_ENV = "ESLAB_WORKER_MEMORY_MB"
DEFAULT_MEMORY_MB = 4096
EXIT_MEMORY = 3  # the worker's exit code when its watchdog ended it
PROGRESS_INTERVAL = 0.05  # s between batch-progress messages (the page ticks every 0.5 s)
ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------
# The server side


def memory_limit_mb() -> int:
    """``ESLAB_WORKER_MEMORY_MB``, or the default when unset (or not a positive whole number)."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if not raw:
        return DEFAULT_MEMORY_MB
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        print(
            f"{MEMORY_ENV}={raw!r} is not a positive number of MB; using {DEFAULT_MEMORY_MB}.",
            file=sys.stderr,
        )
        return DEFAULT_MEMORY_MB
    return value


def memory_reason(limit_mb: float, rss_mb: float | None = None) -> str:
    held = f"; it held {rss_mb:,.0f} MB" if rss_mb is not None else ""
    return (
        f"the run went over the training process's memory limit of {limit_mb:,.0f} MB "
        f"({MEMORY_ENV}{held}). A smaller batch size, model or dataset needs less; or raise the limit"
    )


class WorkerDied(RuntimeError):
    pass


class WorkerProcess:
    """One worker child and the thread that applies its messages to the server's copy of a run."""

    def __init__(self, backend: str = "tensorflow") -> None:
        self.backend = backend  # Keras' backend in the child: chosen by KERAS_BACKEND, before its import
        parent_sock, child_sock = socket.socketpair()
        self.conn = Connection(parent_sock.detach())
        child_fd = child_sock.detach()
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.memory_limit_mb = memory_limit_mb()
        env = {**os.environ, "PYTHONPATH": path, MEMORY_ENV: str(self.memory_limit_mb), backends.ENV: backend}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core.engine.worker_process", str(child_fd)],
            pass_fds=(child_fd,),
            cwd=ROOT,
            env=env,
        )
        os.close(child_fd)
        self._token = ""
        self.runs_done = 0
        self.rss_mb: float | None = None
        self.over_memory: tuple[float, float] | None = None  # (rss, limit) from the watchdog's last word
        self.ready = threading.Event()
        self.warmed: dict[str, Any] = {}  # what the worker did before saying "ready" (see ``warm_up``)
        self._send_lock = threading.Lock()
        self._current: Run | None = None
        self._done = threading.Event()
        self._dead = threading.Event()
        self._reader = threading.Thread(target=self._read, name="eslab-worker-reader", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return not self._dead.is_set() and self.proc.poll() is None

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self.conn.send(message)

    def train(self, run: Run) -> None:
        """Trains ``run`` in the worker; returns when it has ended (or the worker died)."""
        if not self.ready.wait(timeout=300) or not self.alive:
            raise WorkerDied(self._death_reason())
        self._current = run
        self._token = uuid.uuid4().hex  # names this job: a late Stop never reaches a later job
        self._done.clear()
        run.persist = False
        try:
            job = {
                "token": self._token,
                "runs_dir": str(run.store.root),
                "snapshot": run.snapshot(),
                "resume": run.resume_epoch,
            }
            self._send(("job", job))
            if run.stop_requested.is_set():  # a Stop that came while the job was on its way
                self.stop(run.id)
            while not self._done.wait(timeout=0.5):
                if not self.alive:
                    self._dead.wait(timeout=5)  # let the reader apply what was sent before the end
                    raise WorkerDied(self._death_reason())
        finally:
            run.persist = True
            self._current = None
        self.runs_done += 1

    def stop(self, run_id: str) -> None:
        current, token = self._current, self._token
        if current is None or current.id != run_id:
            return
        try:
            self._send(("stop", token))
        except OSError:
            pass  # the worker is gone; its run is being failed

    def set_memory_limit(self, mb: float) -> None:
        """Changes the watchdog's limit in the running worker (tests lower it mid-run)."""
        self._send(("memory_limit", mb))

    def close(self) -> None:
        try:
            self._send(("exit",))
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _read(self) -> None:
        try:
            while True:
                kind, *args = self.conn.recv()
                if kind == "ready":
                    self.warmed = args[0] if args else {}
                    self.ready.set()
                elif kind == "done":
                    self.rss_mb = args[0]
                    self._done.set()
                elif kind == "memory":
                    self.over_memory = (args[0], args[1])
                elif self._current is not None:
                    _apply(self._current, kind, args)
        except (EOFError, OSError):
            pass
        finally:
            self._dead.set()
            self.ready.set()  # wake anyone waiting for a worker that will never be ready

    def _death_reason(self) -> str:
        if self.over_memory is not None:
            return memory_reason(self.over_memory[1], self.over_memory[0])
        try:
            code = self.proc.wait(timeout=2)  # its socket closed: it is exiting, or has
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "the training process stopped answering"
        if code == EXIT_MEMORY:
            return memory_reason(self.memory_limit_mb)
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (the system may have run out of memory)" if -code == signal.SIGKILL else ""
            return f"the training process was killed by {name}{hint}"
        return f"the training process exited with code {code}"


def _apply(run: Run, kind: str, args: list) -> None:
    if kind == "update":
        run.apply_changes(args[0])
    elif kind == "history":
        run.add_epoch(args[0])
    elif kind == "log":
        run.log(args[0])
    elif kind == "batch":
        run.add_batch_point(*args)
    elif kind == "progress":
        run.set_progress(*args)
    elif kind == "evaluation":
        run.set_evaluation(*args)


class WorkerPool:
    """Process-wide: lends a warm worker to one run at a time, and replaces it when worn.

    Keras' backend is fixed per process, so the pool keeps one worker per backend (a TensorFlow one
    and a JAX one), each recycled on its own; a run goes to the worker of its ``fit.backend``.
    """

    def __init__(self, max_runs: int = MAX_RUNS, max_rss_mb: float = MAX_RSS_MB):
        self.max_runs = max_runs
        self.max_rss_mb = max_rss_mb
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerProcess] = {}
        self.started = 0  # worker processes started so far (for tests and the bench)
        self._active: WorkerProcess | None = None  # the worker training a run right now

    def warm_up(self, backend: str = "tensorflow") -> bool:
        """Starts a worker now, so the first run does not wait for Keras' import. False when the
        pool was busy (a run holds it) and nothing was started."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._get(backend)
            return True
        finally:
            self._lock.release()

    def _get(self, backend: str) -> WorkerProcess:
        worker = self._workers.get(backend)
        if worker is None or not worker.alive:
            worker = self._workers[backend] = WorkerProcess(backend)
            self.started += 1
        return worker

    def workers(self) -> dict[str, WorkerProcess]:
        """The live workers by backend (for tests and the bench)."""
        return {b: w for b, w in self._workers.items() if w.alive}

    def close(self) -> None:
        """Ends every worker (tests; a server's workers end with it)."""
        with self._lock:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()

    @contextmanager
    def lease(self, backend: str = "tensorflow"):
        with self._lock:
            worker = self._get(backend)
            try:
                yield worker
            finally:
                if not worker.alive:
                    self._workers.pop(backend, None)
                elif worker.runs_done >= self.max_runs or (worker.rss_mb or 0) > self.max_rss_mb:
                    self._workers.pop(backend, None)
                    worker.close()
                    self._get(backend)  # the replacement warms up while nobody waits for it

    def train(self, run: Run) -> None:
        """Never raises for the run's sake: a worker that dies fails the run with the reason."""
        backend = backends.resolve(run.config.fit.backend, run.config.model.name)
        with self.lease(backend) as worker:
            self._active = worker
            try:
                worker.train(run)
            except WorkerDied as exc:
                if run.status in LIVE_STATUSES:
                    from core.engine.fit_one import record_failure

                    record_failure(
                        run,
                        f"Training stopped: {exc}. Every finished epoch and the best checkpoint so far "
                        "are kept; this run can be resumed.",
                    )
            finally:
                self._active = None

    def stop(self, run_id: str) -> None:
        worker = self._active
        if worker is not None:
            worker.stop(run_id)


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """One pool per server process, whichever Trainer asks (pages create theirs per cache clear)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerPool()
        return _pool


# ------------------------------------------------------------------------------------------------
# The worker side


class ForwardingRun(Run):
    """The worker's run: writes the store as always, and tells the server about every change."""

    def __init__(self, *args: Any, send, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._send = send
        self._last_progress = 0.0
        self._last_evaluation = 0.0

    def _update(self, persist: bool = True, expect: tuple[str, ...] | None = None, **changes: Any) -> bool:
        done = super()._update(persist, expect, **changes)
        if done:
            self._send(("update", changes))
        return done

    def add_epoch(self, record: EpochRecord, **changes: Any) -> None:
        self._send(("history", record))
        super().add_epoch(record, **changes)

    def log(self, line: str) -> None:
        try:
            super().log(line)
        finally:  # the console gets the line even when the log file cannot be written
            self._send(("log", line))

    def add_batch_point(self, position: float, loss: float, metric: float | None) -> None:
        super().add_batch_point(position, loss, metric)
        self._send(("batch", position, loss, metric))

    def set_progress(self, epoch: int, batch: int, steps: int | None) -> None:
        super().set_progress(epoch, batch, steps)
        now = time.monotonic()
        if batch == 0 or batch == steps or now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            self._send(("progress", epoch, batch, steps))

    def set_evaluation(self, batch: int, steps: int | None) -> None:
        super().set_evaluation(batch, steps)
        now = time.monotonic()
        if batch == 0 or batch == steps or now - self._last_evaluation >= PROGRESS_INTERVAL:
            self._last_evaluation = now
            self._send(("evaluation", batch, steps))


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """Belt and braces for the socket's EOF: if we were orphaned, stop at once.

    (Not ``PR_SET_PDEATHSIG``: Linux sends it when the *thread* that started us ends, and the
    server starts workers from short-lived threads.)
    """
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(interval)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class MemoryWatchdog:
    """Ends the worker once its resident memory goes over the limit, before it takes the machine down.

    Measured on this app's worker (2-core machine, TensorFlow 2.x CPU, Keras 3.15), from
    /proc/<pid>/status: after importing TensorFlow, VSZ 1,949 MB and RSS 794 MB (most of it the
    mapped TensorFlow library); during a 20-epoch digits MLP run, peak VSZ 2,941 MB and RSS 854 MB;
    during the tutorial's Conv1D on the generated reviews, peak VSZ 3,032 MB and RSS 920 MB. The
    default limit, 4,096 MB, is more than 4x that Conv1D peak (room for the real IMDB set or a large
    text CSV) and a sixth of the 24 GB machine it was measured on.

    Resident, not virtual, memory: ``RLIMIT_AS`` counts what TensorFlow *reserves* (thread stacks,
    malloc arenas per thread; VSZ grows with the core count) rather than what it uses. With
    RLIMIT_AS at 2,500 MB a digits run, whose RSS stays under 900 MB, aborted inside TensorFlow
    (a C++ stack trace from ``TFE_Py_FastPathExecute``, not a Python MemoryError); at 3,500 MB it
    trained. So a limit on VSZ either kills healthy runs or sits far above real use.

    The check reads /proc/self/statm every ``interval`` (a few microseconds each). Over the limit it
    tells the server why, then exits at once with ``EXIT_MEMORY``: finished epochs are in the store
    and the resume point on disk, as after any kill, so the run can be resumed.
    """

    def __init__(self, limit_mb: float, on_exceeded, interval: float = 0.1):
        self.limit_mb = limit_mb
        self._on_exceeded = on_exceeded
        self._interval = interval

    def start(self) -> MemoryWatchdog:
        threading.Thread(target=self._watch, name="eslab-memory-watch", daemon=True).start()
        return self

    def _watch(self) -> None:
        while True:
            rss = _rss_mb()
            if rss > self.limit_mb:
                try:
                    self._on_exceeded(rss, self.limit_mb)
                finally:
                    os._exit(EXIT_MEMORY)
            time.sleep(self._interval)


def warm_up() -> dict[str, Any]:
    """What every process pays once, paid before the server hears "ready", not by the first run.

    A first ``fit`` in a process sets up TensorFlow's runtime (thread pools, the first traced
    functions): measured 0.4 s more for the first digits run of a process than for the next. The
    built-in scikit-learn sets are read once here too (0.2 s a run for digits). A tiny model is fitted,
    validated and evaluated, then the session is cleared, as between runs. Returns what was done
    (the server keeps it, for tests and the bench).
    """
    import keras
    import numpy as np

    from core.data.sources import sklearn_sets

    started = time.perf_counter()
    done: dict[str, Any] = {"keras": "keras" in sys.modules, "fitted": False}
    try:
        for spec in (sklearn_sets.DIGITS, sklearn_sets.BREAST_CANCER, sklearn_sets.WINE):
            sklearn_sets.read_bundled(spec.loader)
        x, y = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, validation_data=(x, y), batch_size=4, epochs=1, verbose=0)
        model.evaluate(x, y, batch_size=4, verbose=0)
        done["fitted"] = True
    except Exception:  # noqa: BLE001 - a warm-up that fails only costs the first run its time
        traceback.print_exc()
    finally:
        keras.backend.clear_session()
    done["seconds"] = time.perf_counter() - started
    return done


def serve(fd: int) -> None:
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="eslab-orphan-watch", daemon=True
    ).start()
    conn = Connection(fd)
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            try:
                conn.send(message)
            except OSError:
                # The server is gone (a broken pipe can come before the listener sees EOF): stop at
                # once, leaving the run live on disk, so a restart finds it interrupted and resumable
                # (seen in CI: the run recorded as failed with "BrokenPipeError" after a kill -9).
                os._exit(0)

    def over_limit(rss: float, limit: float) -> None:
        # A send stuck half-way must not keep the worker alive: wait for the lock a moment only (the
        # exit code carries the reason too).
        if send_lock.acquire(timeout=1.0):
            try:
                conn.send(("memory", rss, limit))
            except OSError:
                pass
            finally:
                send_lock.release()

    watchdog = MemoryWatchdog(memory_limit_mb(), over_limit).start()

    backends.tensorflow_without_jax()
    import keras  # noqa: F401 - the slow import, done before the server says "ready"

    from core.engine.fit_one import execute

    warmed = warm_up()

    jobs: queue.Queue = queue.Queue()
    current: dict[str, Run] = {}  # job token -> run
    stops: set[str] = set()  # tokens of jobs the server asked to stop, even before they started

    def listen() -> None:
        try:
            while True:
                kind, *args = conn.recv()
                if kind == "job":
                    jobs.put(args[0])
                elif kind == "stop":
                    stops.add(args[0])
                    if args[0] in current:
                        current[args[0]].stop_requested.set()
                elif kind == "memory_limit":
                    watchdog.limit_mb = args[0]
                elif kind == "exit":
                    jobs.put(None)
        except (EOFError, OSError):
            os._exit(0)  # the server is gone: stop at once, as a training thread would have

    threading.Thread(target=listen, name="eslab-worker-listen", daemon=True).start()
    stores: dict[str, RunStore] = {}
    send(("ready", warmed))
    while (job := jobs.get()) is not None:
        if job["runs_dir"] not in stores:  # one store (one connection, one reconcile) per folder
            stores[job["runs_dir"]] = RunStore(job["runs_dir"])
        store = stores[job["runs_dir"]]
        run = ForwardingRun.from_snapshot(job["snapshot"], store, send=send)
        run.resume_epoch = job["resume"]
        token = job["token"]
        current[token] = run
        if token in stops:
            run.stop_requested.set()
        try:
            execute(run)
        finally:
            current.pop(token, None)
            stops.discard(token)
            send(("done", _rss_mb()))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
