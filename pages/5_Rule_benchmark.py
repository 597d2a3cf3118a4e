"""Rule benchmark: every stopping rule and setting replayed on the user's full curves, side by side."""

from __future__ import annotations

import streamlit as st

from core.analysis.rule_benchmark import MIN_EPOCHS, benchmark, full_curves
from core.charts.rule_benchmark import benchmark_figure
from ui.nav import page_setup
from ui.state import get_trainer, visible

page_setup("Rule benchmark")
st.title("Which stopping rule, on my runs?")
trainer = get_trainer()

st.caption(
    "Each rule and setting is replayed on every full curve you have recorded (a run that trained all its "
    f"epochs, or an imported history, with val_loss on at least {MIN_EPOCHS} epochs): where it would have "
    "stopped, and how much val_loss the model ModelCheckpoint keeps by then gives up against the curve's "
    "best. Lower left is better; the dotted line joins the settings no other beats on both."
)
index = visible(trainer.list_runs())
snaps = [trainer.snapshot(rid) for rid in index["id"]] if not index.empty else []
curves = full_curves(snaps)
if not curves:
    st.info(
        "No full curve yet. Train a run with EarlyStopping off (or open a run on the What if page and press "
        "Record a full curve), or import a history on the Runs page."
    )
    st.stop()

labels = {c.run_id: f"{c.name} ({c.run_id[:6]}, {len(c.val)} epochs)" for c in curves}
picked = st.multiselect(
    "Full curves", list(labels), default=list(labels), format_func=labels.get, key="bench_runs"
)
chosen = [c for c in curves if c.run_id in picked]
if not chosen:
    st.info("Pick at least one curve.")
    st.stop()
epochs = sum(len(c.val) for c in chosen)
with st.spinner(
    f"Replaying every rule on {len(chosen)} curve(s): the forecast fits each of {epochs} epochs once."
):
    frame = benchmark(chosen)
st.plotly_chart(benchmark_figure(frame), key="bench_chart", width="stretch")
best = frame[frame["on the Pareto front"]].sort_values("epochs trained (share)")
st.write(
    f"On these {len(chosen)} curve(s), the Pareto front: "
    + "; ".join(
        f"{r['rule']} ({100 * r['epochs trained (share)']:.0f}% of the epochs, "
        f"{100 * r['val_loss given up (relative)']:.2f}% given up)"
        for _, r in best.iterrows()
    )
    + "."
)
shown = frame.sort_values(["on the Pareto front", "epochs trained (share)"], ascending=[False, True])
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    key="bench_table",
    column_config={
        "epochs trained (share)": st.column_config.NumberColumn(format="percent"),
        "val_loss given up (relative)": st.column_config.NumberColumn(format="percent"),
        "worst given up": st.column_config.NumberColumn(format="percent"),
    },
)
