"""What-if: replay a recorded run under other stopping settings, instantly and exactly as Keras."""

from __future__ import annotations

import streamlit as st

from core.analysis import whatif
from core.charts.whatif import whatif_figure
from core.store import epoch_weights
from core.store.runs import is_run_id
from ui import whatif_view
from ui.chart_view import chart_view
from ui.nav import page_setup
from ui.state import get_trainer, url_run_id, visible
from ui.text import md

page_setup("What-if")
st.title("What-if replay")
st.caption(
    "Move the settings: the recorded curve is replayed through Keras' own rules (strict float32 comparisons, "
    "ties, NaN, baseline, start_from_epoch), so the answer is what Keras would have done, without retraining."
)
trainer = get_trainer()
state = st.session_state

url_run_id()  # a link to a run grants access to it, in private mode too
index = visible(trainer.list_runs())
recorded = index[index["epochs_run"].fillna(0) > 0]
if recorded.empty:
    st.info("No run has a finished epoch yet. Train one on the Train page, then replay it here.")
    st.stop()
labels = {
    rid: f"{name} ({rid[:6]}, {int(n)} epochs)"
    for rid, name, n in recorded[["id", "name", "epochs_run"]].values
}
wanted = st.query_params.get("run")
if "whatif_run" not in state or (wanted in labels and wanted != state.get("whatif_loaded_from_url")):
    state["whatif_run"] = wanted if wanted in labels else next(iter(labels))
    state["whatif_loaded_from_url"] = wanted
if state["whatif_run"] not in labels:
    state["whatif_run"] = next(iter(labels))
run_id = st.selectbox("Recorded run", list(labels), key="whatif_run", format_func=labels.get)
if wanted and wanted not in labels:  # a link to a run this page cannot replay: say so, then replace it
    if is_run_id(wanted) and trainer.exists(wanted):
        why = f"The run of this link ({wanted[:8]}) has no finished epoch to replay yet"
    else:
        why = "The run of this link does not exist (any more)"
    st.warning(md(f"{why}: showing {labels[run_id]} instead."))
if is_run_id(run_id):
    st.query_params["run"] = run_id
snap = trainer.snapshot(run_id)
if snap.damaged:
    st.warning(
        md(f"This run's stored config is damaged ({snap.damaged}): the controls start from defaults, "
           "not from the settings the run trained with.")
    )  # fmt: skip
if snap.is_live:
    st.info("This run is still training: the replay covers the epochs finished so far.")

early_stopping, checkpoint = whatif_view.settings_controls(snap)
try:
    result = whatif.what_if(snap, early_stopping, checkpoint)
except ValueError as exc:
    st.error(md(exc))
    st.stop()

whatif_view.outcome(snap, result)
view = chart_view("whatif_view")
st.plotly_chart(whatif_figure(snap, result, view), key="whatif_chart", width="stretch")
if result.note:
    st.warning(result.note)
    if snap.config.recorded:  # the app has neither its data nor its model
        st.caption("This run was recorded outside the app: train it longer where it was trained.")
    else:
        whatif_view.record_full_curve(trainer, snap)

kept = epoch_weights.kept_epochs(trainer.store.run_dir(run_id))
whatif_view.epoch_downloads(trainer, snap, result, kept)

st.divider()
whatif_view.patience_explorer(snap, result)
st.divider()
whatif_view.other_rules(snap, early_stopping)
st.divider()
whatif_view.schedule(snap)
