"""The live view of one run: a fragment that ticks while the run is live, then the summary.

The fragment reads a snapshot each tick and draws it; it never touches the training thread. When
the run ends it asks for one full rerun, so the summary and the (lazy) download buttons are drawn
outside the fragment and the ticking stops.
"""

from __future__ import annotations

import re
import time

import streamlit as st

from core import metrics
from core.analysis import outcome
from core.charts import figures as charts
from core.charts.view import ChartView
from core.config import RunConfig
from core.data import datasets
from core.engine import resume_point
from core.engine.queue import QueueFull, Trainer
from core.export import script as export
from core.export import tensorboard_log
from core.store import run_files
from core.store.runs import RunSnapshot, checkpoint_file_name, has_checkpoint, read_checkpoint
from ui.chart_view import chart_view
from ui.forecast_view import forecast_controls, forecast_shown
from ui.live_chart import live_charts
from ui.state import confirm_shown
from ui.text import md

TICK_SECONDS = 0.5
QUEUED_TICK_SECONDS = 2.0
FIRST_POINT_TICK_SECONDS = 0.25  # until the first epoch is on the chart: it comes ~1 s after Start
STOP_WAIT_SECONDS = 1.0  # a Stop waits this long at most for the fit to return (it takes ~50 ms)
RERUN_RETRY_SECONDS = 5.0
CHART_POINTS = 600  # per series: about one per pixel of a half-width chart, whatever the run length
CONSOLE_LINES = 14  # while live: the newest lines, no scrolling needed
FULL_LOG_LINES = 5000
_METRIC_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
CONSOLE_LINE_CHARS = 2000  # a longer log line (a crafted or damaged log.txt) is shown cut, saying so


def tick_for(snap: RunSnapshot) -> float | None:
    """Seconds between the live view's ticks for a run in this state (None: it has ended).

    Fast until the first epoch is there (a first point ~1 s after Start should not wait for a
    0.5 s tick), slow for runs waiting behind another one (eight waiting tabs must not compete with
    the training run).
    """
    if not snap.is_live:
        return None
    if snap.status == "queued":
        return TICK_SECONDS if snap.queue_position in (None, 1) else QUEUED_TICK_SECONDS
    if snap.epoch == 0 and not snap.fit_ended:
        return FIRST_POINT_TICK_SECONDS
    return TICK_SECONDS


def live_view(trainer: Trainer, run_id: str) -> None:
    _view(trainer, run_id)


def _view(trainer: Trainer | None, run_id: str | None, idle: tuple[RunConfig, str | None] = ()) -> None:
    """One fragment for a run and for the empty frame before one (``idle``): the same fragment, so
    the browser keeps the chart frames when a run starts.

    Only what changes between epochs ticks: the progress, the charts and the console. The header
    (name, status, Stop) and the chart controls are drawn once per full rerun, above the fragment; a
    tick that sees the header's state change asks for that rerun. Each element a tick re-sends costs
    the server CPU (bench/live_view_server_cpu.py): this keeps an open tab's cost low.
    """
    snap = trainer.snapshot(run_id) if trainer is not None else None
    tick = tick_for(snap) if snap is not None else None
    # One block above the fragment, idle or not: the fragment (and the chart frames in it) keeps its
    # place in the page when a run starts, so the browser keeps the frames it drew before Start.
    with st.container():
        if snap is None:
            head, _ = st.columns([5, 1])
            head.caption(IDLE_CAPTION)
        else:
            _header(trainer, snap)
            view = chart_view("live_chart")
            forecast = forecast_controls(snap, "live_chart")

    @st.fragment(run_every=tick)
    def ticking() -> None:
        if trainer is None:
            _draw_idle(*idle)
            return
        now = trainer.snapshot(run_id)
        confirm_shown(run_id)
        _draw(now, view, forecast)
        # A full rerun draws the new header, or the summary (or switches to another tick). Asked for
        # once, and again every few seconds until it happens: a lost request would leave the page live
        # for ever, while a request on every tick makes full reruns interrupt each other under load (and
        # Streamlit then leaves stale elements behind).
        if tick is not None and (tick_for(now) != tick or _header_state(now) != _header_state(snap)):
            asked = st.session_state.setdefault("rerun_asked", {})
            key = f"{run_id}:{_header_state(snap)}:{tick}"
            if time.monotonic() - asked.get(key, -RERUN_RETRY_SECONDS) >= RERUN_RETRY_SECONDS:
                asked[key] = time.monotonic()
                st.rerun()

    ticking()
    if snap is not None and not snap.is_live:
        summary(snap, trainer)


IDLE_CAPTION = "Start a run: its curves, console and downloads appear here."


def idle_view(config: RunConfig, task: str | None) -> None:
    """The live view's empty frame, before any run: the same fragment as a run's, laid out element
    for element as ``_draw`` lays out a live run, so the charts started here are the ones the run
    draws into.

    The charts' frame loads plotly.js (3.6 MB) and draws: about 2.4 s of the renderer's main thread
    for a whole Train page load on this 2-core machine (bench/RESULTS.md, "Suite time"), which used
    to be spent right after Start, competing with the first epoch's training. Now it is spent while
    the user sets up the run.
    """
    _view(None, None, idle=(config, task))


def _draw_idle(config: RunConfig, task: str | None) -> None:
    empty = RunSnapshot(id="", config=config, status="queued", created_at=0.0)
    st.empty()  # where a run shows its progress
    figs = [charts.loss_spec(empty, max_points=CHART_POINTS)]
    if task is not None:
        figs.append(charts.metric_spec(empty, metrics.main_metric(task), max_points=CHART_POINTS))
    live_charts(figs, key="live_charts")


def _resume_offer(trainer: Trainer, snap: RunSnapshot) -> None:
    """A stopped or interrupted run can continue: same stop epoch and best as if never stopped."""
    error = st.session_state.pop("resume_error", None)
    if error:
        st.error(md(error))
    run_dir = trainer.store.run_dir(snap.id)
    reason = resume_point.why_not(snap, run_dir)
    if reason is not None:
        if (
            resume_point.path(run_dir).exists()
            and not snap.is_live
            and not resume_point.is_final(snap.stop_reason)
        ):
            st.warning(md(f"Cannot resume: {reason}"))  # a damaged or crafted resume point
        return
    epoch = resume_point.saved_epoch(run_dir)
    text, button = st.columns([2, 1])  # a fifth of the page cut the label to "Resume from epoch..."
    again = f" ({words})" if (words := resume_point.trained_again(epoch, snap.epoch)) else ""
    text.caption(
        f"This run can continue after epoch {epoch}{again}, with its weights, optimizer, dropout, "
        "early-stopping and checkpoint state: it ends where it would have without the break."
    )
    button.button(
        f"Resume from epoch {epoch}",
        key="resume_run",
        icon=":material/play_arrow:",
        on_click=_resume,
        args=(trainer, snap.id),
        width="stretch",
    )


def _resume(trainer: Trainer, run_id: str) -> None:
    try:
        trainer.resume(run_id)
    except (resume_point.ResumeError, QueueFull) as exc:
        st.session_state["resume_error"] = f"Could not resume: {exc}"


def queue_text(snap: RunSnapshot) -> str:
    """What a queued run waits for. Out of the queue but not yet running, it waits for its training
    process (the first run of a server waits for Keras' import there): no place to show then."""
    pos = snap.queue_position
    if pos is None:
        return "Starting: the training process is getting ready."
    where = "next to start" if pos == 1 else f"position {pos}"
    return f"Waiting in the queue: {where}. Runs train one at a time."


def _header_state(snap: RunSnapshot) -> tuple[str, str | None]:
    """What the header is drawn from (its label, Stop's presence and state): a tick that sees it
    change asks for a full rerun."""
    return snap.status, snap.stop_reason


def _header(trainer: Trainer, snap: RunSnapshot) -> None:
    head, stop_col = st.columns([5, 1])
    # A stop is shown as soon as the fit has returned; the run stays live for its test evaluation.
    label = snap.stop_label if snap.fit_ended else snap.status_label
    head.markdown(f"**{md(snap.config.name)}** · {md(label)} · `{snap.id[:8]}`")
    if snap.is_live and not snap.fit_ended:
        stop_col.button(
            "Stop",
            key="stop_run",
            icon=":material/stop:",
            disabled=snap.status == "stopping",
            on_click=_stop,
            args=(trainer, snap.id),
            width="stretch",
        )


def _draw(snap: RunSnapshot, view: ChartView, forecast_settings: tuple[int, float] | None) -> None:
    if snap.status == "queued":
        st.info(queue_text(snap))
    elif snap.fit_ended or (snap.is_live and snap.evaluation is not None):
        _evaluation_progress(snap)
    elif snap.is_live:
        _progress(snap)
    task_metric = _main_metric(snap)
    forecast = forecast_shown(snap, forecast_settings)
    figs = [charts.loss_spec(snap, max_points=CHART_POINTS, view=view, forecast=forecast)]
    if task_metric:
        figs.append(
            charts.metric_spec(snap, task_metric, max_points=CHART_POINTS, view=view, forecast=forecast)
        )
    if snap.history and "learning_rate" in snap.history[-1].logs:  # ReduceLROnPlateau records it
        rate_view = ChartView(x=view.x)  # its own log axis, never smoothed: the rate is set, not measured
        figs.append(
            charts.metric_spec(
                snap, "learning_rate", max_points=CHART_POINTS, batch_metric=False, view=rate_view
            )
        )
    # A live run brings its charts into view once (below the form at 1400x1000); a finished
    # run opened from a link leaves the page at its top.
    live_charts(figs, key="live_charts", show=snap.id if snap.is_live else None)
    with st.expander("Console", expanded=snap.is_live):
        # The newest lines, unscrolled: a fixed-height box would show the oldest ones first.
        if snap.is_live:
            st.code(_console(snap.log_lines[-CONSOLE_LINES:]) or "(nothing yet)", language=None)
        else:
            st.code(_console(snap.log_lines[-FULL_LOG_LINES:]), language=None, height=320)


def _stop(trainer: Trainer, run_id: str) -> None:
    """Stops the run and waits (at most ``STOP_WAIT_SECONDS``) for its fit to return, so the rerun the
    click makes already shows it stopped, instead of the next tick up to 0.5 s later."""
    trainer.stop(run_id)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline:
        now = trainer.snapshot(run_id)
        if now.fit_ended or not now.is_live:
            return
        time.sleep(0.01)


def _evaluation_progress(snap: RunSnapshot) -> None:
    """The kept checkpoint's test evaluation, batch by batch (the test metrics come when it ends)."""
    done, steps = snap.evaluation or (0, None)
    text = "Evaluating the kept checkpoint on the test split"
    if steps:
        text += f" · batch {done}/{steps}"
    if snap.fit_ended and snap.message:  # how it ended, already known (e.g. stopped by user)
        text = f"{snap.message} {text}"
    st.progress(min(done / steps, 1.0) if steps else 0.0, text=md(text))


def _console(lines: tuple[str, ...]) -> str:
    """Log lines for the console, each at most CONSOLE_LINE_CHARS (and how much more it holds)."""
    n = CONSOLE_LINE_CHARS
    return "\n".join(x if len(x) <= n else f"{x[:n]}… [{len(x) - n:,} more characters]" for x in lines)


def _progress(snap: RunSnapshot) -> None:
    epoch_in_flight = snap.epoch + 1 if snap.status != "stopping" else snap.epoch
    steps = snap.steps_per_epoch or 0
    frac = min(snap.batch / steps, 1.0) if steps else 0.0
    text = f"Epoch {epoch_in_flight:,} (max {snap.max_epochs:,})"
    if steps:
        text += f" · batch {snap.batch}/{steps}"
    es = snap.config.early_stopping
    if es.enabled and snap.history and snap.history[-1].es_wait is not None:
        text += f" · {es.monitor} has not improved for {snap.history[-1].es_wait} of {es.patience} epochs"
    st.progress(frac, text=md(text))


def _main_metric(snap: RunSnapshot) -> str | None:
    """Once per run and session: describing a large text CSV costs ~50 ms, too much for every tick."""
    cache = st.session_state.setdefault("main_metric_by_run", {})
    if snap.config.recorded:  # not one of the app's datasets: the first metric the fit logged
        keys = snap.history[0].logs if snap.history else {}
        return next((k for k in keys if k != "loss" and not k.startswith("val_")), None)
    if snap.id not in cache:
        try:
            cache[snap.id] = metrics.main_metric(datasets.describe(snap.config.data).task)
        except datasets.DatasetError:
            return None
    return cache[snap.id]


def _two_bests(snap: RunSnapshot, k: outcome.Kept) -> str:
    def at(epoch: int | None, monitor: str | None, value: float | None) -> str:
        return f"epoch {epoch}" + (f" ({monitor} {value:.4f})" if value is not None else "")

    if snap.config.early_stopping.restore_best_weights:
        es_use = "the model's final weights (restore_best_weights)"
    else:
        es_use = "not restored: restore_best_weights is off, the model ended with its last epoch"
    es = f"EarlyStopping's best: {at(k.es_epoch, k.es_monitor, k.es_value)}, {es_use}."
    if k.ck_epoch is None:
        ck = "ModelCheckpoint kept no epoch; the test split was evaluated on the final weights."
    else:
        ck = (
            f"ModelCheckpoint kept {at(k.ck_epoch, k.ck_monitor, k.ck_value)}: the checkpoint you download, "
            "and the one evaluated on the test split."
        )
    return f"The two callbacks kept different epochs. {es} {ck} {k.why}"


def summary(snap: RunSnapshot, trainer: Trainer) -> None:
    """Why it stopped, what it kept, how it did on the test split, resume, and the downloads."""
    if snap.status == "failed":
        st.error(md(snap.message or "Failed."))
    elif snap.status == "interrupted" or snap.damaged:  # "config.json is damaged" is no success
        st.warning(md(snap.message or "Interrupted."))
    else:
        st.success(md(snap.message or snap.status_label.capitalize()))
    _resume_offer(trainer, snap)
    epochs = len(snap.history)
    cols = st.columns(4)
    cols[0].metric("Epochs trained", f"{epochs:,}", help=f"of a maximum of {snap.max_epochs:,}")
    kept = outcome.kept(snap)
    if kept.epochs_saved is not None:
        cols[1].metric(
            "Epochs saved", f"{kept.epochs_saved:,}", help="Epochs early stopping spared against the maximum."
        )
    else:
        how = snap.stop_label or snap.status_label
        # The stop reason is read back from the index or summary.json: text, never Markdown.
        cols[1].metric(
            "Epochs saved", "–", help=f"Only early stopping saves epochs; this run ended: {md(how)}."
        )
    if snap.best_epoch is not None and snap.best_value is not None:
        # The monitor was validated before the run, but is read back from the index or summary.json:
        # a metric name as Keras writes them is shown as it is, anything else escaped.
        monitor = snap.monitor if _METRIC_NAME.fullmatch(snap.monitor or "") else md(snap.monitor)
        cols[2].metric(f"Best {monitor}", f"{snap.best_value:.4f}", help=f"at epoch {snap.best_epoch}")
        cols[2].caption(f"epoch {snap.best_epoch}")
    test_key = next((k for k in ("accuracy", "mae", "loss") if k in snap.test_metrics), None)
    if test_key:
        cols[3].metric(f"Test {test_key}", f"{snap.test_metrics[test_key]:.4f}")
        cols[3].caption(md(" · ".join(f"{k} {v:.4f}" for k, v in snap.test_metrics.items())))

    if kept.why is not None:
        st.info(md(_two_bests(snap, kept)), icon=":material/call_split:")

    d1, d2, d3, d4 = st.columns(4)
    problem = run_files.checkpoint_problem(snap.checkpoint_path, trainer.store.run_dir(snap.id))
    if has_checkpoint(snap) and problem is not None:
        d1.warning(md(problem))
    elif has_checkpoint(snap):
        d1.download_button(
            "Best checkpoint" if snap.config.checkpoint.save_best_only else "Last checkpoint",
            data=lambda: read_checkpoint(snap),
            file_name=checkpoint_file_name(snap),
            mime="application/octet-stream",
            on_click="ignore",
            icon=":material/download:",
            key="dl_checkpoint",
            type="primary",
        )
    else:
        d1.caption("No checkpoint was kept.")
    d2.download_button(
        "History CSV",
        data=snap.history_csv,
        file_name=f"{checkpoint_file_name(snap).split('.')[0]}-history.csv",
        mime="text/csv",
        on_click="ignore",
        key="dl_history",
    )
    d2.download_button(
        "TensorBoard logs",
        data=lambda: tensorboard_log.zipped(snap),
        file_name=f"{checkpoint_file_name(snap).split('.')[0]}-tensorboard.zip",
        mime="application/zip",
        on_click="ignore",
        key="dl_tensorboard",
        help="The history as Keras' TensorBoard callback writes it (train/, validation/): unzip, then "
        "tensorboard --logdir .",
    )
    if snap.damaged:
        # The config shown is a stand-in: a config JSON or a script made from it would be another run.
        d3.caption("No config JSON or script: this run's stored config is damaged.")
    elif snap.config.recorded:
        d3.caption("Recorded outside the app: your script is its script (the app has no copy of its data).")
    else:
        d3.download_button(
            "Config JSON",
            data=snap.config.to_json,
            file_name=f"{checkpoint_file_name(snap).split('.')[0]}-config.json",
            mime="application/json",
            on_click="ignore",
            key="dl_config",
        )
        d4.download_button(
            "Keras script",
            data=lambda: export.export_script(snap.config, steps_per_execution=snap.steps_per_execution),
            file_name=export.script_file_name(snap.config),
            mime="text/x-python",
            on_click="ignore",
            key="dl_script",
            help="A standalone script repeating this run in plain Keras: data, model, callbacks, fit, test.",
        )
