"""Train: set the data, the model and every EarlyStopping / ModelCheckpoint parameter, start, watch."""

from __future__ import annotations

import streamlit as st

from core import backends, metrics
from core.config import MAX_JSON_BYTES, RunConfig, errors, parse_json
from core.engine.queue import InvalidConfig, QueueFull
from core.presets import PRESETS
from core.validate import validate
from ui import form
from ui.live_view import idle_view, live_view
from ui.nav import page_setup
from ui.state import (
    URL_CATCH_UP_S,
    get_trainer,
    last_start,
    note_page_drawn,
    open_run,
    put_back_unshown_start,
    start,
    url_run_id,
    warm_up_worker,
)
from ui.text import md

page_setup("Train")
trainer = get_trainer()
state = st.session_state

# A preset chosen on the home page, or the settings this tab had before it visited another page
# (Streamlit forgets the values of widgets that were not drawn on the last page).
if (preset := state.pop("apply_preset", None)) is not None:
    form.apply_config(PRESETS[preset].make() if preset else PRESETS["quick_digits"].make())
elif "data.name" not in state:
    if "last_config" in state:
        form.apply_config(state["last_config"])
    elif opened := url_run_id():  # a shared link: start from that run's settings
        snap = trainer.snapshot(opened)
        own = not (snap.damaged or snap.config.recorded)
        form.apply_config(snap.config if own else PRESETS["quick_digits"].make())
        if snap.config.recorded and not snap.damaged:
            headline = "That run was recorded outside the app: the settings here are the defaults."
            state["import_message"] = ("warning", headline, [])
        if snap.damaged:  # its config is a stand-in: never pass it off as the run's settings
            headline = (
                "This run's stored config is damaged: the settings here are the defaults, not the run's."
            )
            state["import_message"] = ("warning", headline, [snap.damaged])
    else:
        form.apply_config(PRESETS["quick_digits"].make())


def _load(config: RunConfig) -> None:
    """Loads settings into the form, pending until a page run has drawn them all (see ``_start``)."""
    form.apply_config(config)
    state["pending_config"] = config


def _apply_preset() -> None:
    _load(PRESETS[state["preset_choice"]].make())


def _load_json(data: bytes, source: str) -> None:
    """A config JSON from the browser: loaded exactly as given, or refused with every problem named."""
    config, problems = parse_json(data)
    if config is None:
        lines = [f"{source}:", *(p.message for p in problems)]
        state["import_message"] = ("error", "The config was not loaded; nothing changed.", lines)
        return
    _load(config)
    state["import_message"] = ("success", "Loaded the config.", [source])


def _import_config() -> None:
    upload = state.get("config_upload")
    if upload is not None:
        _load_json(upload.getvalue(), upload.name)


def _paste_config() -> None:
    _load_json((state.get("config_paste") or "").encode("utf-8", "surrogatepass"), "pasted text")


# ---------------------------------------------------------------------------------------------
# Sidebar: where the data and the model come from.
with st.sidebar:
    st.header("Start from")
    st.selectbox("Preset", list(PRESETS), key="preset_choice", format_func=lambda n: PRESETS[n].label)
    st.caption(PRESETS[state["preset_choice"]].description)
    st.button("Load preset", on_click=_apply_preset, key="load_preset", width="stretch")
    st.file_uploader("or a config JSON", type=["json"], key="config_upload", on_change=_import_config)
    with st.expander("or paste a config JSON"):
        st.text_area("Config JSON", key="config_paste", height=140, max_chars=MAX_JSON_BYTES)
        st.button("Load pasted config", on_click=_paste_config, key="load_paste", width="stretch")
    # One slot whether or not there is a message: what follows keeps its place in the page, so a rerun
    # after an import never shows the old sidebar below the new one while it redraws.
    message_slot = st.container()
    if msg := state.pop("import_message", None):
        kind, headline, lines = msg
        # Problems quote what the user sent: plain text, never Markdown.
        {"success": message_slot.success, "warning": message_slot.warning}.get(kind, message_slot.error)(
            headline
        )
        if lines:
            message_slot.text("\n".join(lines))
    st.header("Data")
    info = form.data_section(trainer.store.root / "uploads")
    st.header("Model")
    form.model_section(info, trainer.store.root / "uploads")
    st.header("Training")
    form.fit_section()

# ---------------------------------------------------------------------------------------------
# Main: the two callbacks, the start button, the live view.
st.title("Train")
config = form.read_config()
problems = validate(config, task=info.task, input_kind=info.input_kind) if info else validate(config)
if (backend_problem := trainer.backend_problem(config)) is not None:  # thread mode, another backend
    problems.append(backend_problem)
task = info.task if info else None
logged = metrics.logged_metrics(task, config.fit.validation_split > 0) if task else ["loss", "val_loss"]

form.show_problems(problems, "data", "model", "fit")
es_col, ck_col = st.columns(2)
with es_col:
    st.subheader("EarlyStopping")
    form.early_stopping_section(logged)
    form.show_problems(problems, "early_stopping")
    st.subheader("More stopping rules")
    form.rules_section(logged)
    form.show_problems(problems, "stopping_rules")
with ck_col:
    st.subheader("ModelCheckpoint")
    form.checkpoint_section(logged, info)
    form.show_problems(problems, "checkpoint")
    st.subheader("ReduceLROnPlateau")
    form.reduce_lr_section(logged)
    form.show_problems(problems, "reduce_lr")

config = form.read_config()  # the sections above may have changed it
state["last_config"] = config
blocking = errors(problems)


START_REPEAT_S = 1.5  # a click this soon after a start is part of the same burst of clicks


def _start(generation: int) -> None:
    """One click, one run: ``generation`` is the Start button's token from the page run that drew it.

    A double-click sends the second click before the page has redrawn, so it carries the token of a
    button that has already started a run (and the button's key changes with each start, so the
    browser's stale button is another widget): it is ignored. A page that redraws fast can show the
    new button before a third rapid click lands (seen in Chromium: 3 clicks 40 ms apart started two
    runs), so a click within ``START_REPEAT_S`` of a start is ignored too.

    An ignored click still opens the run its burst started: the browser sends its URL with every
    click, and one sent before the first start's ``?run=`` arrived would take the run off the page
    (seen in CI: three rapid clicks, one run, the page left on /Train without it).
    """
    stale = generation != state.get("start_generation", 0)
    if stale or last_start(within=START_REPEAT_S) is not None:
        if (started := last_start(within=URL_CATCH_UP_S)) is not None:
            open_run(started)
        return
    if (pending := state.get("pending_config")) is not None:
        # Start was pressed before the page had shown the settings just loaded: the browser sent its
        # old values of the widgets it had not redrawn yet. Put the loaded ones back; start nothing.
        form.apply_config(pending)
        state["start_error"] = (
            "The settings you loaded were still appearing: check them, then press Start again."
        )
        return
    state["start_generation"] = generation + 1  # before starting: a click racing this one is stale
    try:
        run = start(form.read_config())  # noted for this session before any other Streamlit call
    except (InvalidConfig, QueueFull) as exc:
        state["start_error"] = str(exc)
        return
    open_run(run.id)


c1, c2, _ = st.columns([2, 2, 3])
c1.text_input("Run name", key="name")
generation = state.setdefault("start_generation", 0)
c2.button(
    "Start training",
    type="primary",
    icon=":material/play_arrow:",
    disabled=bool(blocking),
    on_click=_start,
    args=(generation,),
    key="start" if generation == 0 else f"start.{generation}",
    width="stretch",
    help="Fix the problems shown above first."
    if blocking
    else "Trains in the background; this page stays live.",
)
form.show_problems(problems, "name")  # an empty, blank or too long name disables Start: say why
state.pop("pending_config", None)  # every setting has been drawn: Start may use what the page shows
if err := state.pop("start_error", None):
    st.error(md(err))

# A late click whose button was already gone from the page (its run was complete) is dropped by
# Streamlit without calling ``_start``: the page body puts the run back.
put_back_unshown_start()

st.divider()
run_id = url_run_id()
if run_id:
    live_view(trainer, run_id)
elif st.query_params.get("run"):
    st.warning("That run does not exist (any more). Start a new one above, or pick one on the home page.")
else:
    idle_view(config, task)
# The training process of the backend this form's run would use (a first visit that lands here, a
# shared link, warms it up too; choosing JAX warms a JAX worker before Start).
warm_up_worker(backends.resolve(config.fit.backend, config.model.name))
note_page_drawn()  # last: a click within START_REPEAT_S of the end of a start's own page run is its burst
