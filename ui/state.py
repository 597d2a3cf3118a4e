"""Process-wide and per-session state for the pages.

The trainer (queue, worker, store) is one per server process: ``st.cache_resource``. Which run a tab
is looking at lives in the URL (``?run=<id>``), so a reload or a shared link re-attaches to it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx, script_runner

from core.config import RunConfig, printable
from core.engine.queue import TRAIN_IN_ENV, Trainer
from core.store.runs import Run, RunStore, is_run_id
from ui.text import md


def _clean_problem_modules_except_keras() -> None:
    """Streamlit's own clean-up after every script run, minus ``keras.backend.clear_session()``.

    Streamlit 1.67 (script_runner._clean_problem_modules) clears Keras' global session after each
    run of a page, including every tick of the live view. That resets Keras and TensorFlow state
    under the training thread: epochs ran 100x slower with a tab open and builds failed with
    duplicate layer names. Our worker clears the session itself, between runs, where it is safe.
    Runs now train in a worker process by default, but the server still loads Keras for some
    downloads, and ``ESLAB_TRAIN_IN=thread`` trains here.
    """
    if "matplotlib.pyplot" in sys.modules:
        try:
            sys.modules["matplotlib.pyplot"].close("all")
        except Exception:  # noqa: BLE001 - as Streamlit: never crash the app over clean-up
            pass


script_runner._clean_problem_modules = _clean_problem_modules_except_keras  # noqa: SLF001 - see above


@st.cache_resource(show_spinner=False)
def get_trainer() -> Trainer:
    """Runs train in a recycled worker process (core/worker_process.py), warmed up once the first
    page has been drawn (``warm_up_worker``).

    ``ESLAB_TRAIN_IN=thread`` trains in the server process instead (simpler to debug; memory grows).
    """
    try:
        store = RunStore()
    except (OSError, sqlite3.Error) as exc:  # a runs folder that cannot be made, opened or written
        st.error(md(f"The runs folder cannot be used ({exc}). Check ESLAB_RUNS_DIR and its permissions."))
        st.stop()
        raise RuntimeError(f"The runs folder cannot be used: {exc}") from exc  # outside a page run
    return Trainer(store, train_in=os.environ.get(TRAIN_IN_ENV, "process"))


_warm_up_lock = threading.Lock()
_warm_up_started: set[str] = set()  # the backends whose training process was asked to start


def warm_up_worker(backend: str = "tensorflow") -> None:
    """Starts the training process of ``backend`` (Keras imported and warmed up, ~5 s of one core),
    once per backend.

    Called at the end of the home page (TensorFlow) and of the Train page (the backend the form's run
    would train on: a user who picks JAX gets a warm JAX worker too): after the page's script has
    run, so the import does not compete with drawing it on a 2-core machine, and long before Start.
    A pool busy with a run starts nothing; a later page run asks again.
    """
    with _warm_up_lock:
        if backend in _warm_up_started or get_trainer().train_in != "process":
            return
        _warm_up_started.add(backend)
    from core.engine.worker_process import shared_pool

    def warm() -> None:
        if not shared_pool().warm_up(backend):
            with _warm_up_lock:
                _warm_up_started.discard(backend)

    threading.Thread(target=warm, name=f"eslab-warm-up-{backend}", daemon=True).start()


PRIVATE_ENV = "ESLAB_PRIVATE"


def private_mode() -> bool:
    """One setting: each browser session sees only the runs it started or holds the link of."""
    return os.environ.get(PRIVATE_ENV, "").lower() in ("1", "true", "yes")


def _mine() -> set[str]:
    return st.session_state.setdefault("my_runs", set())


def remember(run_id: str) -> None:
    """This session started the run, or was given its link: in private mode it may see it."""
    _mine().add(run_id)


def visible(index: pd.DataFrame) -> pd.DataFrame:
    """The store's index as this session may see it: everything (the shared lab notebook), or in
    private mode only its own runs."""
    if not private_mode() or index.empty:
        return index
    return index[index["id"].isin(_mine())]


def start(config: RunConfig) -> Run:
    """Starts the run and records the start for this session before any other Streamlit call.

    Any ``st.session_state`` or ``st.query_params`` call may end a callback with Streamlit's
    StopException when the browser has sent another rerun meanwhile (the second click of a burst),
    so the start is noted in a plain dict first: the run is never started without it.
    """
    key = _session_key()
    before = st.query_params.get("run")  # the URL's run when Start was pressed (see put_back_...)
    run = get_trainer().start(config)
    _note_start(key, run.id, before)
    remember(run.id)
    return run


def url_run_id() -> str | None:
    """The run in the URL, if it is a well-formed id of a run that exists (holding it grants access)."""
    rid = st.query_params.get("run")
    if rid and is_run_id(rid) and get_trainer().exists(rid):
        remember(rid)
        return rid
    return None


MAX_LINKED_RUNS = 20


def linked_run_ids(param: str = "runs") -> list[str]:
    """Run ids from a shared link (``?runs=id,id``): untrusted, so bounded and only well-formed ids.

    Anything else in the parameter is ignored, never opened; at most MAX_LINKED_RUNS ids are read.
    """
    raw = st.query_params.get(param, "")
    if not isinstance(raw, str):
        return []
    ids: list[str] = []
    for part in raw[:65_536].split(","):
        if is_run_id(part) and part not in ids:
            ids.append(part)
            if len(ids) == MAX_LINKED_RUNS:
                break
    return ids


def link_problems(param: str = "runs") -> list[str]:
    """What of a shared link ``linked_run_ids`` does not read, one sentence each (user text quoted
    escaped): parts that are no run id, ids of runs that do not exist, ids past MAX_LINKED_RUNS."""
    raw = st.query_params.get(param, "")
    if not isinstance(raw, str) or not raw:
        return []
    parts = [p for p in raw[:65_536].split(",") if p]
    not_ids = [p for p in parts if not is_run_id(p)]
    ids = list(dict.fromkeys(p for p in parts if is_run_id(p)))
    trainer = get_trainer()
    missing = [r for r in ids[:MAX_LINKED_RUNS] if not trainer.exists(r)]
    problems = []
    if not_ids:
        shown = ", ".join(repr(printable(p[:40])) for p in not_ids[:3])
        more = f" and {len(not_ids) - 3:,} more" if len(not_ids) > 3 else ""
        problems.append(
            f"{len(not_ids):,} part{'s' if len(not_ids) > 1 else ''} of this link "
            f"{'are' if len(not_ids) > 1 else 'is'} not a run id: {shown}{more}."
        )
    if missing:
        shown = ", ".join(r[:6] + "…" for r in missing[:5])
        more = f" and {len(missing) - 5:,} more" if len(missing) > 5 else ""
        problems.append(
            f"{len(missing):,} run{'s' if len(missing) > 1 else ''} of this link "
            f"{'do' if len(missing) > 1 else 'does'} not exist (any more): {shown}{more}."
        )
    if len(ids) > MAX_LINKED_RUNS or len(raw) > 65_536:
        problems.append(
            f"This link names more runs than a page shows: only its first {MAX_LINKED_RUNS} run ids are read."
        )
    return problems


def open_run(run_id: str) -> None:
    st.query_params["run"] = run_id


URL_CATCH_UP_S = 60.0  # a start the browser has not shown by then is not put back any more


@dataclass
class _Start:
    run_id: str
    before: str | None  # the ``?run=`` of the page whose click started it
    at: float  # time.monotonic()
    shown: bool = False  # a rerun from the browser carried its ``?run=``
    drawn: bool = False  # a page body has run since: its ``?run=`` was the start's own
    redrawn_at: float | None = None  # when the start's own page run ended (``note_page_drawn``)


# Per session: its latest start. A plain dict, not session state: see ``start``.
_starts: dict[str, _Start] = {}
_starts_lock = threading.Lock()


def _session_key() -> str:
    """A key of this browser session, drawn once (its own, not Streamlit's session id, which the
    test harness shares between sessions)."""
    return st.session_state.setdefault("start_key", uuid.uuid4().hex)


def _note_start(key: str, run_id: str, before: str | None) -> None:
    now = time.monotonic()
    with _starts_lock:
        for old in [k for k, v in _starts.items() if now - v.at > URL_CATCH_UP_S]:
            del _starts[old]
        _starts[key] = _Start(run_id, before, now)


def _latest() -> _Start | None:
    key = _session_key()
    with _starts_lock:
        return _starts.get(key)


def last_start(within: float) -> str | None:
    """The run this session started less than ``within`` seconds ago, or whose page, redrawn by the
    start, was done less than ``within`` seconds ago, if any.

    The second clock is the one a burst of clicks follows: a click on the redrawn Start button is
    handled once that page run has ended, which on a loaded server can be seconds after the start
    (seen in a browser test: three clicks 40 ms apart, the third handled 2.9 s after the first's
    start, a second run). Measured from the end of the redraw, it is part of the burst still.
    """
    latest = _latest()
    if latest is None:
        return None
    since = max(latest.at, latest.redrawn_at or latest.at)
    return latest.run_id if time.monotonic() - since < within else None


def note_page_drawn() -> None:
    """Called last by a page with a Start button: the first page run to end after a start is the
    start's own (its callback's rerun), the one that drew the new button (see ``last_start``)."""
    latest = _latest()
    if latest is not None and latest.redrawn_at is None:
        latest.redrawn_at = time.monotonic()


def confirm_shown(run_id: str) -> None:
    """A rerun sent by the browser (a fragment's own tick) carried ``run_id``: its URL has it."""
    ctx = get_script_run_ctx()
    if ctx is None or not ctx.fragment_ids_this_run:
        return
    latest = _latest()
    if latest and latest.run_id == run_id:
        latest.shown = True


def put_back_unshown_start() -> None:
    """Puts back a start that a late click's old URL took off the page (seen in CI: three rapid
    clicks, one run, the page left on /Train without it).

    Only a rerun carrying exactly the URL from before the start is such a click; any other URL is the
    user going somewhere, and the start is forgotten. So is one the browser has shown.
    """
    latest = _latest()
    if latest is None or latest.shown:
        return
    shown = st.query_params.get("run")
    if shown == latest.before and time.monotonic() - latest.at < URL_CATCH_UP_S:
        open_run(latest.run_id)
    elif shown == latest.run_id and not latest.drawn:
        latest.drawn = True  # the page run of the click itself: its URL is the one the start set
    else:
        latest.shown = True  # the browser had it, or the user went elsewhere: never forced back
