"""The Runs page's import: a History JSON, a CSVLogger file or a zipped TensorBoard log folder becomes a
run. The file is read once per upload (by its content), its metrics are shown to pick from, and the
run is stored by ``core.recorded.imports``; no path from the browser is ever opened."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import streamlit as st

from core.config import run_name_problem
from core.data.uploads import display_name
from core.recorded import imports
from core.store.runs import RunStore
from ui.state import remember
from ui.text import md


def _read(data: bytes, source: str) -> imports.Recording | str:
    """The recording, or the message saying why not; kept per upload content for the reruns."""
    cache = st.session_state.setdefault("import_cache", {})
    key = hashlib.sha256(data).hexdigest()
    if key not in cache:
        try:
            cache.clear()  # one upload at a time is enough to remember
            cache[key] = imports.read_file(data, source)
        except imports.RecordingError as exc:
            cache[key] = str(exc)
    return cache[key]


def import_section(store: RunStore, *, expanded: bool) -> None:
    with st.expander("Import a recorded run", expanded=expanded, icon=":material/upload_file:"):
        st.caption(
            "A Keras History saved as JSON (`json.dump(history.history, f)`), a CSVLogger file, or a "
            "TensorBoard log folder zipped with its train/ and validation/ folders. The run shows in "
            "Runs, Compare and What-if; it has no checkpoint."
        )
        generation = st.session_state.setdefault("import_generation", 0)  # a new uploader after an import
        upload = st.file_uploader(
            "Recorded file", type=["json", "csv", "zip"], key=f"import_file.{generation}"
        )
        if upload is None:
            return
        source = display_name(upload.name) or "recording"
        recording = _read(upload.getvalue(), source)
        if isinstance(recording, str):
            st.error(md(recording))
            return
        what = imports.KINDS[recording.kind]
        st.caption(md(f"{what}: {len(recording.epochs):,} epochs."))
        for note in recording.notes:
            st.caption(md(note))
        keys = st.multiselect("Metrics to import", recording.keys, default=recording.keys, key="import_keys")
        name = st.text_input("Run name", value=source, key="import_name", max_chars=200)
        problem = run_name_problem(name)
        if problem is not None:
            st.error(md(f"Run name: {problem}."))
        if not keys:
            st.error("Pick at least one metric.")
        if st.button(
            "Import", key="import_go", disabled=bool(problem or not keys), icon=":material/download:"
        ):
            picked = replace(recording, epochs=[{k: e.get(k) for k in keys} for e in recording.epochs])
            try:
                run_id = imports.import_run(store, picked, name)
            except (imports.RecordingError, OSError) as exc:
                st.error(md(f"Could not import: {exc}"))
                return
            remember(run_id)
            st.session_state["runs_message"] = (
                "success",
                f"Imported {name} ({len(picked.epochs):,} epochs).",
            )
            st.session_state["import_generation"] = generation + 1
            st.rerun()
