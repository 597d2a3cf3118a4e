"""A run as a standalone Keras script: the copy of a run users take home.

The script does with plain Keras, scikit-learn and pandas what the app did (no import of ``core``):
the same data split and scaling (core/datasets.py), the same layers created in the same order
(core/models.py), the same callbacks with the same parameters, the same seed set at the same point
and the same fit and test evaluation (core/training.py). With the library versions named in its
docstring it repeats the run's numbers on a CPU.

It is composed from small templates, in the spirit of jrieke/traingenerator: a header, the imports
the pieces ask for, the settings, shared data helpers, one loader per dataset (``_DATA``), one
model per preset (``_MODELS``) and ``main`` (callbacks, fit, evaluation, the RESULT line). Every
template is already in ``ruff format`` style (line length 88), so the output lints clean as is.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from core import metrics, models
from core.codegen import MAX_LINE as _MAX_LINE
from core.codegen import Piece as _Piece
from core.codegen import code as _code
from core.codegen import lit as _lit
from core.config import RunConfig
from core.data import datasets
from core.stopping import arguments

# What core/models.py puts on top of each task, and what it compiles it with.
_HEAD = {
    "binary": ('[layers.Dense(1), layers.Activation("sigmoid")]', "binary_crossentropy"),
    "multiclass": (
        '[layers.Dense(len(data.classes), activation="softmax")]',
        "sparse_categorical_crossentropy",
    ),
    "regression": ("[layers.Dense(1)]", "mse"),
}
_OPTIMIZERS = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "nadam": "Nadam",
    "adagrad": "Adagrad",
}
_PREPARED = {
    "tabular": "split and standardized",
    "image": "split and scaled to 0..1",
    "sequence": "split and tokenized",
}
_STDLIB = {"argparse", "io", "json", "math", "os", "re", "typing"}


def export_script(config: RunConfig, *, data_path_hint: str | None = None) -> str:
    """The run as a Python script. ``data_path_hint``: the CSV path to default to (CSV sets).

    Raises ValueError for a dataset or model the exporter does not know, or a model that does not
    take the dataset's kind of input (configs the app would not train either).
    """
    ctx = _Context.of(config, data_path_hint)
    pieces = [
        *_DATA[config.data.name](ctx),
        *_MODELS[config.model.name](ctx),
        _epoch_order_piece(),
        _main(ctx),
    ]
    imports = {line for piece in pieces for line in piece.imports}
    helpers = [p.code for p in pieces if p.code]
    parts = [
        _header(ctx),
        _imports(imports | {"import keras", "import numpy as np", "from keras import layers"}),
        _settings(ctx),
    ]
    body = "\n\n\n".join(helpers)
    tail = 'if __name__ == "__main__":\n    main()\n'
    return "\n\n".join(parts) + "\n\n\n" + body + "\n\n\n" + tail


def export_config_json(config: RunConfig) -> str:
    """The config as the app stores it (``python -m core train`` reads it back)."""
    return config.to_json()


def script_file_name(config: RunConfig) -> str:
    """``<run name>.py`` as an importable module name (``train_run.py`` for a name without letters)."""
    stem = re.sub(r"\W+", "_", config.name.strip().lower()).strip("_")[:40].rstrip("_")
    if not stem or not (stem[0].isalpha() or stem[0] == "_") or not stem.isascii():
        stem = f"train_{stem}" if stem.isascii() and stem else "train_run"
    return f"{stem}.py"


# The history of a run as CSV is RunSnapshot.history_csv() (core/runs.py); no second copy here.


# --------------------------------------------------------------------------------------------
# Building blocks.


@dataclass(frozen=True)
class _Context:
    """The config plus what follows from it, computed once for all templates."""

    config: RunConfig
    spec: datasets.DatasetSpec
    model: models.ModelSpec
    task: str | None  # None: a CSV whose task the script infers as the app does
    csv_path: str | None
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, config: RunConfig, data_path_hint: str | None) -> _Context:
        if config.data.name not in datasets.DATASETS or config.data.name not in _DATA:
            raise ValueError(f"Cannot export dataset {config.data.name!r}.")
        if config.model.name not in models.MODELS or config.model.name not in _MODELS:
            raise ValueError(f"Cannot export model {config.model.name!r}.")
        spec = datasets.DATASETS[config.data.name]
        model = models.MODELS[config.model.name]
        if spec.input_kind not in model.input_kinds:
            raise ValueError(f"The {model.label} does not take {spec.input_kind} data ({spec.label}).")
        task = spec.task if spec.task is not None else config.data.task
        csv_path = (data_path_hint or config.data.file_name or "data.csv") if spec.source == "csv" else None
        return cls(config, spec, model, task, csv_path, dict(_versions()))

    @property
    def has_val(self) -> bool:
        return self.config.fit.validation_split > 0

    @property
    def is_csv(self) -> bool:
        return self.csv_path is not None


@functools.cache
def _versions() -> dict[str, str]:
    out = {}
    for label, dist in (
        ("Keras", "keras"),
        ("TensorFlow", "tensorflow"),
        ("scikit-learn", "scikit-learn"),
        ("pandas", "pandas"),
        ("NumPy", "numpy"),
    ):
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _docstring_safe(text: str, limit: int = 60) -> str:
    """User text (a run name) that cannot end or break a docstring."""
    text = "".join(ch for ch in " ".join(text.split()) if ch.isprintable())
    text = re.sub(r'["\\]', "'", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _line(text: str) -> str:
    """One source line; a long literal (a file path) gets a noqa rather than a broken string."""
    return text if len(text) <= _MAX_LINE else f"{text}  # noqa: E501"


# --------------------------------------------------------------------------------------------
# Header, imports, settings.


def _header(ctx: _Context) -> str:
    cfg = ctx.config
    es, ck = cfg.early_stopping, cfg.checkpoint
    usage = f"python {script_file_name(cfg)}" + (" [CSV_FILE]" if ctx.is_csv else "")
    usage += " [--checkpoint PATH]" if ck.enabled else ""
    if es.enabled:
        stops = f"Stops: EarlyStopping on {_docstring_safe(es.monitor)}, patience {es.patience}."
    else:
        stops = f"Stops: no early stopping; up to {cfg.fit.max_epochs:,} epochs."
    if ck.enabled:
        kept = f"the best model by {_docstring_safe(ck.monitor)}" if ck.save_best_only else "the last model"
        stops += f" ModelCheckpoint keeps {kept}."
    paragraphs = [
        '"""An Early Stopping Lab run, exported as a plain Keras script.',
        f'Run "{_docstring_safe(cfg.name)}". '
        f"Data: {ctx.spec.label}, {_PREPARED[ctx.spec.input_kind]} as the app did it "
        f"(seed {cfg.fit.seed}). "
        f"Model: {_model_summary(ctx)}. {stops}",
        f"Run it with:\n\n    {usage}",
        "It prints Keras' log of each epoch and, last, a line RESULT {...} with the best epoch, "
        "the epoch training stopped at and the test metrics of the kept model, as JSON."
        + (" The CSV file defaults to the one the run was trained on (CSV_PATH)." if ctx.is_csv else ""),
    ]
    if ctx.versions:
        paragraphs.append(
            "Exported with "
            + ", ".join(f"{k} {v}" for k, v in ctx.versions.items())
            + ". With these versions, on a CPU, it repeats the run's numbers; other versions may "
            "differ in the last digits, and then sometimes in which epoch is the best."
        )
    text = "\n\n".join(
        p if "\n" in p else textwrap.fill(p, _MAX_LINE, break_long_words=False, break_on_hyphens=False)
        for p in paragraphs
    )
    return text + '\n"""'


def _model_summary(ctx: _Context) -> str:
    m = ctx.config.model
    dropout = f", dropout {m.dropout:g}" if m.dropout > 0 else ""
    if m.name == "mlp":
        return f"MLP, {m.depth} dense layer{'s' if m.depth != 1 else ''} of {m.units} units{dropout}"
    if m.name == "cnn":
        return f"small CNN, {m.filters} and {m.filters * 2} filters, dense {m.units}{dropout}"
    return ctx.model.label


def _imports(lines: set[str]) -> str:
    def key(line: str) -> tuple[bool, bool, str]:
        module = line.split()[1]
        return (module.split(".")[0] not in _STDLIB, line.startswith("from "), module.lower())

    ordered = sorted(lines, key=key)
    out: list[str] = []
    for i, line in enumerate(ordered):
        if i and key(ordered[i - 1])[0] != key(line)[0]:
            out.append("")
        out.append(line)
    return "\n".join(out)


def _settings(ctx: _Context) -> str:
    cfg = ctx.config
    d, m, f = cfg.data, cfg.model, cfg.fit
    rows: list[tuple[str, object, str]] = [("SEED", f.seed, "Python, NumPy and TensorFlow; also the splits")]
    if ctx.is_csv:
        rows += [("CSV_PATH", ctx.csv_path, "the file the run was trained on")]
        fmt = d.csv
        rows += [("SKIP_ROWS", fmt.skip_rows, "lines before the header (or the first row)")]
        rows += [("HEADER", fmt.header, "False: the columns are named column 1..N")]
        rows += [("DELIMITER", fmt.delimiter, '"auto": detected as the app does')]
        rows += [("DECIMAL", fmt.decimal, "decimal separator")]
        if ctx.spec.name == "text_csv":
            rows += [("TEXT_COLUMN", d.text_column, "")]
        rows += [("TARGET_COLUMN", d.target_column, "the column to predict")]
        rows += [("TASK", ctx.task, "None: inferred from the target, as the app does")]
    else:
        rows += [("TASK", ctx.task, "")]
    if ctx.spec.source != "keras":
        rows += [("TEST_FRACTION", d.test_fraction, "share held out for the final test, first")]
    rows += [("VALIDATION_SPLIT", f.validation_split, "share of the rest for validation")]
    rows += [("MAX_SAMPLES", d.max_samples, "cap on the number of samples (None: all)")]
    if ctx.spec.input_kind == "sequence":
        rows += [("NUM_WORDS", d.num_words, "vocabulary size"), ("MAXLEN", d.maxlen, "tokens per text")]
    if ctx.spec.source == "synthetic":
        rows += [("GENERATOR_SEED", datasets.GENERATOR_SEED, "the synthetic set is one fixed set")]
    for knob, comment in (
        ("units", "width of the dense layer(s)"),
        ("depth", "hidden dense layers"),
        ("dropout", "dropout rate (0: no dropout layer)"),
        ("filters", "filters of the first conv block"),
    ):
        if knob in ctx.model.knobs:
            rows.append((knob.upper(), getattr(m, knob), comment))
    rows += [
        ("MAX_EPOCHS", f.max_epochs, ""),
        ("BATCH_SIZE", f.batch_size, ""),
        ("LEARNING_RATE", f.learning_rate, f"of the {_OPTIMIZERS[f.optimizer]} optimizer"),
    ]
    if cfg.checkpoint.enabled:
        rows += [("CHECKPOINT_PATH", f"checkpoint{cfg.checkpoint.format}", "where ModelCheckpoint saves")]
    out = ["# The run's settings (its config JSON has them all)."]
    for name, value, comment in rows:
        text = f"{name} = {_lit(value)}"
        if comment and len(text) + 2 + 2 + len(comment) <= _MAX_LINE:
            text += f"  # {comment}"
        out.append(_line(text))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Data: shared helpers, then one loader per dataset (core/datasets.py).


def _epoch_order_piece() -> _Piece:
    """core/epoch_order.py's two classes, copied from its source: one definition, no drift."""
    source = (Path(__file__).parents[1] / "engine" / "epoch_order.py").read_text()
    tree = ast.parse(source)
    classes = [ast.get_source_segment(source, n) for n in tree.body if isinstance(n, ast.ClassDef)]
    return _Piece("\n\n\n".join(classes), ("import math",))


_DATA_TUPLE = _Piece(
    _code('''
        class Data(NamedTuple):
            """The three parts of the data; labels are int32 for multiclass, else float32."""

            x_train: np.ndarray
            y_train: np.ndarray
            x_val: np.ndarray | None  # None when VALIDATION_SPLIT is 0
            y_val: np.ndarray | None
            x_test: np.ndarray
            y_test: np.ndarray
            task: str  # binary, multiclass or regression
            classes: list[str]  # class names (empty for regression)


        def to_data(prep, y, train, val, test, task, classes) -> Data:
            """prep(rows) makes the model inputs of those rows; the same for every part."""
            y = y.astype(np.int32 if task == "multiclass" else np.float32)
            return Data(
                x_train=prep(train),
                y_train=y[train],
                x_val=None if val is None else prep(val),
                y_val=None if val is None else y[val],
                x_test=prep(test),
                y_test=y[test],
                task=task,
                classes=classes,
            )


        def take(idx, y, size, classify):
            """Split the rows idx into (rest, taken), stratified when every class allows it."""
            if classify:
                try:
                    return train_test_split(
                        idx, test_size=size, random_state=SEED, stratify=y[idx]
                    )
                except ValueError:
                    pass  # a class too small to stratify: the app splits without it
            return train_test_split(idx, test_size=size, random_state=SEED)
    '''),
    ("from typing import NamedTuple", "from sklearn.model_selection import train_test_split"),
)

_SPLIT = _Piece(
    _code('''
        def split_indices(y, classify):
            """Rows of train, validation and test: the test part is split off first, so it never
            depends on the validation split; validation comes out of the rest."""
            idx = np.arange(len(y))
            if MAX_SAMPLES is not None and MAX_SAMPLES < len(idx):
                idx = take(idx, y, MAX_SAMPLES, classify)[1]
            rest, test = take(idx, y, TEST_FRACTION, classify)
            val = None
            if VALIDATION_SPLIT > 0:
                rest, val = take(rest, y, VALIDATION_SPLIT, classify)
            return rest, val, test
    ''')
)


def _builtin(loader: str, about: str, image: bool = False) -> Callable[[_Context], list[_Piece]]:
    """scikit-learn's digits / breast cancer / wine: features scaled, or digits as 8x8 images."""

    def pieces(ctx: _Context) -> list[_Piece]:
        if image:
            x_line = "x = bunch.data / 16.0  # pixel values are 0..16"
            prep = _code("""
                def prep(rows):
                    return x[rows].reshape(len(rows), 8, 8, 1).astype(np.float32)
            """)
        else:
            x_line = "x = bunch.data"
            prep = _SCALED_PREP
        code = _code(
            '''
            def load_data() -> Data:
                """<<about>>"""
                bunch = <<loader>>()
                <<x_line>>
                y = bunch.target.astype(np.int64)
                classes = [str(c) for c in bunch.target_names]
                train, val, test = split_indices(y, classify=True)

            <<prep>>

                return to_data(prep, y, train, val, test, TASK, classes)
            ''',
            about=about,
            loader=loader,
            x_line=x_line,
            prep=textwrap.indent(prep, "    "),
        )
        imports = (f"from sklearn.datasets import {loader}",)
        if not image:
            imports += ("from sklearn.preprocessing import StandardScaler",)
        return [_DATA_TUPLE, _SPLIT, _Piece(code, imports)]

    return pieces


# Standardize with the mean and spread of the training part only (nothing leaks from val/test).
_SCALED_PREP = _code("""
    scaler = StandardScaler().fit(x[train])  # statistics of the training part only

    def prep(rows):
        return scaler.transform(x[rows]).astype(np.float32)
""")


def _overfit(ctx: _Context) -> list[_Piece]:
    code = _code(
        '''
        def load_data() -> Data:
            """Synthetic: few noisy samples, many useless features; validation loss turns up."""
            x, y = make_classification(
                n_samples=MAX_SAMPLES or <<size>>,
                n_features=60,
                n_informative=6,
                n_redundant=0,
                flip_y=0.15,
                class_sep=1.5,
                random_state=GENERATOR_SEED,
            )
            train, val, test = split_indices(y, classify=True)

        <<prep>>

            return to_data(prep, y, train, val, test, TASK, ["0", "1"])
        ''',
        size=str(datasets.SYNTHETIC_SIZES["overfit"]),
        prep=textwrap.indent(_SCALED_PREP, "    "),
    )
    imports = (
        "from sklearn.datasets import make_classification",
        "from sklearn.preprocessing import StandardScaler",
    )
    return [_DATA_TUPLE, _SPLIT, _Piece(code, imports)]


_TEXT = _Piece(
    _code('''
        BR = re.compile(r"<br\\s*/?>", re.IGNORECASE)  # IMDB-style line breaks


        def vectorized(texts, y, task, classes) -> Data:
            """The seed's tokenization, after the split: the vocabulary (NUM_WORDS ids, 0 for
            padding and 1 for unknown words) comes from the training texts alone."""
            train, val, test = split_indices(y, classify=True)
            clean = np.array([BR.sub(" ", t) for t in texts], dtype=object)
            vectorizer = layers.TextVectorization(
                max_tokens=NUM_WORDS,
                output_sequence_length=MAXLEN,
                standardize="lower_and_strip_punctuation",
            )
            vectorizer.adapt(clean[train].astype(str), batch_size=1024)

            def prep(rows):
                out = np.zeros((len(rows), MAXLEN), dtype=np.int32)
                for start in range(0, len(rows), 4096):  # bounded memory for big sets
                    chunk = clean[rows[start : start + 4096]].astype(str)
                    out[start : start + len(chunk)] = np.asarray(vectorizer(chunk))
                return out

            return to_data(prep, y, train, val, test, task, classes)
    '''),
    ("import re",),
)


def _word_lists() -> str:
    rows = ["WORDS = {"]
    for kind, text in datasets.REVIEW_WORDS.items():
        wrapped = textwrap.wrap(" ".join(text.split()), _MAX_LINE - 8)
        rows.append(f'    "{kind}": """')
        rows += [f"        {line}" for line in wrapped]
        rows.append('    """.split(),')
    rows.append("}")
    return "\n".join(rows)


def _text_sentiment(ctx: _Context) -> list[_Piece]:
    fillers = "\n".join(f"    {_lit(s)}," for s in datasets.REVIEW_FILLER)
    code = _code(
        '''
        # Word lists and filler sentences of the generated reviews.
        <<words>>
        FILLER = (
        <<fillers>>
        )


        def generate_reviews(n):
            """English-like reviews: opinion sentences (some negated) among neutral ones, 8% of
            labels flipped. Every draw comes from one generator, in this exact order."""
            rng = np.random.default_rng(GENERATOR_SEED)

            def pick(kind):
                return str(rng.choice(WORDS[kind]))

            texts, labels = [], []
            for _ in range(n):
                label = int(rng.integers(2))
                sentences = []
                for _ in range(int(rng.integers(3, 9))):
                    if rng.random() < 0.35:
                        filler = str(rng.choice(FILLER))
                        n_min = int(rng.integers(80, 180))
                        day, who = pick("day"), pick("who")
                        noun, place = pick("noun"), pick("place")
                        sentences.append(
                            filler.format(day=day, who=who, n=n_min, noun=noun, place=place)
                        )
                        continue
                    polarity = label if rng.random() < 0.75 else 1 - label  # mixed reviews
                    negate = rng.random() < 0.2  # "not bad" says the opposite of "bad"
                    word = pick("positive" if (polarity == 1) != negate else "negative")
                    adverb = f"{pick('adverb')} " if rng.random() < 0.4 and not negate else ""
                    noun = pick("noun")
                    no = "not " if negate else ""
                    sentences.append(f"The {noun} was {no}{adverb}{word}.")
                text = " ".join(sentences)
                if rng.random() < 0.3:
                    text = text.replace(". ", ".<br /><br />", 1)  # IMDB-style line breaks
                texts.append(text)
                labels.append(label if rng.random() >= 0.08 else 1 - label)
            return texts, np.asarray(labels, dtype=np.int64)


        def load_data() -> Data:
            """Generated movie reviews (positive/negative), tokenized like IMDB."""
            texts, y = generate_reviews(MAX_SAMPLES or <<size>>)
            return vectorized(texts, y, TASK, ["negative", "positive"])
        ''',
        words=_word_lists(),
        fillers=fillers,
        size=str(datasets.SYNTHETIC_SIZES["text_sentiment"]),
    )
    return [_DATA_TUPLE, _SPLIT, _TEXT, _Piece(code)]


_CSV_READ = _Piece(
    _code('''
        def read_csv(path):
            """The CSV as the app reads it: UTF-8 (a byte-order mark is dropped), the first
            SKIP_ROWS lines skipped, then a header row (or columns named column 1..N), DELIMITER
            and DECIMAL as the run chose them; never an implicit index column."""
            with open(path, "rb") as file:
                text = file.read().decode("utf-8-sig")
            parts = text.split("\\n", SKIP_ROWS)
            text = parts[SKIP_ROWS] if len(parts) > SKIP_ROWS else ""
            sep = (detect_delimiter(text) or ",") if DELIMITER == "auto" else DELIMITER
            df = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                header=0 if HEADER else None,
                index_col=False,
                decimal=DECIMAL,
                low_memory=False,
            )
            if not HEADER:
                df.columns = [f"column {i}" for i in range(1, df.shape[1] + 1)]
            return df


        def encode_target(target, task):
            """Regression: the numbers. Classes: codes 0..k-1 in sorted label order."""
            if task == "regression":
                return pd.to_numeric(target).to_numpy(dtype=np.float64), []
            codes, uniques = pd.factorize(target, sort=True)
            return codes.astype(np.int64), [label_text(v) for v in uniques]


        def label_text(value):
            """A class name; a whole-number float label 1.0 is called "1", as the app does."""
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            return str(value)
    '''),
    ("import io", "import pandas as pd"),
)


def _csv_read(ctx: _Context) -> list[_Piece]:
    """The reader, and, for delimiter "auto", the app's own detection rule (its source, verbatim)."""
    if ctx.config.data.csv.delimiter != "auto":
        return [_CSV_READ]
    return [_Piece(inspect.getsource(datasets.detect_delimiter).strip("\n")), _CSV_READ]


_INFER_TASK = _Piece(
    _code(f'''
        def infer_task(target):
            """binary for 2 values; multiclass for a few whole numbers or labels (at most
            {datasets.MAX_INFERRED_CLASSES}, and at most one per two rows); regression otherwise."""
            values = target.dropna()
            distinct = values.nunique()
            if distinct == 2:
                return "binary"
            if not pd.api.types.is_numeric_dtype(values):
                return "multiclass"
            few = distinct <= {datasets.MAX_INFERRED_CLASSES} and distinct <= len(values) / 2
            whole = bool(np.all(np.mod(values.to_numpy(dtype=np.float64), 1) == 0))
            return "multiclass" if whole and few else "regression"
    ''')
)


def _csv_task_line(ctx: _Context) -> str:
    return "task = TASK" if ctx.task else "task = TASK or infer_task(df[TARGET_COLUMN])"


def _csv(ctx: _Context) -> list[_Piece]:
    code = _code(
        '''
        def load_data(path) -> Data:
            """Your CSV: numeric feature columns, standardized; the target column encoded."""
            df = read_csv(path)
            <<task_line>>
            y, classes = encode_target(df[TARGET_COLUMN], task)
            features = df.drop(columns=[TARGET_COLUMN]).apply(pd.to_numeric)
            x = features.astype(np.float64).to_numpy(np.float64)
            train, val, test = split_indices(y, classify=task != "regression")

        <<prep>>

            return to_data(prep, y, train, val, test, task, classes)
        ''',
        task_line=_csv_task_line(ctx),
        prep=textwrap.indent(_SCALED_PREP, "    "),
    )
    extra = [] if ctx.task else [_INFER_TASK]
    piece = _Piece(code, ("from sklearn.preprocessing import StandardScaler",))
    return [_DATA_TUPLE, _SPLIT, *_csv_read(ctx), *extra, piece]


def _text_csv(ctx: _Context) -> list[_Piece]:
    code = _code(
        '''
        def load_data(path) -> Data:
            """Your CSV of texts: the text column tokenized, the label column encoded."""
            df = read_csv(path)
            <<task_line>>
            y, classes = encode_target(df[TARGET_COLUMN], task)
            texts = df[TEXT_COLUMN].astype(str).tolist()
            return vectorized(texts, y, task, classes)
        ''',
        task_line=_csv_task_line(ctx),
    )
    extra = [] if ctx.task else [_INFER_TASK]
    return [_DATA_TUPLE, _SPLIT, *_csv_read(ctx), *extra, _TEXT, _Piece(code)]


def _keras_set(ctx: _Context) -> list[_Piece]:
    name = ctx.spec.name
    if name == "imdb":
        load = "keras.datasets.imdb.load_data(num_words=NUM_WORDS)"
        prep = _code("""
            def prep(rows):
                return keras.utils.pad_sequences(list(x[rows]), maxlen=MAXLEN).astype(np.int32)
        """)
        x_line = "x = np.concatenate([np.asarray(x_tr, dtype=object), np.asarray(x_te, dtype=object)])"
        classes = '["negative", "positive"]'
    else:
        load = f"keras.datasets.{name}.load_data()"
        prep = _code("""
            def prep(rows):
                images = x[rows].astype(np.float32) / 255.0
                return images.reshape(len(rows), *x.shape[1:3], 1)
        """)
        x_line = "x = np.concatenate([x_tr, x_te])"
        if name == "fashion_mnist":
            classes = "[\n" + "\n".join(f"    {_lit(c)}," for c in datasets.FASHION_CLASSES) + "\n]"
        else:
            classes = "[str(i) for i in range(10)]"
    code = _code(
        '''
        def subsample(idx, y, n):
            """n of the rows idx, stratified (all of them when n is not smaller)."""
            return idx if n >= len(idx) else take(idx, y, n, classify=True)[1]


        def load_data() -> Data:
            """<<label>> with Keras' own train/test split (downloaded once by Keras).

            MAX_SAMPLES keeps a stratified share of both parts; validation comes out of Keras'
            training part."""
            (x_tr, y_tr), (x_te, y_te) = <<load>>
            y_tr, y_te = np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64)
            keep_tr, keep_te = np.arange(len(y_tr)), np.arange(len(y_te))
            if MAX_SAMPLES is not None and MAX_SAMPLES < len(y_tr) + len(y_te):
                n_tr = max(1, round(MAX_SAMPLES * len(y_tr) / (len(y_tr) + len(y_te))))
                keep_tr = subsample(keep_tr, y_tr, n_tr)
                keep_te = subsample(keep_te, y_te, max(1, MAX_SAMPLES - n_tr))
            train, val = keep_tr, None
            if VALIDATION_SPLIT > 0:
                train, val = take(keep_tr, y_tr, VALIDATION_SPLIT, classify=True)
            # One array of Keras' train and test samples: test rows come after the train rows.
        <<x_line>>
            y = np.concatenate([y_tr, y_te])
            test = keep_te + len(y_tr)

        <<prep>>

            classes = <<classes>>
            return to_data(prep, y, train, val, test, TASK, classes)
        ''',
        label=ctx.spec.label.removesuffix(" (Keras)"),
        load=load,
        x_line=textwrap.indent(x_line, "    "),
        prep=textwrap.indent(prep, "    "),
        classes=textwrap.indent(classes, "    ").lstrip(),
    )
    return [_DATA_TUPLE, _Piece(code)]


_DATA: dict[str, Callable[[_Context], list[_Piece]]] = {
    "digits": _builtin("load_digits", "scikit-learn's 1,797 handwritten 8x8 digits as 64 features."),
    "digits_images": _builtin("load_digits", "scikit-learn's 1,797 digits as 8x8 images.", image=True),
    "breast_cancer": _builtin("load_breast_cancer", "scikit-learn's 569 tumours, 30 features."),
    "wine": _builtin("load_wine", "scikit-learn's 178 wines, 13 chemical features."),
    "overfit": _overfit,
    "text_sentiment": _text_sentiment,
    "csv": _csv,
    "text_csv": _text_csv,
    "imdb": _keras_set,
    "mnist": _keras_set,
    "fashion_mnist": _keras_set,
}


# --------------------------------------------------------------------------------------------
# Models: the layers of each preset (core/models.py), the output layer created first.


def _mlp_layers(ctx: _Context) -> list[str]:
    m = ctx.config.model
    out = ["layers.Flatten()"] if ctx.spec.input_kind == "image" else []
    for _ in range(m.depth):
        out.append('layers.Dense(UNITS, activation="relu")')
        if m.dropout > 0:
            out.append("layers.Dropout(DROPOUT)")
    return out


def _cnn_layers(ctx: _Context) -> list[str]:
    m = ctx.config.model
    shape = datasets.fixed_shape(ctx.spec.name)
    size, out = min(shape[:2]), []
    for block in range(2):  # pool only while the feature map stays at least 2x2
        filters = "FILTERS" if block == 0 else f"FILTERS * {2**block}"
        out.append(f'layers.Conv2D({filters}, 3, padding="same", activation="relu")')
        if size >= 4:
            out.append("layers.MaxPooling2D(2)")
            size //= 2
    out.append("layers.Flatten()")
    if m.dropout > 0:
        out.append("layers.Dropout(DROPOUT)")
    out.append('layers.Dense(UNITS, activation="relu")')
    return out


def _seed_conv1d_layers(ctx: _Context) -> list[str]:
    return [
        "layers.Embedding(NUM_WORDS, 50)",
        "layers.Dropout(0.2)",
        'layers.Conv1D(250, 3, padding="valid", activation="relu", strides=1)',
        "layers.GlobalMaxPooling1D()",
        "layers.Dense(250)",
        "layers.Dropout(0.2)",
        'layers.Activation("relu")',
    ]


_MODEL_DOCS = {
    "mlp": "Dense layers with ReLU (and dropout when DROPOUT > 0).",
    "cnn": "Two Conv2D blocks and a dense layer.",
    "seed_conv1d": "The Keras IMDB Conv1D example, as the seed tutorial trains it.",
}


def _model(layer_lines: Callable[[_Context], list[str]]) -> Callable[[_Context], list[_Piece]]:
    def pieces(ctx: _Context) -> list[_Piece]:
        cfg = ctx.config
        dtype = ', dtype="int32"' if ctx.spec.input_kind == "sequence" else ""
        hidden = [f"keras.Input(shape=data.x_train.shape[1:]{dtype})", *layer_lines(ctx), "*output"]
        stack = "\n".join(f"            {line}," for line in hidden)
        if ctx.task is None:  # a CSV whose task is inferred when the script runs
            head = "output, loss, metrics = output_layers(data)"
            metric_list, loss = "metrics", "loss"
        else:
            output, loss_name = _HEAD[ctx.task]
            head = f"output = {output}"
            metric_list = "[" + ", ".join(_lit(x) for x in metrics.TASK_METRICS[ctx.task]) + "]"
            loss = _lit(loss_name)
        optimizer = f"keras.optimizers.{_OPTIMIZERS[cfg.fit.optimizer]}(learning_rate=LEARNING_RATE)"
        code = _code(
            '''
            def build_model(data: Data) -> keras.Model:
                """<<doc>>"""
                # The output layer is created before the others, as in the app: Keras draws the
                # seed of a layer's initial weights when the layer is created, so this order
                # gives the same initial weights.
                <<head>>
                model = keras.Sequential(
                    [
            <<stack>>
                    ],
                    name=<<name>>,
                )
                model.compile(
                    optimizer=<<optimizer>>,
                    loss=<<loss>>,
                    metrics=<<metrics>>,
                )
                return model
            ''',
            doc=_MODEL_DOCS[cfg.model.name],
            head=head,
            stack=stack,
            name=_lit(cfg.model.name),
            optimizer=optimizer,
            loss=loss,
            metrics=metric_list,
        )
        pieces = [_Piece(code)]
        if ctx.task is None:
            pieces.insert(0, _output_layers_piece())
        return pieces

    return pieces


def _output_layers_piece() -> _Piece:
    """The task chooser, for a CSV whose task is only known when the script reads it."""
    lines = [
        "def output_layers(data):",
        '    """Output layer(s), loss and metrics for the task, as core/models.py picks them."""',
    ]
    for task in ("binary", "multiclass"):
        output, loss = _HEAD[task]
        names = "[" + ", ".join(_lit(x) for x in metrics.TASK_METRICS[task]) + "]"
        lines += [
            f"    if data.task == {_lit(task)}:",
            f"        output = {output}",
            f"        return output, {_lit(loss)}, {names}",
        ]
    output, loss = _HEAD["regression"]
    names = "[" + ", ".join(_lit(x) for x in metrics.TASK_METRICS["regression"]) + "]"
    lines.append(f"    return {output}, {_lit(loss)}, {names}")
    return _Piece("\n".join(lines))


_MODELS: dict[str, Callable[[_Context], list[_Piece]]] = {
    "mlp": _model(_mlp_layers),
    "cnn": _model(_cnn_layers),
    "seed_conv1d": _model(_seed_conv1d_layers),
}


# --------------------------------------------------------------------------------------------
# main: seed, data, model, callbacks, fit, the kept checkpoint on the test part, RESULT.


def _kwargs(call: str, kwargs: list[tuple[str, str]], indent: str = "    ") -> str:
    inner = "\n".join(f"{indent}    {k}={v}," if k else f"{indent}    {v}," for k, v in kwargs)
    return f"{indent}{call}(\n{inner}\n{indent})"


def _callbacks(ctx: _Context) -> tuple[str, list[str]]:
    """The callback lines of main and the names that go into fit's callbacks list."""
    cfg = ctx.config
    blocks, names = [], []
    if cfg.early_stopping.enabled:
        e = cfg.early_stopping
        call = _kwargs(
            "early_stopping = keras.callbacks.EarlyStopping",
            [
                *((k, _lit(v)) for k, v in arguments.keras_arguments(e).items()),
                ("verbose", "1"),
            ],
        )
        blocks.append("    # Stops when the monitored value has not improved for `patience` epochs.\n" + call)
        names.append("early_stopping")
    if cfg.checkpoint.enabled:
        c = cfg.checkpoint
        call = _kwargs(
            "checkpoint = keras.callbacks.ModelCheckpoint",
            [
                ("", "args.checkpoint"),
                *((k, _lit(v)) for k, v in arguments.checkpoint_arguments(c).items()),
                ("verbose", "1"),
            ],
        )
        what = "the best model so far" if c.save_best_only else "the model after every epoch"
        blocks.append(
            "    # Saves "
            + what
            + ". A file left by an earlier run\n"
            + "    # must not pass for this run's, so it goes first.\n"
            + "    if os.path.exists(args.checkpoint):\n"
            + "        os.remove(args.checkpoint)\n"
            + call
        )
        names.append("checkpoint")
    blocks.append(
        "    # The app also stops a run whose loss becomes NaN (NaN never counts as best)."
        "\n    stop_on_nan = keras.callbacks.TerminateOnNaN()"
    )
    names.append("stop_on_nan")
    return "\n".join(blocks), names


def _best_lines(ctx: _Context) -> str:
    """How the engine decides the headline best epoch (core/live.py _best_fields), in plain Keras."""
    cfg = ctx.config
    ck, es = cfg.checkpoint, cfg.early_stopping
    if ck.enabled and ck.save_best_only:
        return _code(
            f"""
                # The best epoch is the one ModelCheckpoint last saved: the first epoch that
                # logged its `best` value (none if no epoch beat the initial threshold).
                monitor = {_lit(ck.monitor)}
                best_epoch = best_value = None
                if os.path.exists(args.checkpoint):
                    best_value = checkpoint.best
                    best_epoch = history.history[monitor].index(best_value) + 1
            """
        )
    if es.enabled:
        return _code(
            f"""
                # The best epoch is EarlyStopping's (it counts from 0; Keras prints from 1).
                monitor = {_lit(es.monitor)}
                best_epoch = best_value = None
                if early_stopping.best is not None:
                    best_epoch, best_value = early_stopping.best_epoch + 1, early_stopping.best
            """
        )
    return "monitor = best_epoch = best_value = None  # nothing tracks a best epoch"


def _evaluate_lines(ctx: _Context) -> str:
    ck = ctx.config.checkpoint
    if not ck.enabled:
        return "    # No checkpoint: the test part is evaluated with the final weights."
    load = (
        "# Weights only: the same model again, then the weights (Keras may warn that it\n"
        "        # skips the optimizer's state, which evaluation does not use).\n"
        "        model = build_model(data)\n"
        "        model.load_weights(args.checkpoint)"
        if ck.save_weights_only
        else "model = keras.models.load_model(args.checkpoint)"
    )
    return (
        "    # The kept checkpoint, not the last weights, is evaluated on the test part.\n"
        "    if os.path.exists(args.checkpoint):\n"
        f"        {load}\n"
        "    else:\n"
        '        print("No checkpoint was saved; evaluating the final weights instead.")'
    )


def _main(ctx: _Context) -> _Piece:
    cfg = ctx.config
    callback_lines, names = _callbacks(ctx)
    args_lines = []
    if ctx.is_csv:
        args_lines.append('    parser.add_argument("csv", nargs="?", default=CSV_PATH, help="the CSV file")')
    if cfg.checkpoint.enabled:
        args_lines.append(
            '    parser.add_argument("--checkpoint", default=CHECKPOINT_PATH, help="where to save")'
        )
    validation = "        validation_data=(data.x_val, data.y_val),\n" if ctx.has_val else ""
    stopped = (
        "stopped_epoch = None  # None: not stopped early\n"
        "    if early_stopping.stopped_epoch > 0:  # it counts from 0 too\n"
        "        stopped_epoch = early_stopping.stopped_epoch + 1"
        if cfg.early_stopping.enabled
        else "stopped_epoch = None  # no early stopping"
    )
    code = _code(
        """
        def main() -> None:
            parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        <<args>>
            <<parse>>

            # Seed Python, NumPy and TensorFlow before the data is loaded, as the app does: the
            # initial weights and dropout follow from it. The order of the samples in each
            # epoch follows from SEED and the epoch alone (EpochShuffledBatches), so a run
            # resumed from a saved state sees the same batches as one never interrupted.
            keras.utils.set_random_seed(SEED)
            data = load_data(<<data_arg>>)
            n_train, n_test = len(data.x_train), len(data.x_test)
            n_val = 0 if data.x_val is None else len(data.x_val)
            print(f"{n_train} training, {n_val} validation and {n_test} test samples.")
            model = build_model(data)

        <<callbacks>>
            batches = EpochShuffledBatches(data.x_train, data.y_train, BATCH_SIZE, SEED)
            history = model.fit(
                batches,
        <<validation>>        epochs=MAX_EPOCHS,
                shuffle=False,  # the batches shuffle themselves (see EpochShuffledBatches)
                callbacks=[ShuffleEachEpoch(batches), <<names>>],
                verbose=2,
            )

        <<best>>
            <<stopped>>

        <<evaluate>>
            test = model.evaluate(
                data.x_test, data.y_test, batch_size=BATCH_SIZE, verbose=0, return_dict=True
            )
            result = {
                "monitor": monitor,
                "best_epoch": best_epoch,  # 1-based, as Keras prints epochs
                "best_value": best_value,
                "stopped_epoch": stopped_epoch,
                "epochs_run": len(history.epoch),
                "test": {name: float(value) for name, value in test.items()},
            }
            print("RESULT " + json.dumps(result))
        """,
        args="\n".join(args_lines),
        parse="args = parser.parse_args()" if args_lines else "parser.parse_args()  # only --help",
        data_arg="args.csv" if ctx.is_csv else "",
        callbacks=callback_lines,
        validation=validation,
        names=", ".join(names),
        best=textwrap.indent(_best_lines(ctx), "    "),
        stopped=stopped,
        evaluate=_evaluate_lines(ctx),
    )
    imports = ("import argparse", "import json") + (("import os",) if cfg.checkpoint.enabled else ())
    return _Piece(code, imports)
