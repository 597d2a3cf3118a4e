"""The table of runs (home page, runs page), built from the store's index."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import streamlit as st

from core.config import RECORDED_NAME, printable
from core.store.runs import STATUS_LABELS, stop_label


def runs_frame(index: pd.DataFrame) -> pd.DataFrame:
    """The index as people read it: one row a run, a link to its live view."""
    if index.empty:
        return pd.DataFrame()

    def test_metric(raw: str | None) -> float | None:
        metrics = json.loads(raw or "{}")
        for key in ("accuracy", "mae", "loss"):
            if key in metrics:
                return metrics[key]
        return None

    frame = pd.DataFrame(
        {
            "open": "Train?run=" + index["id"],
            "name": index["name"],
            "status": index["status"].map(lambda s: STATUS_LABELS.get(s, s)),
            "dataset": [_dataset(name, file) for name, file in zip(index["dataset"], _file_names(index))],
            "model": ["your own (recorded)" if m == RECORDED_NAME else m for m in index["model"]],
            "epochs": index["epochs_run"].fillna(0).astype(int).astype(str)
            + " / "
            + index["max_epochs"].map(lambda n: f"{int(n):,}"),
            "best epoch": index["best_epoch"],
            "monitor": index["monitor"],
            "best value": index["best_value"],
            "test": index["test_metrics"].map(test_metric),
            "stop reason": index["stop_reason"].map(stop_label),
            "started": index["created_at"].map(
                lambda t: datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
            ),
        }
    )
    return frame


def _file_names(index: pd.DataFrame) -> list:
    return list(index["file_name"]) if "file_name" in index else [None] * len(index)


def _dataset(name: str, file_name: object) -> str:
    """csv and text_csv runs with their file's own name: "csv (iris.csv)" (a direction override or
    other invisible character in it shown as an escape, so the name cannot pose as another); a run
    recorded outside the app says so."""
    if name == RECORDED_NAME:
        return "your own (recorded)"
    return f"{name} ({printable(file_name)})" if isinstance(file_name, str) and file_name else name


_COLUMNS = {
    "open": st.column_config.LinkColumn("open", display_text="open"),
    "best value": st.column_config.NumberColumn(format="%.4f"),
    "test": st.column_config.NumberColumn("test metric", format="%.4f"),
    "seconds": st.column_config.NumberColumn("duration (s)", format="%.1f"),
}


def show_runs(frame: pd.DataFrame, *, key: str) -> None:
    """A ``runs_frame`` (or a filtered part of one) as a sortable table with links to each run."""
    if frame.empty:
        st.caption("No runs yet. Start one above: it appears here.")
        return
    st.dataframe(frame, key=key, hide_index=True, width="stretch", column_config=_COLUMNS)
