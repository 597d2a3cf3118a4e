"""The one config object a run is made from, and the one declaration of what each field may hold.

Every field is plain data (JSON round trip), so the UI, the headless command and the exported
script all consume the same thing. Defaults follow Keras' own where they are useful, and the seed
tutorial's where Keras' are not (a high epoch cap, so runs train "until it no longer improves").

Each field's type, range, allowed values and unit are declared once, on the field itself
(``Annotated[..., Field(...)]``); pydantic checks untrusted input against exactly that
(``check``), the pages take their widget ranges from it (``limits``) and ``python -m core schema``
prints it as JSON Schema. Scalars are strict: ``"5"`` is not a patience and ``true`` is not an
epoch count; nothing is coerced, clamped or dropped. This module is a leaf: it imports nothing
from core, so every other module may import it.
"""

from __future__ import annotations

import functools
import json
import math
import re
import typing
import unicodedata
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Annotated, Any, Literal

import annotated_types
import pydantic
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError

TASKS = ("binary", "multiclass", "regression")
Task = Literal["binary", "multiclass", "regression"]
Mode = Literal["auto", "min", "max"]
CHECKPOINT_FORMATS = (".keras", ".h5", ".weights.h5")
Format = Literal[".keras", ".h5", ".weights.h5"]
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad")
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad"]
# The Keras backend a run trains on; "auto" is the measured default for its model (core/backends.py),
# replaced by the backend it resolves to when the run starts, so the run, its resume and its export agree.
BACKENDS = ("auto", "tensorflow", "jax")
Backend = Literal["auto", "tensorflow", "jax"]
# Who trained the run: the app, the user's own script (eslab.LabCallback), or nobody here (an import).
Origin = Literal["app", "callback", "imported"]
RECORDED_NAME = "recorded"  # data.name and model.name of a run the app did not train (not in the registries)

_DECLARED = ConfigDict(extra="forbid")  # unknown keys are reported, never dropped


def _int(lo: int, hi: int, unit: str, doc: str) -> Any:
    return Field(ge=lo, le=hi, strict=True, description=doc, json_schema_extra={"unit": unit})


def _float(doc: str, unit: str = "", **bounds: float) -> Any:
    return Field(
        strict=True, allow_inf_nan=False, description=doc, json_schema_extra={"unit": unit}, **bounds
    )


def _text(doc: str, *, max_length: int, pattern: str | None = None) -> Any:
    return Field(strict=True, min_length=1, max_length=max_length, pattern=pattern, description=doc)


_KEY = r"^[a-z][a-z0-9_]*$"  # registry names (datasets, models); which exist is checked by core.validate
_METRIC = r"^[A-Za-z_][A-Za-z0-9_]*$"  # a Keras log key
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"  # user text: any characters but control characters
# Unicode categories a name may not hold: control, format (direction overrides, zero width), line breaks.
NOT_IN_A_NAME = ("Cc", "Cf", "Zl", "Zp")
_UPLOAD_ID = r"^[0-9a-f]{32}$"  # an upload's content id: the first 32 hex digits of its sha256
_FILE_NAME = r"^[^\x00-\x1f\x7f/\\]*$"  # a file's own name: no folders, no control characters
Bool = Annotated[bool, Field(strict=True)]
_UPLOAD_DOC = "csv and text_csv: the uploaded file, by content id (the first 32 hex digits of its sha256)."
_FILE_NAME_DOC = "The uploaded file's own name, for display only (never opened)."
_MODEL_UPLOAD_DOC = "uploaded: the .keras model file, by content id (the first 32 hex digits of its sha256)."


@pydantic.with_config(_DECLARED)
@dataclass
class CsvFormat:
    """How a CSV is read: what comes before the header, whether there is one, the separators.

    The page shows what it detected and writes the choice here, so the run, its exported script
    and a re-import read the file the same way.
    """

    skip_rows: Annotated[int, _int(0, 100, "lines", "Lines before the header (or the first row).")] = 0
    header: Annotated[bool, Field(strict=True, description="The first kept row names the columns.")] = True
    delimiter: Annotated[
        Literal["auto", ",", ";", "\t", "|"],
        Field(description="Field separator; auto: the one every row splits into the same fields by."),
    ] = "auto"
    decimal: Annotated[Literal[".", ","], Field(description="Decimal separator of the numbers.")] = "."


@pydantic.with_config(_DECLARED)
def _checked_file_name(name: str) -> str:
    """A file's own name as the app shows it: one line of printable characters, not a folder."""
    if name.strip() in ("", ".", ".."):
        raise ValueError("must be a file's name, not empty, '.' or '..'")
    if any(unicodedata.category(c) in NOT_IN_A_NAME for c in name):
        raise ValueError("must be printable characters (no direction overrides or zero-width characters)")
    return name


FileName = Annotated[
    str, _text(_FILE_NAME_DOC, max_length=255, pattern=_FILE_NAME), AfterValidator(_checked_file_name)
]


Pad = Literal["pre", "post"]  # keras.utils.pad_sequences' names
SPLIT_PARTS = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}
_SPLIT_COLUMN_DOC = (
    "csv and text_csv: a column naming each row's part: train, test or validation (val), in any case; "
    "it is not a feature. None: test and validation are drawn at random (test_fraction)."
)
_TEST_UPLOAD_DOC = (
    "csv and text_csv: a second uploaded CSV (same columns) that is the test set, by content id. "
    "None: the test part comes from the first file."
)
_TRUNCATING_DOC = (
    "Text: which end of a longer text is cut off, as keras.utils.pad_sequences names it: pre keeps "
    "the last maxlen tokens, post the first. None: the data's own way (Keras' imdb: pre; texts: post)."
)
_PADDING_DOC = (
    "Text: where a shorter text is padded with 0, as keras.utils.pad_sequences names it: pre at the "
    "front, post at the end. None: the data's own way (Keras' imdb: pre; texts: post)."
)


@dataclass
class DataConfig:
    """Which data, and how to read it (see core.datasets for the names)."""

    name: Annotated[str, _text("Dataset name (core.datasets.DATASETS).", max_length=40, pattern=_KEY)] = (
        "digits"
    )
    upload: Annotated[str, _text(_UPLOAD_DOC, max_length=32, pattern=_UPLOAD_ID)] | None = None
    file_name: FileName | None = None
    csv: CsvFormat = field(default_factory=CsvFormat)
    target_column: Annotated[str, _text("CSV column to predict.", max_length=500)] | None = None
    text_column: Annotated[str, _text("text_csv: the column of texts.", max_length=500)] | None = None
    task: Annotated[Task, Field(description="None: inferred from the CSV.")] | None = None
    test_fraction: Annotated[
        float,
        _float("Share held out for the final test (built-in splits excepted).", "share", ge=0.05, le=0.5),
    ] = 0.2
    max_samples: Annotated[int, _int(20, 10_000_000, "rows", "Seeded subsample of the data.")] | None = None
    num_words: Annotated[int, _int(100, 100_000, "words", "Text: vocabulary size, as in the seed.")] = 5000
    maxlen: Annotated[int, _int(1, 10_000, "tokens", "Text: sequence length, as in the seed.")] = 400
    # -- your own split, and how texts are cut and padded (core/data/split.py, core/data/text.py) --
    split_column: Annotated[str, _text(_SPLIT_COLUMN_DOC, max_length=500)] | None = None
    test_upload: Annotated[str, _text(_TEST_UPLOAD_DOC, max_length=32, pattern=_UPLOAD_ID)] | None = None
    test_file_name: FileName | None = None
    truncating: Annotated[Pad, Field(description=_TRUNCATING_DOC)] | None = None
    padding: Annotated[Pad, Field(description=_PADDING_DOC)] | None = None
    image_size: Annotated[int, _int(8, 256, "pixels", "images: each image resized to this square side.")] = 32
    color_mode: Annotated[
        Literal["grayscale", "rgb"], Field(description="images: 1 channel (grayscale) or 3 (rgb).")
    ] = "rgb"


@pydantic.with_config(_DECLARED)
@dataclass
class ModelConfig:
    """Which model preset and its knobs (see core.models)."""

    name: Annotated[str, _text("Model preset (core.models.MODELS).", max_length=40, pattern=_KEY)] = "mlp"
    units: Annotated[int, _int(1, 4096, "units", "MLP width; the CNN's dense layer.")] = 64
    depth: Annotated[int, _int(0, 32, "layers", "MLP hidden layers.")] = 2
    dropout: Annotated[float, _float("Dropout rate after each hidden layer.", "rate", ge=0.0, le=0.9)] = 0.0
    filters: Annotated[int, _int(1, 512, "filters", "CNN filters in its first block.")] = 32
    upload: Annotated[str, _text(_MODEL_UPLOAD_DOC, max_length=32, pattern=_UPLOAD_ID)] | None = None
    file_name: FileName | None = None
    compile: Annotated[
        Literal["form", "own"],
        Field(
            description="uploaded: 'form', the form's optimizer and learning rate with the task's loss; "
            "'own', the optimizer and loss the .keras file was compiled with."
        ),
    ] = "form"


_STEPS_PER_EXECUTION_DOC = (
    "Batches Keras runs per call of its compiled train step (model.compile(steps_per_execution=k)). "
    "Stop and the live batch count act once per group, so a Stop waits up to k batches. "
    "auto: chosen from the measured batch time so a group stays under about 50 ms. "
    "On TensorFlow the numbers are the same bit for bit for every k."
)


@pydantic.with_config(_DECLARED)
@dataclass
class FitConfig:
    max_epochs: Annotated[int, _int(1, 1_000_000, "epochs", "The seed's 'until it no longer improves'.")] = (
        200_000
    )
    batch_size: Annotated[int, _int(1, 65_536, "samples", "Samples per gradient step.")] = 32
    optimizer: Annotated[Optimizer, Field(description="Keras optimizer.")] = "adam"
    learning_rate: Annotated[float, _float("Optimizer learning rate.", "rate", gt=0.0, le=10.0)] = 1e-3
    validation_split: Annotated[
        float, _float("Share of the training data held out for validation.", "share", ge=0.0, le=0.8)
    ] = 0.2
    seed: Annotated[int, _int(0, 2**31 - 1, "", "Seeds the split, the weights and the batch order.")] = 42
    # Last, with a default: configs written before it load unchanged (1 is Keras' own default).
    steps_per_execution: (
        Annotated[int, _int(1, 1024, "batches", _STEPS_PER_EXECUTION_DOC)]
        | Annotated[Literal["auto"], Field(description="From the measured batch time (~50 ms a group).")]
    ) = 1
    # Configs written before this setting trained on TensorFlow: without the key they still do.
    backend: Annotated[
        Backend,
        Field(description="Keras backend: tensorflow, jax, or auto (the measured default for the model)."),
    ] = "tensorflow"


Monitor = Annotated[str, _text("A logged metric (loss, val_loss, ...).", max_length=64, pattern=_METRIC)]
Threshold = Annotated[float, _float("A value of the monitored metric.", ge=-1e12, le=1e12)]


@pydantic.with_config(_DECLARED)
@dataclass
class EarlyStoppingConfig:
    """Every parameter of keras.callbacks.EarlyStopping (Keras 3)."""

    enabled: Bool = True
    monitor: Monitor = "val_loss"
    mode: Annotated[Mode, Field(description="Whether lower or higher is better; auto asks the metric.")] = (
        "auto"
    )
    patience: Annotated[int, _int(0, 1_000_000, "epochs", "Epochs without improvement before stopping.")] = 10
    min_delta: Annotated[
        float,
        _float("Smallest change that counts as an improvement (Keras uses |min_delta|).", ge=-1e9, le=1e9),
    ] = 0.0
    baseline: Threshold | None = None
    restore_best_weights: Bool = False
    start_from_epoch: Annotated[int, _int(0, 1_000_000, "epochs", "Warm-up epochs not watched.")] = 0


@pydantic.with_config(_DECLARED)
@dataclass
class CheckpointConfig:
    """The parameters of keras.callbacks.ModelCheckpoint that decide what is kept."""

    enabled: Bool = True
    monitor: Monitor = "val_loss"
    mode: Annotated[Mode, Field(description="Whether lower or higher is better; auto asks the metric.")] = (
        "auto"
    )
    save_best_only: Bool = True
    save_weights_only: Bool = False
    format: Annotated[Format, Field(description="Checkpoint file format.")] = ".keras"
    initial_value_threshold: Threshold | None = None
    keep_every_epoch: Bool = (
        False  # also keep each epoch's weights, so any replayed setting can be downloaded
    )


MAX_RULES = 8  # more stopping rules than the registry holds would only repeat one
_RULE_VALUE = (
    Annotated[int, Field(strict=True, ge=-(10**12), le=10**12)]
    | Annotated[float, _float("", ge=-1e12, le=1e12)]
)


@pydantic.with_config(_DECLARED)
@dataclass
class RuleConfig:
    """One more stopping rule beside EarlyStopping, watching EarlyStopping's monitor and mode (or, for
    a rule on several metrics, ``monitors``, each in its own direction).

    Which rules exist and what each parameter may hold is the rule's own declaration
    (core/stopping/rules/); ``core.validate`` checks a config against it, naming the field.
    """

    name: Annotated[
        str, _text("A stopping rule (core/stopping/rules/registry.py).", max_length=40, pattern=_KEY)
    ]
    params: Annotated[
        dict[Annotated[str, Field(strict=True, max_length=40, pattern=_KEY)], _RULE_VALUE],
        Field(max_length=8, description="The rule's parameters by name; every one must be given."),
    ] = field(default_factory=dict)
    monitors: Annotated[
        list[Monitor], Field(max_length=8, description="A rule on several metrics: the metrics it watches.")
    ] = field(default_factory=list)


@pydantic.with_config(_DECLARED)
@dataclass
class ReduceLRConfig:
    """Every parameter of keras.callbacks.ReduceLROnPlateau (Keras 3) that decides the schedule."""

    enabled: Bool = False
    monitor: Monitor = "val_loss"
    mode: Annotated[Mode, Field(description="Whether lower or higher is better; auto asks the metric.")] = (
        "auto"
    )
    factor: Annotated[
        float,
        _float("The learning rate is multiplied by it at each reduction (Keras: below 1).", gt=0.0, le=0.999),
    ] = 0.1
    patience: Annotated[
        int, _int(0, 1_000_000, "epochs", "Epochs without improvement before a reduction.")
    ] = 10
    min_delta: Annotated[
        float,
        _float("Smallest change that counts as an improvement (Keras uses |min_delta|).", ge=-1e9, le=1e9),
    ] = 1e-4
    cooldown: Annotated[
        int, _int(0, 1_000_000, "epochs", "Epochs after a reduction before counting again.")
    ] = 0
    min_lr: Annotated[
        float, _float("The learning rate is never lowered below it.", "rate", ge=0.0, le=10.0)
    ] = 0.0


MAX_NAME_CHARS = 200
_UNPRINTABLE = (*NOT_IN_A_NAME, "Cs")  # and lone surrogates, which only a \\ud800 escape can make


def run_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a run's name, or None. The one rule: the declaration (what a config may
    hold) and the store (rename, and reading a run back) both use it, so a name that validates is
    stored and shown exactly as sent, never replaced when the run is read back."""
    if not isinstance(name, str):
        return f"must be text, not {type(name).__name__}"
    if not name.strip():
        return "a run needs a name"
    if len(name) > MAX_NAME_CHARS:
        return f"at most {MAX_NAME_CHARS} characters (this one has {len(name)})"
    if any(unicodedata.category(c) in NOT_IN_A_NAME for c in name):
        return (
            "must be one line of printable characters (no control characters, line breaks, "
            "direction overrides or zero-width characters)"
        )
    return None


def _checked_name(name: str) -> str:
    if (problem := run_name_problem(name)) is not None:
        raise ValueError(problem)
    return name


RunName = Annotated[
    str,
    _text("Shown in the app; one line, no control, format or line-break characters.",
          max_length=MAX_NAME_CHARS, pattern=_NO_CONTROL),
    AfterValidator(_checked_name),
]  # fmt: skip


@pydantic.with_config(_DECLARED)
@dataclass
class RunConfig:
    name: RunName = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    # Stopping rules beyond Keras' (a target, a divergence limit, Prechelt's); configs written
    # before this setting had none.
    stopping_rules: Annotated[
        list[RuleConfig],
        Field(max_length=MAX_RULES, description="More stopping rules; any of them stops the run."),
    ] = field(default_factory=list)
    # Configs written before this setting had no learning-rate schedule.
    reduce_lr: ReduceLRConfig = field(default_factory=ReduceLRConfig)
    origin: Annotated[
        Origin, Field(description="Who trained it: the app, your script (eslab.LabCallback), or an import.")
    ] = "app"

    @property
    def recorded(self) -> bool:
        """A run the app did not train: it can be shown, replayed and compared, never trained here."""
        return self.origin != "app"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        """Checked against the declaration; ConfigError lists every problem, each naming its field."""
        config, problems = check(data)
        if config is None:
            raise ConfigError(problems)
        return config

    @classmethod
    def from_json(cls, text: str | bytes) -> RunConfig:
        config, problems = parse_json(text)
        if config is None:
            raise ConfigError(problems)
        return config


def unchecked(data: dict[str, Any]) -> RunConfig:
    """A config from values that are already typed (the widgets' state), built without checking:
    ``core.validate.validate`` reports what is wrong with it, next to the widget."""
    return _construct(RunConfig, data)


def _construct(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            value = data[f.name]
            sub = hints[f.name]
            kwargs[f.name] = (
                _construct(sub, value) if is_dataclass(sub) and isinstance(value, dict) else value
            )
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Problems, and checking untrusted input against the declaration.


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config; ``field`` is the dotted setting it belongs to."""

    field: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return self.message


class ConfigError(ValueError):
    """A config that cannot be accepted as given; ``problems`` names every field that is wrong."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("config", problems)]
        self.problems = problems
        super().__init__(" ".join(p.message for p in problems))


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


MAX_JSON_BYTES = 256 * 1024  # a config is about 1 KB
MAX_JSON_DEPTH = 8  # a config nests 2 levels
MAX_INT_DIGITS = 30  # no setting needs more; Python refuses to even parse past 4,300


@dataclass(frozen=True)
class Bounds:
    """A numeric field's declared range (inclusive unless ``exclusive_low``) and unit: what widgets use."""

    low: float | None
    high: float | None
    unit: str = ""
    exclusive_low: bool = False
    integer: bool = False


def limits(path: str) -> Bounds:
    """The declared range of a numeric setting, e.g. ``limits("fit.max_epochs")``."""
    info = _field_info(path)
    b: dict[str, Any] = {"low": None, "high": None, "exclusive_low": False}
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            b["low"] = item.ge
        elif isinstance(item, annotated_types.Gt):
            b["low"], b["exclusive_low"] = item.gt, True
        elif isinstance(item, annotated_types.Le):
            b["high"] = item.le
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return Bounds(**b, unit=str(extra.get("unit", "")), integer=_scalar_type(path) is int)


def check(data: Any) -> tuple[RunConfig | None, list[Problem]]:
    """Untrusted plain data (parsed JSON) -> the config exactly as given, or every problem with it.

    Missing keys take their defaults; anything present is either accepted unchanged or refused.
    """
    if not isinstance(data, dict):
        return None, [Problem("config", f"The config must be a JSON object ({{...}}), not {_kind(data)}.")]
    problems = list(_parse_problems(data, ""))
    if problems:
        return None, problems
    try:
        return _adapter().validate_python(data), []
    except ValidationError as exc:
        return None, _one_per_field([_problem(err) for err in exc.errors(include_url=False)])
    except RecursionError:  # pragma: no cover - parse_json bounds the depth first
        return None, [Problem("config", "The config is nested too deeply.")]


def _one_per_field(problems: list[Problem]) -> list[Problem]:
    """A value refused by each member of a union (``int | "auto"``) is one problem, not one per member:
    the first message already names every form the field takes."""
    seen: set[str] = set()
    return [p for p in problems if not (p.field in seen or seen.add(p.field))]  # type: ignore[func-returns-value]


def check_config(config: RunConfig) -> list[Problem]:
    """A config built in code (a page, a preset, a test) checked against the same declaration."""
    _, problems = check(config.to_dict())
    return problems


def parse_json(
    text: str | bytes, *, max_bytes: int = MAX_JSON_BYTES
) -> tuple[RunConfig | None, list[Problem]]:
    """A config JSON from anywhere (an upload, a file, the runs folder), parsed with limits and checked."""
    try:
        data = loads_limited(text, max_bytes=max_bytes)
    except ValueError as exc:
        return None, [Problem("config", str(exc))]
    return check(data)


_STORED_UPLOAD = re.compile(r"^.*[/\\]uploads[/\\]([0-9a-f]{32})\.csv\Z")


def migrate_stored(data: Any) -> Any:
    """A config stored by an earlier version, in today's shape (only what the runs folder holds).

    Earlier versions kept an uploaded CSV as ``data.path`` = ``<runs>/uploads/<id>.csv``; that becomes
    ``data.upload`` = ``<id>``. Any other ``data.path`` is left in place, so ``check`` still refuses it:
    this is for configs the app itself wrote, never for what a user sends in.
    """
    if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
        return data
    section = data["data"]
    path = section.get("path")
    if not isinstance(path, str) or "upload" in section:
        return data
    found = _STORED_UPLOAD.match(path)
    if found is None:
        return data
    migrated = {k: v for k, v in section.items() if k != "path"}
    migrated["upload"] = found.group(1)
    return {**data, "data": migrated}


def load_stored(text: str | bytes) -> RunConfig:
    """A config from the runs folder (config.json, the index): migrated, then checked like any other."""
    try:
        data = loads_limited(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return RunConfig.from_dict(migrate_stored(data))


def schema() -> dict[str, Any]:
    """The declaration as JSON Schema (``python -m core schema``), for editors and CI."""
    out = _adapter().json_schema()
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = "Early Stopping Lab run config"
    return out


# -- JSON with limits -------------------------------------------------------------------------------


class _Object(dict):
    """A JSON object that remembers keys it saw twice (json keeps the last one silently)."""

    duplicates: tuple[str, ...] = ()


class _HugeNumber:
    """An integer literal too long to be any setting; reported with its field instead of parsed."""

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"a {self.digits:,}-digit number"


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return obj


def loads_limited(
    text: str | bytes, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """json.loads with a size and a nesting limit, huge integers kept out, duplicate keys recorded.

    Raises ValueError with a message for the user. NaN and Infinity parse (as Python's json does)
    so that the field they sit in is named when the declaration refuses them.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        if len(text) > max_bytes:
            raise ValueError(f"The file is {len(text):,} bytes; a config is at most {max_bytes:,}.")
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"The file is not UTF-8 text (byte {exc.start:,} cannot be decoded).") from None
    elif len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ValueError(f"The text is over {max_bytes:,} bytes; a config is at most {max_bytes:,}.")
    depth = _max_depth(text, max_depth)
    if depth > max_depth:
        raise ValueError(f"The JSON is nested more than {max_depth} levels deep; a config nests 2.")
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=lambda s: (
                int(s) if len(s.lstrip("-")) <= MAX_INT_DIGITS else _HugeNumber(len(s.lstrip("-")))
            ),
        )
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:  # pragma: no cover - the depth is checked first
        raise ValueError("The JSON is nested too deeply.") from None


def _max_depth(text: str, limit: int) -> int:
    """Deepest [ / { nesting outside strings; stops counting once past ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


# -- messages that name the field -------------------------------------------------------------------


@functools.cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(RunConfig)


def _parse_problems(value: Any, path: str):
    """What the JSON parser saw that pydantic cannot: duplicate keys and integers too long to parse.

    Looked for in the config and its sections only; anything deeper is inside a value that the
    declaration refuses anyway, with its field named.
    """
    if isinstance(value, _HugeNumber):
        known = _scalar_type(path) in (int, float)
        what = _expected(path, "int_type", {}) if known else "is not a value any setting takes"
        yield Problem(path or "config", f"{path}: {what}; got {value!r}.")
    elif isinstance(value, dict) and (not path or path in _SECTIONS):
        for key in getattr(value, "duplicates", ()):
            where = f"{path}.{printable(key)}" if path else printable(key)
            yield Problem(where, f"{where}: appears more than once in the JSON; keep one.")
        for key, item in value.items():
            yield from _parse_problems(item, f"{path}.{printable(key)}" if path else printable(key))


_SECTIONS = ("data", "data.csv", "model", "fit", "early_stopping", "checkpoint", "reduce_lr")


def _problem(err: dict[str, Any]) -> Problem:
    if err["loc"][:1] == ("stopping_rules",):
        return _rule_problem(err)
    path = _field_path(err["loc"])
    kind, value = err["type"], err.get("input")
    if kind == "unexpected_keyword_argument":
        if path == "data.path":
            return Problem(path, _NO_SERVER_PATHS)
        return Problem(path, f"{path}: is not a setting{_did_you_mean(path)}. Remove it.")
    if kind == "string_unicode" and isinstance(value, str) and (path == "config" or path in _SECTIONS):
        # A key of the config or a section that is no text (a lone \\ud800 escape): name the key.
        where = f"{path}.{printable(value)}" if path != "config" else printable(value)
        return Problem(where, f"{where}: is not a setting (its name is not valid Unicode text). Remove it.")
    if kind in ("dataclass_type", "dataclass_args_type"):
        return Problem(path, f"{path}: must be an object ({{...}}) of settings, not {_kind(value)}.")
    return Problem(path, f"{path}: {_expected(path, kind, err)}; got {_shown(value)}.")


def _rule_problem(err: dict[str, Any]) -> Problem:
    """A problem inside ``stopping_rules``, named as ``stopping_rules[i].params.alpha``."""
    loc, kind, value = err["loc"], err["type"], err.get("input")
    where = "stopping_rules"
    if len(loc) == 1:
        return Problem(
            where,
            f"{where}: must be a list of at most {MAX_RULES} rules, each "
            f'{{"name": ..., "params": {{...}}}}; got {_shown(value)}.',
        )
    where += f"[{loc[1]}]"
    if len(loc) == 2:
        return Problem(
            where, f'{where}: must be an object {{"name": ..., "params": {{...}}}}, not {_kind(value)}.'
        )
    key = printable(str(loc[2]))
    if kind == "unexpected_keyword_argument":
        message = f"{where}.{key}: is not a setting of a rule (name, params, monitors). Remove it."
        return Problem(f"{where}.{key}", message)
    where += f".{key}"
    if key == "name":
        if kind.startswith("missing"):
            return Problem(where, f"{where}: every rule needs a name, such as prechelt_gl.")
        return Problem(where, f"{where}: must be a rule name such as prechelt_gl; got {_shown(value)}.")
    if key == "monitors":
        if len(loc) > 3:
            where += f"[{loc[3]}]"
            return Problem(where, f"{where}: must be a metric name such as val_loss; got {_shown(value)}.")
        return Problem(where, f"{where}: must be a list of at most 8 metric names; got {_shown(value)}.")
    if len(loc) == 3:
        return Problem(
            where,
            f"{where}: must be an object of at most 8 parameters and their numbers; got {_shown(value)}.",
        )
    param = printable(str(loc[3]))
    if len(loc) > 4 and loc[4] == "[key]":
        return Problem(
            where, f"{where}: {param!r} is not a parameter name (lowercase letters, digits and _)."
        )
    where += f".{param}"
    return Problem(where, f"{where}: must be a finite number from -1e12 to 1e12; got {_shown(value)}.")


_NO_SERVER_PATHS = (
    "data.path: a config cannot name a file on the server. Upload the CSV on the Train page (or give "
    "it to the headless command with --data-file); the config then names it by its upload id "
    "(data.upload). Remove data.path."
)


def _expected(path: str, kind: str, err: dict[str, Any]) -> str:
    typ = _scalar_type(path)
    leaf = path.rsplit(".", 1)[-1]
    if path in ("data.upload", "data.test_upload", "model.upload") and kind != "string_type":
        return "must be an upload id: 32 lowercase hex digits (the app sets it when you upload a file)"
    if (
        path in ("data.file_name", "data.test_file_name", "model.file_name")
        and kind == "string_pattern_mismatch"
    ):
        return "must be a plain file name, without / or \\ or control characters"
    optional = _optional(path)
    either = " or null (empty)" if optional else ""
    if takes_auto(path):
        either = ' or "auto"'
    if typ in (int, float) and kind != "finite_number" or kind in ("int_type", "float_type"):
        b = limits(path)
        what = "a whole number" if typ is int else "a number"
        if b.low is not None and b.high is not None:
            low = f"above {_num(b.low)}" if b.exclusive_low else f"from {_num(b.low)}"
            to = " and at most " if b.exclusive_low else " to "
            unit = f" {b.unit}" if b.unit and b.unit not in ("share", "rate") else ""
            return f"must be {what} {low}{to}{_num(b.high)}{unit}{either}"
        return f"must be {what}{either}"
    if kind == "finite_number":
        return f"must be a finite number (JSON has no NaN or Infinity){either}"
    if kind == "bool_type":
        return "must be true or false"
    if kind == "literal_error":
        return f"must be one of {err.get('ctx', {}).get('expected', '')}{either}"
    if kind in ("string_too_long", "string_too_short"):
        high = _string_limit(path)
        return f"must be text of 1 to {high} characters{either}"
    if kind == "string_pattern_mismatch":
        if leaf == "monitor":
            return "must be a metric name such as val_loss (letters, digits and _)"
        if leaf == "name" and "." in path:
            return "must be a lowercase name such as digits or mlp"
        return "may not contain control characters (new lines, tabs)"
    if kind == "string_type":
        return f"must be text{either}"
    if kind == "string_unicode":
        return f"must be valid Unicode text{either}"
    if kind == "value_error" and isinstance(err.get("ctx", {}).get("error"), ValueError):
        return str(err["ctx"]["error"])
    return err.get("msg", "is not valid")


def _field_path(loc: tuple[Any, ...]) -> str:
    """The dotted setting a pydantic error belongs to (union member tags dropped); an unknown key is
    written with ``printable``, as it is quoted in the message."""
    cls: Any = RunConfig
    parts: list[str] = []
    for item in loc:
        if not isinstance(item, str) or cls is None:
            break
        names = {f.name: f for f in fields(cls)}
        parts.append(printable(item))
        if item not in names:
            break
        sub = _unwrap(typing.get_type_hints(cls, include_extras=True)[item])
        cls = sub if is_dataclass(sub) else None
    return ".".join(parts) or "config"


def _did_you_mean(path: str) -> str:
    import difflib

    *parents, leaf = path.split(".")
    cls: Any = RunConfig
    for p in parents:
        cls = _unwrap(typing.get_type_hints(cls, include_extras=True).get(p))
        if not is_dataclass(cls):
            return ""
    names = [f.name for f in fields(cls)]
    near = difflib.get_close_matches(leaf, names, n=1)
    prefix = ".".join(parents)
    if near:
        return f" (did you mean {prefix + '.' if prefix else ''}{near[0]}?)"
    return f" of {prefix or 'the config'}: its settings are {', '.join(names)}"


def _field_info(path: str) -> pydantic.fields.FieldInfo:
    hint = _hint(path)
    args = typing.get_args(hint)
    for arg in (hint, *args):
        if typing.get_origin(arg) is Annotated:
            for meta in arg.__metadata__:
                if isinstance(meta, pydantic.fields.FieldInfo):
                    return meta
    return pydantic.fields.FieldInfo()


def _hint(path: str) -> Any:
    cls: Any = RunConfig
    hint: Any = None
    for part in path.split("."):
        if not is_dataclass(cls):
            raise KeyError(path)
        hints = typing.get_type_hints(cls, include_extras=True)
        if part not in hints:
            raise KeyError(path)
        hint = hints[part]
        cls = _unwrap(hint)
    return hint


def _unwrap(hint: Any) -> Any:
    """The plain type behind Annotated and Optional, and behind "or auto" (``int | "auto"``)."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    members = typing.get_args(hint)
    args = [a for a in members if a is not type(None) and not _is_auto(a)]
    if args and len(args) < len(members):
        hint = args[0]
        if typing.get_origin(hint) is Annotated:
            hint = typing.get_args(hint)[0]
    return hint


def _is_auto(hint: Any) -> bool:
    """``Literal["auto"]`` (possibly Annotated): the word a number setting may take instead."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) is Literal and typing.get_args(hint) == ("auto",)


def takes_auto(path: str) -> bool:
    """True for a number setting that may also be "auto" (``fit.steps_per_execution``)."""
    try:
        return any(_is_auto(a) for a in typing.get_args(_hint(path)))
    except KeyError:
        return False


def _scalar_type(path: str) -> Any:
    try:
        typ = _unwrap(_hint(path))
    except KeyError:
        return None
    return typ if typ in (int, float, bool, str) else None


def _optional(path: str) -> bool:
    try:
        return type(None) in typing.get_args(_hint(path))
    except KeyError:
        return False


def _string_limit(path: str) -> int:
    for item in _field_info(path).metadata:
        if isinstance(item, annotated_types.MaxLen):
            return item.max_length
    return 0


def _num(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:g}"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "text"
    return "a number"


def _shown(value: Any) -> str:
    """The refused value as the user wrote it (JSON), cut short."""
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    elif isinstance(value, (_HugeNumber,)):
        return repr(value)
    else:
        try:
            text = printable(json.dumps(value, ensure_ascii=False))
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def printable(text: str) -> str:
    """``text`` with control, format and line-break characters written as ``\\uXXXX``: a message
    quoting what a user sent can then neither drive a terminal (ESC sequences) nor reorder the
    line it is printed in (a direction override), and shows where such a character is."""
    return "".join(_escaped(c) if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


def _escaped(c: str) -> str:
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
