"""A run's tags and note on the Runs page: read, edited, saved (core/store/notes.py decides what holds)."""

from __future__ import annotations

import streamlit as st

from core.engine.queue import Trainer
from core.store import notes
from ui.text import md


def read_notes(run_dir) -> tuple[notes.RunNotes, str | None]:
    """The run's notes, or none and why (a damaged or crafted notes.json is reported, never half-used)."""
    try:
        return notes.read(run_dir), None
    except (OSError, ValueError) as exc:
        return notes.RunNotes(), str(exc)


def notes_editor(trainer: Trainer, run_id: str, current: notes.RunNotes, problem: str | None) -> None:
    """Tags (comma-separated) and a note for one run, saved exactly as typed or refused by field."""
    state = st.session_state
    if problem:
        st.warning(md(f"This run's notes cannot be read ({problem}): saving replaces them."))

    def _save() -> None:
        tags = notes.tags_from_text(state[f"tags_{run_id}"])
        note = state[f"note_{run_id}"]
        found = notes.problems(tags, note)
        if found:
            state["runs_message"] = ("error", "Not saved: " + "; ".join(found))
            return
        try:
            notes.write(trainer.store.run_dir(run_id), notes.RunNotes(tuple(tags), note))
        except OSError as exc:
            state["runs_message"] = ("error", f"Not saved: the run's folder cannot be written ({exc}).")
            return
        state["runs_message"] = ("success", "Saved the tags and the note.")

    st.text_input(
        "Tags",
        value=", ".join(current.tags),
        key=f"tags_{run_id}",
        help="Separated by commas; searchable above.",
    )
    st.text_area("Note", value=current.note, key=f"note_{run_id}", height=100, max_chars=notes.MAX_NOTE_CHARS)
    st.button("Save tags and note", key="runs_save_notes", on_click=_save)
