"""Widgets and read-outs of the what-if page; the numbers all come from core.whatif / core.replay."""

from __future__ import annotations

import streamlit as st

from core.analysis import whatif
from core.analysis.compare import common_metrics
from core.charts.whatif import schedule_figure, sweep_figure
from core.config import CheckpointConfig, EarlyStoppingConfig
from core.engine.queue import InvalidConfig, QueueFull, Trainer
from core.stopping import sweeps
from core.store import epoch_weights, run_files
from core.store.runs import RunSnapshot
from ui.form import (
    apply_config,
    checkpoint_rule,
    early_stopping_section,
    format_delta,
    read_config,
    reduce_lr_section,
)
from ui.state import start
from ui.text import md

PREFIX = "wi."
SWEEP_MIN_DELTAS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)


def settings_controls(snap: RunSnapshot) -> tuple[EarlyStoppingConfig, CheckpointConfig]:
    """The Train page's EarlyStopping and ModelCheckpoint widgets, keyed under "wi.", on a copy of
    the run's own settings; read back whole, as the configs the replay takes."""
    state = st.session_state
    if state.get("wi_for") != snap.id:
        apply_config(snap.config, prefix=PREFIX, sections=("early_stopping", "checkpoint", "reduce_lr"))
        # A what-if asks what a rule would have done, so both callbacks start on (a curve recorded
        # without early stopping is the usual thing to replay); every other value is the run's.
        state[PREFIX + "early_stopping.enabled"] = True
        if not snap.config.checkpoint.enabled:
            state[PREFIX + "checkpoint.enabled"] = True
            state[PREFIX + "checkpoint.save_best_only"] = True
        state["wi_for"] = snap.id
    logged = common_metrics([snap]) or ["val_loss"]
    for section in ("early_stopping", "checkpoint", "reduce_lr"):
        if state[f"{PREFIX}{section}.monitor"] not in logged:
            state[f"{PREFIX}{section}.monitor"] = logged[0]

    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**EarlyStopping**")
        early_stopping_section(logged, prefix=PREFIX)
    with c2:
        st.markdown("**ModelCheckpoint**")
        checkpoint_rule(logged, prefix=PREFIX)
    cfg = read_config(prefix=PREFIX, base=snap.config)
    return cfg.early_stopping, cfg.checkpoint


def outcome(snap: RunSnapshot, w: whatif.WhatIf) -> None:
    cols = st.columns(5)
    if w.stopped:
        cols[0].metric("Stops at epoch", f"{w.stop_epoch:,}", help="0-based in Keras: stopped_epoch + 1")
    else:
        cols[0].metric(  # short: a fifth of the page cut "not within the recording" to "not withi..."
            "Stops at epoch",
            f"after {w.epochs_recorded:,}",
            help=f"Not within the {w.epochs_recorded:,} recorded epochs: see the note below.",
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
            md(f"{w.checkpoint.monitor} given up"),  # a logged key; a crafted history.jsonl may hold any
            f"{w.given_up:.5f}",
            help=md(
                f"Kept checkpoint's {w.checkpoint.monitor} {w.value_at_kept:.5f} against the recording's "
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
        try:
            run = start(whatif.full_curve_config(snap, int(epochs)))
        except (InvalidConfig, QueueFull) as exc:  # a full queue, or a run the server cannot take
            c2.error(md(f"Could not start the full curve: {exc}"))
        else:
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


def patience_explorer(snap: RunSnapshot, w: whatif.WhatIf) -> None:
    st.subheader("Patience explorer")
    s = w.early_stopping
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
    st.plotly_chart(sweep_figure(frame, knee, monitor=s.monitor), key="wi_sweep_chart", width="stretch")
    if knee is not None and not bool(knee.get("exceeds_recording", False)):
        st.success(
            f"Suggested: patience {int(knee['patience'])} with min_delta {format_delta(knee['min_delta'])}: "
            f"{int(knee['epochs_run'])} epochs, {s.monitor} {knee['final_value']:.5f} "
            f"({knee['given_up']:.5f} from the recording's best)."
        )
    with st.expander("Table"):
        st.dataframe(frame, hide_index=True, width="stretch", key="wi_sweep_table")


def other_rules(snap: RunSnapshot, es: EarlyStoppingConfig) -> None:
    """Every other registered rule, its widgets drawn from its declared parameters, starting from the
    run's own settings where the run had the rule."""
    st.subheader("Other stopping rules")
    st.caption(
        f"Each rule replayed on {es.monitor} as it would have decided in the run (and, where it needs "
        f"it, on {es.monitor.removeprefix('val_')}). Prechelt's rules read a loss (lower is better). "
        "A rule only decides when to stop; the weights column is the epoch whose weights it would keep."
    )
    defaults = whatif.rule_defaults(snap)
    settings = {}
    for rule in whatif.other_rules():
        label, *cols = st.columns([2, 1, 1])
        label.markdown(f"**{rule.label}**")  # the registry's own text
        label.caption(rule.description)
        params = {}
        for col, p in zip(cols, rule.parameters, strict=False):
            cast = int if p.integer else float
            value = cast(defaults[rule.name][p.name])  # checked: within the range
            params[p.name] = col.number_input(
                p.label, cast(p.low), cast(p.high), value=value,
                step=p.step, help=p.help, key=f"wi_rule.{rule.name}.{p.name}",
                format="%d" if p.integer else "%.6g",
            )  # fmt: skip
        settings[rule.name] = params
    try:
        rows = whatif.rules_table(snap, es, settings)
    except ValueError as exc:  # the monitor's direction is not known (mode auto on an unknown metric)
        st.info(md(exc))
        return
    st.dataframe(rows, hide_index=True, width="stretch", key="wi_rules")


def schedule(snap: RunSnapshot) -> None:
    """ReduceLROnPlateau on the recording, under the run's setting or another, with what it cannot say."""
    st.subheader("ReduceLROnPlateau")
    logged = common_metrics([snap]) or ["val_loss"]
    reduce_lr_section(logged, prefix=PREFIX)
    rl = read_config(prefix=PREFIX, base=snap.config).reduce_lr
    if not rl.enabled:
        st.caption("Turn it on to see where it would lower the learning rate on this recording.")
        return
    try:
        r = whatif.schedule_what_if(snap, rl)
    except ValueError as exc:  # the monitor's direction is not known
        st.info(md(exc))
        return
    recorded = [v if v is not None else float("nan") for v in whatif.series(snap, "learning_rate")]
    if all(v != v for v in recorded):  # no schedule in the run: its rate never changed
        recorded = [r.rates[0]] * len(r.rates)
    n = len(r.rates)
    lowered = [f"{e + 1}" + (f" (to {r.rates[e + 1]:.4g})" if e + 1 < n else "") for e in r.reduced_epochs]
    if lowered:
        st.write(
            md("On this recording, the rate would be lowered at the end of epoch " + ", ".join(lowered) + ".")
        )
    else:
        st.write("On this recording, this setting would never lower the rate.")
    if r.exact_until is not None and r.exact_until < n:
        st.warning(
            md(
                f"Exact up to epoch {r.exact_until}: from epoch {r.exact_until + 1} this setting trains "
                "with another rate than the recording did, and another rate changes the curve. Past that "
                "point the replay reads a curve this setting would not have produced: train with it to know."
            )
        )
    else:
        st.caption("It gives the recording's own rates at every epoch: the replay is exact.")
    st.plotly_chart(
        schedule_figure(snap, recorded, r.rates, r.exact_until or 0), key="wi_schedule", width="stretch"
    )
