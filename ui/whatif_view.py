"""Widgets and read-outs of the what-if page; the numbers all come from core.whatif / core.replay."""

from __future__ import annotations

from dataclasses import asdict, fields

import streamlit as st

from core.analysis import whatif
from core.analysis.compare import common_metrics
from core.engine.queue import Trainer
from core.stopping import sweeps
from core.store import epoch_weights, run_files
from core.store.runs import RunSnapshot
from ui.form import MIN_DELTAS, _fmt, _with
from ui.state import start
from ui.text import md

PREFIX = "wi."
SWEEP_MIN_DELTAS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)


def settings_controls(snap: RunSnapshot) -> whatif.Settings:
    """EarlyStopping and ModelCheckpoint controls, starting from the run's own settings."""
    state = st.session_state
    if state.get("wi_for") != snap.id:
        for key, value in asdict(whatif.settings_from_run(snap)).items():
            state[PREFIX + key] = value
        state[PREFIX + "baseline.on"] = snap.config.early_stopping.baseline is not None
        state[PREFIX + "initial_value_threshold.on"] = (
            snap.config.checkpoint.initial_value_threshold is not None
        )
        state["wi_for"] = snap.id
    logged = common_metrics([snap]) or ["val_loss"]
    n = max(len(snap.history), 1)
    for key in ("monitor", "ck_monitor"):
        if state[PREFIX + key] not in logged:
            state[PREFIX + key] = logged[0]

    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**EarlyStopping**")
        a, b = st.columns(2)
        a.selectbox("Monitor", logged, key=PREFIX + "monitor")
        b.radio("Mode", ["auto", "min", "max"], key=PREFIX + "mode", horizontal=True)
        st.slider("Patience", 0, max(200, n, int(state[PREFIX + "patience"])), key=PREFIX + "patience")
        st.select_slider(
            "min_delta",
            _with(MIN_DELTAS, state[PREFIX + "min_delta"]),
            key=PREFIX + "min_delta",
            format_func=_fmt,
        )
        a, b = st.columns(2)
        a.toggle("Baseline", key=PREFIX + "baseline.on")
        if state[PREFIX + "baseline.on"]:
            if state.get(PREFIX + "baseline") is None:
                state[PREFIX + "baseline"] = 0.0
            b.number_input(
                "Baseline value", format="%.6g", key=PREFIX + "baseline", label_visibility="collapsed"
            )
        a, b = st.columns(2)
        a.number_input("start_from_epoch", 0, 1_000_000, key=PREFIX + "start_from_epoch")
        b.toggle("restore_best_weights", key=PREFIX + "restore_best_weights")
    with c2:
        st.markdown("**ModelCheckpoint** (save_best_only)")
        a, b = st.columns(2)
        a.selectbox("Monitor", logged, key=PREFIX + "ck_monitor")
        b.radio("Mode", ["auto", "min", "max"], key=PREFIX + "ck_mode", horizontal=True)
        a, b = st.columns(2)
        a.toggle("initial_value_threshold", key=PREFIX + "initial_value_threshold.on")
        if state[PREFIX + "initial_value_threshold.on"]:
            if state.get(PREFIX + "initial_value_threshold") is None:
                state[PREFIX + "initial_value_threshold"] = 0.0
            b.number_input(
                "Threshold",
                format="%.6g",
                key=PREFIX + "initial_value_threshold",
                label_visibility="collapsed",
            )
        st.caption("ModelCheckpoint has no min_delta: it keeps any strict improvement.")
    values = {f.name: state.get(PREFIX + f.name) for f in fields(whatif.Settings)}
    if not state[PREFIX + "baseline.on"]:
        values["baseline"] = None
    if not state[PREFIX + "initial_value_threshold.on"]:
        values["initial_value_threshold"] = None
    return whatif.Settings(**values)


def outcome(snap: RunSnapshot, w: whatif.WhatIf) -> None:
    cols = st.columns(5)
    if w.stopped:
        cols[0].metric("Stops at epoch", f"{w.stop_epoch:,}", help="0-based in Keras: stopped_epoch + 1")
    else:
        cols[0].metric(
            "Stops at epoch", "not within the recording", help=f"{w.epochs_recorded} epochs recorded"
        )
    cols[1].metric(
        "Epochs saved",
        f"{w.epochs_saved:,}",
        help="Against the recorded run (negative: the recorded run stopped earlier).",
    )
    cols[2].metric("Model ends with", f"epoch {w.final_weights_epoch}" if w.final_weights_epoch else "–")
    cols[3].metric("Checkpoint kept", f"epoch {w.kept_epoch}" if w.kept_epoch else "none saved")
    if w.given_up is not None:
        cols[4].metric(
            f"{w.settings.ck_monitor} given up",  # a metric the run logged (a selectbox of them)
            f"{w.given_up:.5f}",
            help=md(
                f"Kept checkpoint's {w.settings.ck_monitor} {w.value_at_kept:.5f} against the recording's "
                f"best {w.best_recorded:.5f} (epoch {w.best_recorded_epoch})."
            ),
        )
    recorded = f"The recorded run: {len(snap.history)} epochs, {snap.stop_label or snap.status_label}"
    if snap.best_epoch:
        recorded += f", checkpoint of epoch {snap.best_epoch}"
    st.caption(md(recorded + ". Mode resolves to " + f"{w.mode} / {w.ck_mode}."))


def record_full_curve(trainer: Trainer, snap: RunSnapshot) -> None:
    c1, c2 = st.columns([1, 2])
    epochs = c1.number_input(
        "Epochs to record",
        1,
        snap.max_epochs,
        value=min(snap.max_epochs, max(3 * len(snap.history), 50)),
        key="wi_full_epochs",
    )
    if c2.button("Record a full curve", key="wi_full_curve", icon=":material/timeline:"):
        run = start(whatif.full_curve_config(snap, int(epochs)))
        st.switch_page("pages/1_Train.py", query_params={"run": run.id})
    c2.caption(
        "Same data, model and seed, early stopping off, every epoch's weights kept: then replay anything."
    )


def epoch_downloads(trainer: Trainer, snap: RunSnapshot, w: whatif.WhatIf, kept: list[int]) -> None:
    """The models this setting would have given, when the run kept every epoch's weights."""
    if not kept:
        st.caption(
            "To download the model any setting would keep, train with **Keep every epoch's weights** on "
            "(ModelCheckpoint section of the Train page)."
        )
        return
    run_dir = trainer.store.run_dir(snap.id)
    c1, c2 = st.columns(2)
    for col, epoch, what in (
        (c1, w.kept_epoch, "kept checkpoint"),
        (c2, w.final_weights_epoch, "final weights"),
    ):
        if epoch and epoch in kept:
            if (problem := run_files.epoch_model_problem(run_dir, epoch)) is not None:
                col.warning(md(problem))
                continue
            col.download_button(
                f"Download the {what} (epoch {epoch})",
                data=lambda e=epoch: epoch_weights.model_bytes(run_dir, e),
                file_name=f"{snap.config.name}-epoch{epoch}.keras",
                on_click="ignore",
                key=f"wi_dl_{what}",
                icon=":material/download:",
            )


def patience_explorer(snap: RunSnapshot, s: whatif.Settings, w: whatif.WhatIf) -> None:
    st.subheader("Patience explorer")
    values = whatif.series(snap, s.monitor)
    top = st.slider("Patience up to", 5, 200, value=min(200, max(30, len(values))), key="wi_sweep_max")
    frame = sweeps.patience_sweep(
        values,
        mode=w.mode,
        patiences=range(top + 1),
        min_deltas=SWEEP_MIN_DELTAS,
        baseline=s.baseline,
        start_from_epoch=s.start_from_epoch,
        restore_best_weights=True,
        recording_complete=w.recording_complete,
    )
    knee = sweeps.suggest_knee(frame)
    st.plotly_chart(
        whatif.sweep_figure(frame, knee, monitor=s.monitor), key="wi_sweep_chart", width="stretch"
    )
    if knee is not None and not bool(knee.get("exceeds_recording", False)):
        st.success(
            f"Suggested: patience {int(knee['patience'])} with min_delta {_fmt(knee['min_delta'])}: "
            f"{int(knee['epochs_run'])} epochs, {s.monitor} {knee['final_value']:.5f} "
            f"({knee['given_up']:.5f} from the recording's best)."
        )
    with st.expander("Table"):
        st.dataframe(frame, hide_index=True, width="stretch", key="wi_sweep_table")


def prechelt_rules(snap: RunSnapshot, s: whatif.Settings) -> None:
    st.subheader("Other stopping rules (Prechelt, 1998)")
    st.caption(
        "GL: stop when the validation loss is alpha % above its best so far. PQ: stop when that loss "
        "relative to training progress over strips of k epochs exceeds alpha. UP: stop after s successive "
        "strips with a rising validation loss. They need loss-like (lower is better) curves."
    )
    train_key = s.monitor.removeprefix("val_")
    val = whatif.series(snap, s.monitor)
    train = whatif.series(snap, train_key)
    c1, c2, c3 = st.columns(3)
    alpha_gl = c1.number_input("GL alpha (%)", 0.1, 1000.0, value=5.0, key="wi_gl")
    alpha_pq = c2.number_input("PQ alpha", 0.1, 1000.0, value=1.0, key="wi_pq")
    strips = c3.number_input("UP s (strips)", 1, 50, value=3, key="wi_up")
    try:
        rows = whatif.prechelt_table(val, train, gl_alpha=alpha_gl, pq_alpha=alpha_pq, up_s=int(strips))
    except ValueError as exc:
        st.info(md(exc))
        return
    st.dataframe(rows, hide_index=True, width="stretch", key="wi_prechelt")
