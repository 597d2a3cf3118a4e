"""The queue: starts runs and hands them, one at a time, to the worker process (or a thread).

``Trainer.start`` validates, records the run on disk as queued and returns at once; a single daemon
worker takes runs from the queue, so several users of one 2-core server wait their turn instead of
thrashing it. TensorFlow is imported by the worker when the first run starts, never before.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import deque
from dataclasses import replace

from core import backends
from core.config import Problem, RunConfig, errors
from core.engine import resume_point
from core.store.runs import (
    FAILED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    STOPPED,
    STOPPING,
    Run,
    RunSnapshot,
    RunStore,
    is_run_id,
    new_run_id,
)
from core.validate import validate

MAX_QUEUE_ENV = "ESLAB_MAX_QUEUE"
TRAIN_IN_ENV = "ESLAB_TRAIN_IN"  # "process" (a recycled worker process) or "thread" (this process)


class InvalidConfig(ValueError):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class QueueFull(RuntimeError):
    pass


class Trainer:
    """Process-wide: owns the queue, the worker thread and the runs started in this process."""

    def __init__(
        self, store: RunStore | None = None, max_queue: int | None = None, train_in: str | None = None
    ):
        self.store = store or RunStore()
        self.max_queue = max_queue if max_queue is not None else int(os.environ.get(MAX_QUEUE_ENV, "8"))
        self.train_in = train_in or os.environ.get(TRAIN_IN_ENV, "thread")
        if self.train_in not in ("thread", "process"):
            raise ValueError(f"{TRAIN_IN_ENV} must be 'thread' or 'process', not {self.train_in!r}")
        self.interrupted = self.store.mark_interrupted()
        self._last_reap = time.monotonic()
        self._runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._current: Run | None = None

    # -- starting and stopping ------------------------------------------------------------------------
    def start(self, config: RunConfig) -> Run:
        problems = errors(validate(config, uploads_dir=self.store.root / "uploads"))
        if problems:
            raise InvalidConfig(problems)
        config = self._with_backend(config)
        with self._cond:
            self._check_room()
            run_id = new_run_id()
            created = time.time()
            self.store.create(run_id, config, created)
            run = Run(run_id, config, self.store, created_at=created)
            self._enqueue(run)
        return run

    def backend_problem(self, config: RunConfig) -> Problem | None:
        """Why this trainer cannot train ``config`` on its backend (thread mode only), or None: the
        page shows it before Start, next to the setting."""
        if self.train_in != "thread":
            return None
        requested = config.fit.backend
        return backends.thread_problem(backends.resolve(requested, config.model.name), requested)

    def _with_backend(self, config: RunConfig) -> RunConfig:
        """The config with ``auto`` resolved (what is stored, resumed and exported); in thread mode,
        refused when this process's Keras runs another backend (never trained there silently)."""
        if (problem := self.backend_problem(config)) is not None:
            raise InvalidConfig([problem])
        requested = config.fit.backend
        backend = backends.resolve(requested, config.model.name)
        if backend == requested:
            return config
        return replace(config, fit=replace(config.fit, backend=backend))

    def _check_room(self) -> None:
        if len(self._queue) >= self.max_queue:
            raise QueueFull(
                f"{len(self._queue)} runs are already waiting, the most this server queues. "
                "Try again when one has finished."
            )

    def _enqueue(self, run: Run) -> None:
        """Under ``self._cond``."""
        self._runs[run.id] = run
        self._queue.append(run)
        self._ensure_worker()
        self._cond.notify_all()

    def resume(self, run_id: str) -> Run:
        """Queues an interrupted or stopped run to continue from its resume point.

        It ends where the same run never interrupted would have: same stop epoch, same best value.
        Raises ResumeError with the reason for the page when it cannot.
        """
        if not is_run_id(run_id):
            raise resume_point.ResumeError("No such run.")
        try:
            snap = self.snapshot(run_id)
        except KeyError:
            raise resume_point.ResumeError("No such run.") from None
        reason = resume_point.why_not(snap, self.store.run_dir(run_id))
        if reason:
            raise resume_point.ResumeError(reason)
        if self.train_in == "thread":
            backend = snap.config.fit.backend  # resolved when the run started
            if problem := backends.thread_problem(backend, backend):
                raise resume_point.ResumeError(problem.message)
        point = resume_point.header(self.store.run_dir(run_id))  # the arrays are read where it trains
        epoch = point["epoch"]
        with self._cond:
            self._check_room()
            if not self.store.claim(run_id, (INTERRUPTED, STOPPED, FAILED)):
                raise resume_point.ResumeError("This run was just resumed elsewhere.")
            run = Run.continuing(snap, self.store, epoch, point["summary"])
            again = resume_point.trained_again(epoch, snap.epoch)
            run.log(f"Resume requested: continuing after epoch {epoch}" + (f" ({again})." if again else "."))
            self._enqueue(run)
        return run

    def stop(self, run_id: str) -> None:
        """Stops a running run within one batch; a queued one never starts."""
        run = self._runs.get(run_id)
        if run is None:  # trained by another process (python -m core train, another server)
            if is_run_id(run_id):
                self.store.request_stop(run_id)
            return
        with self._cond:
            if run in self._queue:
                self._queue.remove(run)
                run.log("Stopped by user before it started.")
                run.set_status(STOPPED, stop_reason="user", message="Stopped before it started.")
                return
        run.stop_requested.set()
        if self.train_in == "process" and run is self._current:
            from core.engine.worker_process import shared_pool

            shared_pool().stop(run_id)
        run.set_status(STOPPING, expect=(RUNNING,))

    def rename(self, run_id: str, name: str) -> None:
        """ValueError("name: …") for a name the store refuses (see ``runs.name_problem``)."""
        if isinstance(name, str):
            name = name.strip()
        self.store.rename(run_id, name)
        run = self._runs.get(run_id)
        if run is not None:
            run.config.name = name
            run.set_fields(config=run.config)

    def delete(self, run_id: str) -> None:
        """Deletes a run and its files; a live run must be stopped first."""
        snap = self.snapshot(run_id)
        if snap.is_live:
            raise RuntimeError(f"{snap.config.name} is still {snap.status}: stop it before deleting it.")
        self._runs.pop(run_id, None)
        self.store.delete(run_id)

    # -- reading ------------------------------------------------------------------------------------
    def snapshot(self, run_id: str) -> RunSnapshot:
        """The live state for runs of this process, the stored state for any other. KeyError if none."""
        run = self._runs.get(run_id)
        if run is None:
            snap = self.store.load(run_id)
            if snap.is_live and self._reap():
                snap = self.store.load(run_id)
            return snap
        snap = run.snapshot()
        if snap.status == QUEUED:
            snap = replace(snap, queue_position=self.queue_position(run_id))
        return snap

    def list_runs(self):
        """The index, newest first, with runs of processes that died since marked interrupted."""
        self._reap()
        return self.store.list()

    def _reap(self, every: float = 5.0) -> bool:
        """Marks runs whose training process died (e.g. a killed ``python -m core train``) interrupted.

        At start-up that happens once; while the server runs, at most every ``every`` seconds, when a
        page looks. True if any run changed.
        """
        now = time.monotonic()
        if now - self._last_reap < every:
            return False
        self._last_reap = now
        return bool(self.store.mark_interrupted())

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None when not waiting."""
        with self._cond:
            for i, run in enumerate(self._queue):
                if run.id == run_id:
                    return i + 1
        return None

    def wait(self, run_id: str, timeout: float = 600.0) -> RunSnapshot:
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot(run_id)
            if not snap.is_live:
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(f"Run {run_id} still {snap.status} after {timeout} s")
            time.sleep(0.05)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Until no run is queued or training (its clean-up included); False on timeout.

        A run's status is final before its thread has cleared Keras' session: a process that exits
        in between tears that thread down inside the backend, and after a JAX run trained in a
        thread, that aborted the process ("FATAL: exception not rethrown", exit 134).
        """
        deadline = time.monotonic() + timeout
        while self._queue or self._current is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def exists(self, run_id: str) -> bool:
        return is_run_id(run_id) and (run_id in self._runs or self.store.exists(run_id))

    # -- the worker ---------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="eslab-trainer", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                run = self._queue.popleft()
                self._current = run
            try:
                if self.train_in == "process":
                    from core.engine.worker_process import shared_pool

                    shared_pool().train(run)
                else:
                    from core.engine.fit_one import execute  # not on the server's import path

                    execute(run)
            except BaseException:  # noqa: BLE001 - the worker must outlive any run
                traceback.print_exc()
            finally:
                self._current = None
