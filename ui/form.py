"""The Train page's settings: widgets keyed by config path, read back into a RunConfig.

A widget's key is the dotted path of the setting it edits ("early_stopping.patience"), so a config
(a preset, an imported JSON, an earlier run) is applied by writing those keys, the page's problems
from ``validate()`` land next to the widget with the same path, and the form is read back with
``read_config``. The page only lays widgets out; core/ decides what is valid.
"""

from __future__ import annotations

import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from core import backends, metrics
from core.config import (
    CHECKPOINT_FORMATS,
    OPTIMIZERS,
    Backend,
    CsvFormat,
    Problem,
    RunConfig,
    limits,
    takes_auto,
    unchecked,
)
from core.data import datasets, uploads
from core.models import MODELS, estimate_params
from core.models.keras_file import ModelFileError
from core.models.knobs import KNOBS
from core.store import epoch_weights
from ui import rules_form
from ui.text import md

MIN_DELTAS = [0.0, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
LEARNING_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
OPTIONAL = {  # settings that may be None: a toggle "<key>.on" beside the number
    "data.max_samples",
    "early_stopping.baseline",
    "checkpoint.initial_value_threshold",
}
SECTIONS = ("data", "model", "fit", "early_stopping", "checkpoint", "reduce_lr")


def _paths(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out.update(_paths(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def apply_config(cfg: RunConfig, *, prefix: str = "", sections: tuple[str, ...] = SECTIONS) -> None:
    """Puts a config into the widgets (call before they are drawn, e.g. in an on_click).

    ``prefix``: the key prefix of a second set of the same widgets (the what-if's "wi."), which
    edits a copy of ``sections`` of a config without touching the Train page's.
    """
    state = st.session_state
    for path, value in _paths(cfg).items():
        if path != "name" and path.split(".")[0] not in sections:
            continue
        key = prefix + path
        if path in OPTIONAL:
            state[f"{key}.on"] = value is not None
            if value is not None:
                state[key] = value
        else:
            state[key] = value
    if not prefix:  # the Train page's rules (the what-if replays a run's own, from its config)
        rules_form.apply_rules(cfg.stopping_rules)
    state.setdefault(prefix + "data.max_samples", 1000)
    state.setdefault(prefix + "early_stopping.baseline", 0.0)
    state.setdefault(prefix + "checkpoint.initial_value_threshold", 0.0)


def read_config(*, prefix: str = "", base: RunConfig | None = None) -> RunConfig:
    """The config the widgets describe now; a setting with no widget under ``prefix`` is ``base``'s."""
    state = st.session_state
    defaults = _paths(base or RunConfig())
    data: dict[str, Any] = {}
    for path, default in defaults.items():
        key = prefix + path
        if path in OPTIONAL and not state.get(f"{key}.on", default is not None):
            value = None
        else:
            value = state.get(key, default)
        node = data
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    if not prefix:
        data["stopping_rules"] = rules_form.read_rules()
    return unchecked(data)


def show_problems(problems: list[Problem], *prefixes: str) -> None:
    """The problems whose field starts with one of ``prefixes``, right where the widgets are.

    Always one container, however many problems: the widgets after it keep their places in the page,
    so while a rerun redraws, the browser never shows an old widget (a second Start button) beside
    its new self.
    """
    box = st.container()
    for p in problems:
        if any(
            p.field == pre or p.field.startswith(pre + ".") or p.field.startswith(pre) for pre in prefixes
        ):
            (box.error if p.severity == "error" else box.warning)(md(p.message), icon=None)


def _number(where, label: str, path: str, *, prefix: str = "", **kwargs: Any) -> None:
    """A number input whose range is the declaration's (core.config), so every valid value shows as is."""
    b = limits(path)
    cast = int if b.integer else float
    low = None if b.low is None else cast(b.low)
    if b.exclusive_low and low is not None:
        low = None  # no widget bound for "above 0"; validate() reports 0
    where.number_input(
        label, min_value=low, max_value=None if b.high is None else cast(b.high), key=prefix + path, **kwargs
    )


def _slider(where, label: str, path: str, **kwargs: Any) -> None:
    b = limits(path)
    where.slider(label, float(b.low), float(b.high), key=path, **kwargs)


def _with(options: list[float], value: float | None) -> list[float]:
    if value is None or value in options:
        return options
    return sorted({*options, value})


def format_delta(v: float) -> str:
    return "0" if v == 0 else f"{v:g}"


# ------------------------------------------------------------------------------------------------
# Sections


def data_section(uploads_dir: Path) -> datasets.DatasetInfo | None:
    """Dataset choice, CSV upload with preview and target picker; returns what validation needs."""
    state = st.session_state
    names = list(datasets.DATASETS)
    st.selectbox(
        "Dataset",
        names,
        key="data.name",
        format_func=lambda n: datasets.DATASETS[n].label,
        help="Built-in and generated sets work offline; Keras' own download on first use.",
    )
    spec = datasets.DATASETS[state["data.name"]]
    st.caption(spec.description)
    if spec.source == "csv":
        _csv_inputs(uploads_dir, text=spec.name == "text_csv")
    elif spec.source in ARRAY_UPLOADS:
        _array_inputs(uploads_dir, spec)
    else:
        state.pop("data.task", None)  # a task override applies to CSV files only
        _split_mode("random")  # so do a split column and a test file
    if spec.source == "keras":
        _keras_availability(spec.name)
    if spec.input_kind == "sequence" or spec.name == "text_csv":
        c1, c2 = st.columns(2)
        _number(c1, "Vocabulary (words)", "data.num_words", step=500)
        _number(c2, "Sequence length", "data.maxlen", step=50)
        _padding_choice(spec)
    else:
        state.pop("data.truncating", None)  # cutting and padding apply to texts only
        state.pop("data.padding", None)
    # Full width: in half the sidebar the label was cut to "Limit ..." (seen at 1400x1000).
    st.toggle("Limit rows", key="data.max_samples.on", help="Train on a seeded subsample: faster tinkering.")
    if state.get("data.max_samples.on"):
        _number(st, "Rows", "data.max_samples", step=100)
    if spec.source != "keras":
        _test_share()
    try:
        return datasets.describe(read_config().data, uploads_dir=uploads_dir)
    except datasets.DatasetError:
        return None  # validate() reports it


DECIMALS = {".": "point (1.5)", ",": "comma (1,5)"}


def _csv_inputs(uploads_dir: Path, *, text: bool) -> None:
    """Upload (stored by content id), the reading choices, what was found, the columns to use."""
    state = st.session_state
    upload = st.file_uploader("CSV file", type=["csv"], key="csv_upload")
    if upload is not None and state.get("csv_upload_seen") != upload.file_id:
        try:
            upload_id = uploads.store(upload.getvalue(), uploads_dir)
        except OSError as exc:
            st.error(md(f"Could not keep the upload in the runs folder: {exc.strerror or exc}."))
            return
        state["csv_upload_seen"] = upload.file_id
        if state.get("data.upload") != upload_id:  # a new file: read it the default way first
            state["data.upload"] = upload_id
            state.update(_paths(CsvFormat(), "data.csv."))
            state.pop("data.target_column", None)
            state.pop("data.text_column", None)
        state["data.file_name"] = uploads.display_name(upload.name)
    upload_id = state.get("data.upload")
    if not upload_id:
        st.info(
            "Upload a CSV: one row per sample, a header row, numeric feature columns and a target column."
        )
        return
    name = state.get("data.file_name") or datasets.file_label(read_config().data)
    skip = limits("data.csv.skip_rows")
    st.number_input(
        "Lines to skip",
        int(skip.low or 0),
        int(skip.high or 100),
        key="data.csv.skip_rows",
        help="Lines before the header row (or the first data row): a title, or a metadata line.",
    )
    st.toggle(
        "First row names the columns", key="data.csv.header", help="Off: the columns are named column 1..N."
    )
    c1, c2 = st.columns(2)
    c1.selectbox(
        "Delimiter", list(datasets.DELIMITER_NAMES), key="data.csv.delimiter",
        format_func=datasets.DELIMITER_NAMES.get,
    )  # fmt: skip
    c2.selectbox("Decimal separator", list(DECIMALS), key="data.csv.decimal", format_func=DECIMALS.get)
    try:
        table = datasets.read_upload(upload_id, read_config().data.csv, uploads_dir)
    except datasets.DatasetError as exc:
        st.error(md(f"{name}: {exc}"))
        for label, values in exc.fixes:
            st.button(label, key=f"csv_fix.{label}", on_click=_apply_fix, args=(values,), type="primary")
        return
    frame = table.frame
    st.caption(md(" ".join([f"{name}: {len(frame):,} rows, {frame.shape[1]} columns.", *table.notes])))
    st.dataframe(frame.head(5), hide_index=True, height=150, key="csv_preview")
    columns = [str(c) for c in frame.columns]
    if state.get("data.target_column") not in columns:  # a new file: the defaults, shown to change
        guess = datasets.split_column_guess(frame)  # a column naming train / test rows: offered first
        if guess is not None and len(columns) > 2 and not state.get("data.test_upload"):
            state["data.split_column"] = guess
        rest = [c for c in columns if c != state.get("data.split_column")]
        state["data.target_column"] = rest[-1]
    if text:
        if state.get("data.text_column") not in columns:
            state["data.text_column"] = columns[0]
        st.selectbox("Text column", columns, key="data.text_column")
    st.selectbox("Target column", columns, key="data.target_column")
    st.selectbox(
        "Task",
        [None, *metrics.TASKS],
        key="data.task",
        format_func=lambda t: "infer from the target" if t is None else t,
    )
    _split_inputs(uploads_dir, frame, columns)


SPLIT_MODES = {
    "random": "random (test share)",
    "column": "a column names each row's part",
    "file": "a second file is the test set",
}
PART_NAMES = ("train", "validation", "test")
_SPLIT_GUESSES = ("split", "part", "set", "subset", "fold")  # a column likely to name the parts


def _split_mode(mode: str) -> None:
    """Switch how the test set is chosen; the settings of the other ways are cleared."""
    state = st.session_state
    state["csv_split_mode"] = mode
    state["csv_split_pick"] = mode == "column"  # the page picks a column on its next draw
    if mode != "column":
        state["data.split_column"] = None
    if mode != "file":
        state["data.test_upload"] = None
        state["data.test_file_name"] = None
        state.pop("csv_test_upload_seen", None)  # back to "file": the uploader's file applies again


def _split_inputs(uploads_dir: Path, frame, columns: list[str]) -> None:
    """Random split, a split column (with the rows it names per part) or a second file as the test set."""
    state = st.session_state
    # The mode follows the settings (a preset or an imported config may have set them).
    just_picked = state.pop("csv_split_pick", False)
    if state.get("data.split_column"):
        state["csv_split_mode"] = "column"
    elif state.get("data.test_upload"):
        state["csv_split_mode"] = "file"
    elif state.get("csv_split_mode") not in ("random", "file") and not just_picked:
        state["csv_split_mode"] = "random"
    st.radio(
        "Split",
        list(SPLIT_MODES),
        key="csv_split_mode",
        format_func=SPLIT_MODES.get,
        horizontal=True,
        on_change=lambda: _split_mode(state["csv_split_mode"]),
        help="Your own test set: the kept checkpoint is evaluated on exactly those rows.",
    )
    mode = state["csv_split_mode"]
    if mode == "column":
        _split_column_inputs(frame, columns)
    elif mode == "file":
        _test_file_inputs(uploads_dir)


def _split_column_inputs(frame, columns: list[str]) -> None:
    state = st.session_state
    taken = {state.get("data.target_column"), state.get("data.text_column")}
    options = [c for c in columns if c not in taken]
    if not options:
        st.warning("Every column is in use: add a column naming each row's part (train / validation / test).")
        return
    if state.get("data.split_column") not in options:
        guesses = [c for c in options if c.strip().casefold() in _SPLIT_GUESSES]
        state["data.split_column"] = (guesses or options)[0]
    st.selectbox(
        "Split column",
        options,
        key="data.split_column",
        help="Each row says train, test or validation (also val), in any case; it is not a feature.",
    )
    try:
        _, part = datasets.split_by_column(frame, read_config().data)
    except datasets.DatasetError:
        return  # validate() names the values it refuses
    counts = datasets.part_counts(part) or (0, 0, 0)
    st.caption(
        md(
            f"{state['data.split_column']}: "
            + ", ".join(f"{name} {n:,} rows" for name, n in zip(PART_NAMES, counts) if n)
            + "."
        )
    )
    if counts[1]:
        st.caption(
            "The validation rows are the validation data: the validation split share is not used "
            "(it must stay above 0, or there is no validation)."
        )


def _test_file_inputs(uploads_dir: Path) -> None:
    state = st.session_state
    upload = st.file_uploader("Test set CSV (the same columns)", type=["csv"], key="csv_test_upload")
    if upload is not None and state.get("csv_test_upload_seen") != upload.file_id:
        try:
            state["data.test_upload"] = uploads.store(upload.getvalue(), uploads_dir, ".csv")
        except OSError as exc:
            st.error(md(f"Could not keep the upload in the runs folder: {exc.strerror or exc}."))
            return
        state["csv_test_upload_seen"] = upload.file_id
        state["data.test_file_name"] = uploads.display_name(upload.name)
    test_id = state.get("data.test_upload")
    if not test_id:
        st.info("Upload the test set: a CSV with the same columns. Until then the split is random.")
        return
    name = state.get("data.test_file_name") or "the test file"
    try:
        rows = len(datasets.read_upload(test_id, read_config().data.csv, uploads_dir).frame)
    except datasets.DatasetError:
        return  # validate() says what is wrong with it
    st.caption(md(f"{name}: {rows:,} test rows, read like the training file."))


def _test_share() -> None:
    """The test share slider; disabled, with the reason, when the data names the test rows."""
    state = st.session_state
    given = state.get("data.split_column") or state.get("data.test_upload")
    _slider(
        st,
        "Test share",
        "data.test_fraction",
        step=0.05,
        help="Held out for the final test.",
        disabled=bool(given),
    )
    if given:
        what = "split column" if state.get("data.split_column") else "test file"
        st.caption(f"Not used: the {what} names the test rows.")


def _padding_choice(spec) -> None:
    """Which end of a long text is kept and where a short one is padded (data.truncating / padding)."""
    state = st.session_state
    n = state.get("data.maxlen", 400)
    ways = {
        "pre": f"Keep the last {n} tokens, pad at the front (as the tutorial / pad_sequences)",
        "post": f"Keep the first {n} tokens, pad at the end",
    }
    truncating = state.get("data.truncating") or spec.default_pad
    padding = state.get("data.padding") or spec.default_pad
    if truncating == padding:
        state["data_pad_way"] = truncating
    else:  # a config set them apart: shown as it is, until a choice here
        ways["mixed"] = f"truncating {truncating}, padding {padding} (as the config says)"
        state["data_pad_way"] = "mixed"

    def chosen() -> None:
        way = state["data_pad_way"]
        if way in ("pre", "post"):
            state["data.truncating"] = state["data.padding"] = way

    st.radio("Long and short texts", list(ways), key="data_pad_way", format_func=ways.get, on_change=chosen)


# Uploads of arrays and images: (stored suffix, uploader file type, the uploader's label, what to upload).
ARRAY_UPLOADS = {
    "npz": (
        ".npz",
        "npz",
        ".npz file",
        "Upload an .npz saved with numpy.savez: x and y, or x_train and y_train.",
    ),
    "images": (".zip", "zip", "Zip of class folders", "Upload a .zip with one folder of images per class."),
}


def _array_inputs(uploads_dir: Path, spec: datasets.DatasetSpec) -> None:
    """Upload (stored by content id), what was found (or what is wrong, with its fix), the settings."""
    state = st.session_state
    suffix, kind, label, ask = ARRAY_UPLOADS[spec.source]
    key = f"{spec.source}_upload"
    upload = st.file_uploader(label, type=[kind], key=key)
    if upload is not None and state.get(f"{key}_seen") != upload.file_id:
        try:
            upload_id = uploads.store(upload.getvalue(), uploads_dir, suffix)
        except OSError as exc:
            st.error(md(f"Could not keep the upload in the runs folder: {exc.strerror or exc}."))
            return
        state[f"{key}_seen"] = upload.file_id
        if state.get("data.upload") != upload_id:
            state["data.upload"] = upload_id
            state.pop("data.task", None)
        state["data.file_name"] = uploads.display_name(upload.name)
    upload_id = state.get("data.upload")
    if upload_id and not _stored(upload_id, uploads_dir, suffix) and _stored_as_other(upload_id, uploads_dir):
        upload_id = None  # the upload of another kind of dataset (a CSV): this one needs its own file
    if not upload_id:
        state.pop("data.upload", None)
        state.pop("data.file_name", None)
        st.info(ask)
        return
    if spec.source == "images":
        c1, c2 = st.columns(2)
        _number(
            c1, "Image size (pixels)", "data.image_size", step=8, help="Each image is resized to this square."
        )
        c2.radio("Colours", ["rgb", "grayscale"], key="data.color_mode", horizontal=True)
    name = state.get("data.file_name") or "your file"
    found = st.container()  # what the file holds, above the task (which stays reachable on an error)
    if spec.source == "npz":
        st.selectbox(
            "Task",
            [None, *metrics.TASKS],
            key="data.task",
            format_func=lambda t: "infer from the labels" if t is None else t,
        )
    else:
        state.pop("data.task", None)  # image folders are classes: binary or multiclass, by their count
    cfg = read_config().data
    try:
        info = datasets.describe(cfg, uploads_dir=uploads_dir)
    except datasets.DatasetError as exc:
        found.error(md(f"{name}: {exc}"))
        for fix_label, values in exc.fixes:
            found.button(
                fix_label, key=f"array_fix.{fix_label}", on_click=_apply_fix, args=(values,), type="primary"
            )
        return
    found.caption(md(f"{name}: {datasets.upload_summary(cfg, uploads_dir)}"))
    if "x_test" in info.columns:
        found.caption(
            "The file's own test part (x_test, y_test) is the test split: the test share is unused."
        )


def _stored(upload_id: str, uploads_dir: Path, suffix: str) -> bool:
    try:
        return uploads.path_of(upload_id, uploads_dir, suffix).is_file()
    except uploads.UploadError:
        return False


def _stored_as_other(upload_id: str, uploads_dir: Path) -> bool:
    return any(_stored(upload_id, uploads_dir, suffix) for suffix in uploads.SUFFIXES)


def _apply_fix(values: dict[str, Any]) -> None:
    st.session_state.update(values)


def _keras_availability(name: str) -> None:
    path = datasets.keras_cache_path(name)
    if datasets.keras_cached(name):
        st.success(f"Cached at `{path}`: works offline.", icon=":material/check:")
    else:
        st.warning(
            f"Not cached at `{path}` yet: Keras downloads it on first use, which needs internet. "
            "Offline? Pick the generated text set (or upload a CSV), or copy the file there.",
            icon=":material/cloud_download:",
        )


def model_section(info: datasets.DatasetInfo | None, uploads_dir: Path | None = None) -> None:
    state = st.session_state
    st.selectbox(
        "Model",
        list(MODELS),
        key="model.name",
        format_func=lambda n: (
            MODELS[n].label
            + ("" if info is None or info.input_kind in MODELS[n].input_kinds else " (needs other data)")
        ),
    )
    spec = MODELS[state["model.name"]]
    st.caption(spec.description)
    if spec.upload is not None:
        _model_file_inputs(uploads_dir if uploads_dir is not None else uploads.default_dir(), spec.upload)
    if spec.knobs:
        for col, knob in zip(st.columns(len(spec.knobs)), spec.knobs):
            _number(col, KNOBS[knob].label, f"model.{knob}", step=KNOBS[knob].step)


COMPILE_CHOICES = {
    "form": "the form's optimizer and loss",
    "own": "the file's own compile settings",
}


def _model_file_inputs(uploads_dir: Path, suffix: str) -> None:
    """Your model: the upload (stored by content id), what the file holds, how it is compiled."""
    state = st.session_state
    upload = st.file_uploader("Model file (.keras)", type=[suffix.lstrip(".")], key="model_upload")
    if upload is not None and state.get("model_upload_seen") != upload.file_id:
        try:
            upload_id = uploads.store(upload.getvalue(), uploads_dir, suffix)
        except OSError as exc:
            st.error(md(f"Could not keep the upload in the runs folder: {exc.strerror or exc}."))
            return
        state["model_upload_seen"] = upload.file_id
        state["model.upload"] = upload_id
        state["model.file_name"] = uploads.display_name(upload.name)
    if not state.get("model.upload"):
        st.info(
            'Upload a Keras 3 model saved with model.save("model.keras"): one input, one output, '
            "Keras' built-in layers only (no Lambda, no custom classes)."
        )
        return
    cfg = read_config().model
    name = cfg.file_name or "your model"
    try:
        facts = MODELS[cfg.name].file_facts(cfg, uploads_dir)
    except ModelFileError as exc:
        st.error(md(f"{name}: {exc}"))
        return
    if facts is None:
        return
    compiled = "compiled" if facts.compiled else "not compiled"
    version = f", saved with Keras {facts.keras_version}" if facts.keras_version else ""
    st.caption(
        md(
            f"{name}: input {facts.shape_text()}, output {facts.output_text()}, {facts.params:,} parameters, "
            f"{facts.layers_text()}, {compiled}{version}. Its saved weights are the starting point."
        )
    )
    st.radio(
        "Compile with",
        list(COMPILE_CHOICES),
        key="model.compile",
        format_func=COMPILE_CHOICES.get,
        help="The form's: the optimizer and learning rate under Training, the task's loss. The file's own: "
        "the optimizer and loss it was saved with (the Training optimizer and learning rate are unused).",
    )


def fit_section() -> None:
    state = st.session_state
    c1, c2 = st.columns(2)
    _number(c1, "Max epochs", "fit.max_epochs", help="A high cap: early stopping decides when to stop.")
    _number(c2, "Batch size", "fit.batch_size")
    c1, c2 = st.columns(2)
    c1.selectbox("Optimizer", list(OPTIMIZERS), key="fit.optimizer")
    c2.select_slider(
        "Learning rate",
        _with(LEARNING_RATES, state.get("fit.learning_rate")),
        key="fit.learning_rate",
        format_func=format_delta,
    )
    _slider(
        st,
        "Validation split",
        "fit.validation_split",
        step=0.05,
        help="Share of the training data that judges each epoch. The test split is never used for this.",
    )
    _number(st, "Random seed", "fit.seed")
    _steps_per_execution()
    _backend_choice(state.get("model.name", ""))


def group_sizes(current: object = None) -> list[int | str]:
    """The choices for fit.steps_per_execution, from its declaration: "auto", then the powers of two
    in its range, and the current value wherever it falls (a config may hold any count)."""
    b = limits("fit.steps_per_execution")
    low, high = int(b.low or 1), int(b.high or 1)
    counts = {2**i for i in range(high.bit_length()) if low <= 2**i <= high}
    if isinstance(current, int) and not isinstance(current, bool) and low <= current <= high:
        counts.add(current)
    return ["auto", *sorted(counts)] if takes_auto("fit.steps_per_execution") else sorted(counts)


GROUP_HELP = (
    "Batches Keras runs per call of its compiled train step (model.compile's steps_per_execution). "
    "Larger groups cost less Python per batch. The live batch count and Stop act once per group: "
    "after Stop, training ends when the current group is done, up to k batches later (k times one "
    "batch's time). auto times a few batches before the first epoch and picks the largest k whose "
    "group stays under about 50 ms (1 when a batch alone takes longer); the run's log names the k and "
    "the batch time. No result depends "
    "on it: for the same seed, every k trains the same numbers bit for bit (TensorFlow, checked by "
    "the tests)."
)


def stop_latency(value: object) -> str:
    """What the setting does to Stop, in the words shown under it."""
    if value == "auto":
        return (
            "Stop waits for the current group: under about 50 ms (auto picks k from a measured batch; "
            "a batch that alone takes longer keeps k at 1, and Stop waits for that one batch)."
        )
    if value == 1:
        return "Stop ends training after the batch in flight."
    return f"Stop waits for the current group: up to {value} batches (about {value} times one batch's time)."


def _steps_per_execution() -> None:
    state = st.session_state
    current = state.get("fit.steps_per_execution", 1)
    st.selectbox(
        "Batches per step",
        group_sizes(current),
        key="fit.steps_per_execution",
        format_func=lambda v: "auto (groups under 50 ms)" if v == "auto" else str(v),
        help=md(GROUP_HELP),
    )
    st.caption(md(stop_latency(state.get("fit.steps_per_execution", current))))


def _backend_choice(model_name: str) -> None:
    """Keras' backend for the run; ``auto`` is the measured default for the model, and says why."""
    choices = list(typing.get_args(Backend))  # the declaration's values
    picked = backends.default_for(model_name)
    measured = "; ".join(f"{name}: {m.backend} ({m.reason})" for name, m in backends.DEFAULTS.items())
    st.radio(
        "Backend",
        choices,
        key="fit.backend",
        horizontal=True,
        format_func=lambda b: backends.LABELS[b],
        help=(
            "The Keras backend the run trains on; its resume and its exported script use the same one. "
            f"auto picks the measured default for the model. {measured}; other models: "
            f"{backends.UNMEASURED.backend} ({backends.UNMEASURED.reason})."
        ),
    )
    if st.session_state.get("fit.backend") == "auto":
        st.caption(md(f"auto picks {backends.LABELS[picked.backend]} for this model: {picked.reason}."))


def _monitor_and_mode(section: str, logged: list[str], prefix: str = "") -> None:
    state = st.session_state
    key = prefix + section
    current = state.get(f"{key}.monitor")
    options = logged if current in logged else [*logged, current]
    c1, c2 = st.columns(2)
    c1.selectbox("Monitor", options, key=f"{key}.monitor", help="The logged metric to watch.")
    c2.radio(
        "Mode",
        ["auto", "min", "max"],
        key=f"{key}.mode",
        horizontal=True,
        help="Whether lower or higher is better. 'auto' asks the compiled metric.",
    )
    if state.get(f"{key}.mode") == "auto":
        resolved = metrics.resolve_mode(state.get(f"{key}.monitor", ""), "auto")
        c2.caption(f"auto resolves to **{resolved}**" if resolved else "auto cannot resolve this metric")


def early_stopping_section(logged: list[str], *, prefix: str = "") -> None:
    """Every argument of keras.callbacks.EarlyStopping; ``prefix`` keys a second set (the what-if's)."""
    state = st.session_state
    key = prefix + "early_stopping"
    st.toggle("Use EarlyStopping", key=f"{key}.enabled")
    if not state.get(f"{key}.enabled"):
        if not prefix and state.get(rules_form.CHOSEN):  # the stopping rules still watch its monitor
            st.caption("Off: the stopping rules below or max epochs end the run. The rules watch:")
            _monitor_and_mode("early_stopping", logged, prefix)
        else:
            st.caption("Off: training runs to max epochs unless you stop it.")
        return
    _monitor_and_mode("early_stopping", logged, prefix)
    patience = limits("early_stopping.patience")
    st.slider(
        "Patience",
        int(patience.low),
        # A slider a million wide cannot be set by hand: 0..200, widened to show a larger value as it is.
        max(200, int(state.get(f"{key}.patience", 0))),
        key=f"{key}.patience",
        help=f"Epochs without improvement before training stops (up to {int(patience.high):,}).",
    )
    st.caption("Epochs to wait for an improvement before stopping.")
    st.select_slider(
        "min_delta",
        _with(MIN_DELTAS, state.get(f"{key}.min_delta")),
        key=f"{key}.min_delta",
        format_func=format_delta,
    )
    st.caption("The smallest change that counts as an improvement (log scale; 0 counts any change).")
    c1, c2 = st.columns(2)
    c1.toggle("Baseline", key=f"{key}.baseline.on")
    if state.get(f"{key}.baseline.on"):
        _number(
            c2, "Baseline value", "early_stopping.baseline", prefix=prefix, format="%.6g",
            label_visibility="collapsed",
        )  # fmt: skip
    st.caption("A value the monitor must beat; until it does, patience keeps running out.")
    _number(st, "start_from_epoch", "early_stopping.start_from_epoch", prefix=prefix)
    st.caption("Warm-up epochs ignored entirely before the watch starts.")
    st.toggle("restore_best_weights", key=f"{key}.restore_best_weights")
    st.caption("End with the best epoch's weights instead of the last epoch's.")


def checkpoint_rule(logged: list[str], *, prefix: str = "") -> bool:
    """The ModelCheckpoint arguments that decide which epoch is kept; False when it is off."""
    state = st.session_state
    key = prefix + "checkpoint"
    st.toggle("Use ModelCheckpoint", key=f"{key}.enabled")
    if not state.get(f"{key}.enabled"):
        st.caption("Off: nothing to download; the test set is evaluated on the final weights.")
        return False
    _monitor_and_mode("checkpoint", logged, prefix)
    st.toggle("save_best_only", key=f"{key}.save_best_only")
    st.caption("Overwrite the file only when the monitor improves (no min_delta here).")
    c1, c2 = st.columns(2)
    c1.toggle("initial_value_threshold", key=f"{key}.initial_value_threshold.on")
    if state.get(f"{key}.initial_value_threshold.on"):
        _number(
            c2, "Threshold", "checkpoint.initial_value_threshold", prefix=prefix, format="%.6g",
            label_visibility="collapsed",
        )  # fmt: skip
    st.caption("Save nothing until the monitor beats this value.")
    return True


def checkpoint_section(logged: list[str], info: datasets.DatasetInfo | None = None) -> None:
    if not checkpoint_rule(logged):
        return
    c1, c2 = st.columns(2)
    c1.toggle("save_weights_only", key="checkpoint.save_weights_only")
    c2.selectbox("Format", list(CHECKPOINT_FORMATS), key="checkpoint.format")
    st.caption(".keras: the whole model, optimizer included. .h5: legacy. .weights.h5: weights only.")
    st.toggle("Keep every epoch's weights", key="checkpoint.keep_every_epoch")
    st.caption(_keep_every_epoch_cost(info))


def _keep_every_epoch_cost(info: datasets.DatasetInfo | None) -> str:
    """What keeping every epoch costs on disk, from the parameter count (no TensorFlow needed)."""
    what = "Lets the what-if page hand out the model any replayed setting would have kept."
    if info is None or info.input_shape is None:
        return what
    cfg = read_config()
    try:
        params = estimate_params(cfg.model, info.input_shape, info.task, info.n_classes, cfg.data.num_words)
    except (ValueError, TypeError):
        return what
    per_epoch = epoch_weights.estimate_bytes_per_epoch(params)
    return (
        f"{what} About {_size(per_epoch)} an epoch ({params:,} parameters), "
        f"{_size(per_epoch * 100)} per 100 epochs."
    )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def rules_section(logged: list[str]) -> None:
    """The stopping rules beyond EarlyStopping, watching its monitor and mode."""
    state = st.session_state
    monitor = state.get("early_stopping.monitor", "val_loss")
    mode = metrics.resolve_mode(monitor, state.get("early_stopping.mode", "auto"))
    rules_form.rules_section(monitor, mode, logged)


def reduce_lr_section(logged: list[str], *, prefix: str = "") -> None:
    """Every argument of keras.callbacks.ReduceLROnPlateau that decides the schedule; ``prefix`` keys
    a second set (the what-if's)."""
    state = st.session_state
    key = prefix + "reduce_lr"
    st.toggle("Use ReduceLROnPlateau", key=f"{key}.enabled")
    if not state.get(f"{key}.enabled"):
        st.caption("Off: the learning rate stays as set in the Training section.")
        return
    _monitor_and_mode("reduce_lr", logged, prefix)
    c1, c2 = st.columns(2)
    _number(
        c1,
        "factor",
        "reduce_lr.factor",
        prefix=prefix,
        format="%.6g",
        help="new rate = rate x factor (below 1).",
    )
    _number(
        c2,
        "patience",
        "reduce_lr.patience",
        prefix=prefix,
        help="Epochs without improvement before each reduction.",
    )
    c1, c2, c3 = st.columns(3)
    _number(
        c1, "min_delta", "reduce_lr.min_delta", prefix=prefix, format="%.6g", help="Keras' default is 1e-4."
    )
    _number(
        c2,
        "cooldown",
        "reduce_lr.cooldown",
        prefix=prefix,
        help="Epochs after a reduction before counting again.",
    )
    _number(
        c3,
        "min_lr",
        "reduce_lr.min_lr",
        prefix=prefix,
        format="%.6g",
        help="The rate is never lowered below it.",
    )
    if not prefix:
        st.caption(
            "The rate of each epoch is recorded and charted. Its patience counts like EarlyStopping's: "
            "give EarlyStopping a longer one, or the run stops before the rate is lowered."
        )
