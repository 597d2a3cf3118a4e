"""Compare: validation curves of several runs overlaid, and their configs side by side."""

from __future__ import annotations

import streamlit as st

from core.analysis.compare import common_metrics, config_table, run_label
from core.charts.compare import compare_figure
from ui.chart_view import chart_view
from ui.nav import page_setup
from ui.state import get_trainer, link_problems, linked_run_ids, remember, visible
from ui.text import md

page_setup("Compare")
st.title("Compare runs")
trainer = get_trainer()
state = st.session_state

linked = linked_run_ids("runs")
for rid in linked:  # a shared link grants access to its runs
    if trainer.exists(rid):
        remember(rid)
index = visible(trainer.list_runs())
if index.empty:
    st.info("No runs yet. Start one on the Train page.")
    st.stop()
labels = {rid: f"{name} ({rid[:6]})" for rid, name in zip(index["id"], index["name"])}

# Preselection: from the Runs page, or from a shared link (?runs=id,id): only the link's own runs, and
# what of it cannot be shown is said (never two other runs passed off as the link's).
if "compare_pick" not in state:
    from_link = [r for r in linked if r in labels]
    from_runs_page = state.pop("compare_ids", None)
    if from_runs_page:
        state["compare_pick"] = from_runs_page
    elif st.query_params.get("runs"):
        state["compare_pick"] = from_link
        for problem in link_problems("runs"):
            st.warning(md(problem))
    else:
        state["compare_pick"] = list(index["id"][:2])
elif ids := state.pop("compare_ids", None):
    state["compare_pick"] = ids

picked = st.multiselect("Runs", list(labels), key="compare_pick", format_func=labels.get)
st.query_params["runs"] = ",".join(picked)
if len(picked) < 2:
    st.info("Pick two or more runs to compare.")
    st.stop()

snaps = [trainer.snapshot(rid) for rid in picked]
metrics = common_metrics(snaps)
if not metrics:
    st.warning("These runs have no metric in common yet (a run with no finished epoch logs nothing).")
    st.stop()
default = "val_loss" if "val_loss" in metrics else metrics[0]
metric = st.selectbox("Metric", metrics, index=metrics.index(default), key="compare_metric")
view = chart_view("compare_view")
st.plotly_chart(compare_figure(snaps, metric, view=view), key="compare_chart", width="stretch")
st.caption("★ best epoch (the kept checkpoint) · ✕ early-stopping epoch")

st.subheader("Settings and results")
only_diff = st.toggle("Only what differs", value=True, key="compare_only_diff")
table = config_table(snaps)
shown = table[table["differs"]] if only_diff else table
shown = shown.drop(columns=["differs"]).astype(str).replace({"None": "–"})


def _highlight(row):
    differs = table.loc[row.name, "differs"]
    return ["background-color: #fff3cd" if differs else "" for _ in row]


st.dataframe(shown.style.apply(_highlight, axis=1), width="stretch", key="compare_table")
st.caption("Highlighted rows differ between the runs. " + md(", ".join(run_label(s) for s in snaps)))
