"""Home page: what the app does, one click to a run, and the recent runs."""

from __future__ import annotations

import streamlit as st

from core.presets import PRESETS
from ui.nav import page_setup
from ui.runs_table import runs_frame, show_runs
from ui.state import get_trainer, start, visible, warm_up_worker

TRAIN_PAGE = "pages/1_Train.py"

page_setup()

st.title("Early Stopping Lab")
st.markdown(
    "Stop guessing `epochs=`: set every parameter of Keras' **EarlyStopping** and **ModelCheckpoint**, "
    "train, and watch live where they stop and which epoch they keep. Then download the best checkpoint, "
    "evaluated on a test split it never saw."
)

trainer = get_trainer()


def _start_quick_run() -> None:
    run = start(PRESETS["quick_digits"].make())
    st.session_state["switch_to_run"] = run.id


def _load_preset(name: str) -> None:
    st.session_state["apply_preset"] = name


c1, c2, c3 = st.columns(3)
with c1:
    st.subheader("Try it now")
    st.caption(PRESETS["quick_digits"].description + " Offline.")
    st.button(
        "Train on digits",
        type="primary",
        icon=":material/play_arrow:",
        on_click=_start_quick_run,
        key="home_quick",
    )
with c2:
    st.subheader("The tutorial")
    st.caption(PRESETS["seed_imdb"].description)
    st.button("Open the IMDB Conv1D example", on_click=_load_preset, args=("seed_imdb",), key="home_seed")
with c3:
    st.subheader("Your own data")
    st.caption("Upload a CSV on the Train page, pick the target column and set the callbacks.")
    st.button("Set up a run", on_click=_load_preset, args=("",), key="home_custom")

if rid := st.session_state.pop("switch_to_run", None):
    st.switch_page(TRAIN_PAGE, query_params={"run": rid})
if "apply_preset" in st.session_state:
    st.switch_page(TRAIN_PAGE)

st.subheader("Recent runs")
if trainer.interrupted:
    st.info(
        f"{len(trainer.interrupted)} run(s) were still training when the server last stopped; they are "
        "marked interrupted, with every finished epoch and their best checkpoint kept."
    )
show_runs(runs_frame(visible(trainer.list_runs())).head(20), key="home_runs")
warm_up_worker()  # last: the page is drawn before the training process starts importing TensorFlow
