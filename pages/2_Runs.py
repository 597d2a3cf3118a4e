"""Runs: the lab notebook. Filter, sort, rename, delete, open, compare."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.import_view import import_section
from ui.nav import page_setup
from ui.notes_view import notes_editor, read_notes
from ui.runs_table import runs_frame, show_runs
from ui.state import get_trainer, visible
from ui.text import md

page_setup("Runs")
st.title("Runs")
trainer = get_trainer()
state = st.session_state


def _show_message() -> None:
    if msg := state.pop("runs_message", None):
        (st.success if msg[0] == "success" else st.error)(md(msg[1]))


index = visible(trainer.list_runs())
if index.empty:
    _show_message()  # e.g. why a rename of the last run, deleted elsewhere, did nothing
    st.info("No runs yet. Start one on the Train page, or import one you recorded.")
    st.page_link("pages/1_Train.py", label="Train", icon=":material/play_arrow:")
    import_section(trainer.store, expanded=True)
    st.stop()
import_section(trainer.store, expanded=False)

frame = runs_frame(index)
frame.insert(0, "id", index["id"].to_numpy())
run_notes = {rid: read_notes(trainer.store.run_dir(rid)) for rid in frame["id"]}  # (notes, problem)
frame.insert(3, "tags", [", ".join(run_notes[rid][0].tags) for rid in frame["id"]])

f1, f2, f3 = st.columns([2, 2, 2])
query = f1.text_input("Search", key="runs_query", placeholder="name, tag or note contains…")
statuses = f2.multiselect("Status", sorted(frame["status"].unique()), key="runs_status")
data_names = f3.multiselect("Dataset", sorted(frame["dataset"].dropna().unique()), key="runs_dataset")
shown = frame
if query:
    in_name = shown["name"].str.contains(query, case=False, regex=False)
    in_notes = shown["id"].map(lambda rid: run_notes[rid][0].matches(query))
    shown = shown[in_name | in_notes]
if statuses:
    shown = shown[shown["status"].isin(statuses)]
if data_names:
    shown = shown[shown["dataset"].isin(data_names)]

durations = (index["finished_at"].fillna(pd.Timestamp.now().timestamp()) - index["started_at"]).round(1)
shown = shown.assign(seconds=durations.loc[shown.index])
show_runs(shown.drop(columns=["id"]), key="runs_table")
st.caption("Click a column header to sort.")
labels = {rid: f"{name} ({rid[:6]})" for rid, name in zip(frame["id"], frame["name"])}
selected = st.multiselect("Select runs to act on", list(labels), key="runs_selected", format_func=labels.get)
names = {rid: frame.loc[frame["id"] == rid, "name"].iloc[0] for rid in selected}

_show_message()
if not selected:
    st.stop()

a1, a2, a3 = st.columns(3)
with a1:
    st.markdown(f"**{len(selected)} selected**")
    if len(selected) >= 2:
        if st.button("Compare", type="primary", key="runs_compare", icon=":material/compare_arrows:"):
            state["compare_ids"] = selected
            st.switch_page("pages/3_Compare.py")
    else:
        st.page_link("pages/1_Train.py", label="Open in the live view", query_params={"run": selected[0]})
        st.page_link("pages/4_What_if.py", label="What-if replay", query_params={"run": selected[0]})
with a2:
    if len(selected) == 1:
        rid = selected[0]

        def _rename(rid: str = rid) -> None:
            try:
                trainer.rename(rid, state[f"rename_{rid}"])
            except ValueError as exc:
                state["runs_message"] = ("error", str(exc))
                return
            except KeyError:  # deleted in another tab since this page was drawn
                state["runs_message"] = (
                    "error",
                    "That run no longer exists (deleted elsewhere): nothing renamed.",
                )
                state["runs_selected"] = []
                return
            state["runs_message"] = ("success", f"Renamed to {state[f'rename_{rid}'].strip()}.")
            state["runs_selected"] = []  # its label in the picker changed: pick it again

        st.text_input("Rename", value=names[rid], key=f"rename_{rid}")
        st.button("Save name", key="runs_rename", on_click=_rename)
        notes_editor(trainer, rid, *run_notes[rid])
with a3:
    confirm = st.checkbox(
        f"Delete {len(selected)} run(s) and their files",
        key="runs_delete_confirm",
        help="This cannot be undone.",
    )
    if st.button("Delete", key="runs_delete", disabled=not confirm, icon=":material/delete:"):
        problems = []
        for rid in selected:
            try:
                trainer.delete(rid)
            except KeyError:
                pass  # deleted elsewhere since this page was drawn: already gone
            except RuntimeError as exc:
                problems.append(str(exc))
        if problems:
            for p in problems:
                st.error(md(p))
        else:
            st.rerun()
