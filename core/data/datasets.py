"""Dataset registry and loaders: every dataset becomes the same train / validation / test arrays.

The split order is the point of the seed tutorial: the test part is split off first and never seen
until the end, validation (what early stopping watches) comes out of the rest, and the scaler or
vocabulary is fitted on the final training part only, so nothing leaks into validation or test.

TensorFlow is imported only inside the loaders that need it (text tokenization and the Keras sets):
``describe`` and the registry stay cheap enough to run on every page draw.
"""

from __future__ import annotations

import collections
import csv
import functools
import io
import math
import os
import pathlib
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.config import TASKS, CsvFormat, DataConfig
from core.data import uploads

MIN_ROWS = 10  # fewer cannot give train, validation and test at least a row or two each
MAX_INFERRED_CLASSES = 50  # more distinct values than this is not inferred as classes
GENERATOR_SEED = 20190601  # synthetic sets are one fixed dataset; the run seed only splits it


class DatasetError(ValueError):
    """A user-facing, actionable message (shown in the UI verbatim).

    ``fixes``: (button label, {setting path: value}) the page may offer to apply with one click.
    """

    def __init__(self, message: str, fixes: Iterable[tuple[str, dict[str, Any]]] = ()):
        super().__init__(message)
        self.fixes = tuple(fixes)


class DatasetUnavailable(DatasetError):
    """A Keras dataset that is neither cached nor downloadable."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str
    description: str  # one line for the UI
    source: str  # "builtin" (scikit-learn), "synthetic", "csv", "keras"
    task: str | None  # None: inferred from the file
    input_kind: str | None  # "tabular" / "image" / "sequence"
    offline: bool  # works without internet


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec(
            "digits",
            "Digits (tabular)",
            "scikit-learn's 1,797 handwritten 8x8 digits as 64 pixel features; 10 classes.",
            "builtin",
            "multiclass",
            "tabular",
            True,
        ),
        DatasetSpec(
            "digits_images",
            "Digits (8x8 images)",
            "The same 1,797 digits as 8x8 grayscale images, for the CNN without a download.",
            "builtin",
            "multiclass",
            "image",
            True,
        ),
        DatasetSpec(
            "breast_cancer",
            "Breast cancer",
            "scikit-learn's 569 tumour measurements (30 features): malignant or benign.",
            "builtin",
            "binary",
            "tabular",
            True,
        ),
        DatasetSpec(
            "wine",
            "Wine",
            "scikit-learn's 178 wines (13 chemical features) from 3 cultivars.",
            "builtin",
            "multiclass",
            "tabular",
            True,
        ),
        DatasetSpec(
            "overfit",
            "Overfitting demo",
            "Synthetic: few noisy samples, many useless features; validation loss turns up within epochs.",
            "synthetic",
            "binary",
            "tabular",
            True,
        ),
        DatasetSpec(
            "text_sentiment",
            "Generated reviews",
            "Synthetic movie reviews (positive/negative), tokenized like IMDB; the Conv1D demo offline.",
            "synthetic",
            "binary",
            "sequence",
            True,
        ),
        DatasetSpec(
            "csv",
            "Your CSV (table)",
            "Upload a CSV with numeric feature columns and pick the column to predict.",
            "csv",
            None,
            "tabular",
            True,
        ),
        DatasetSpec(
            "text_csv",
            "Your CSV (text)",
            "Upload a CSV with a text column and a label column, e.g. the 50,000 IMDB reviews CSV.",
            "csv",
            None,
            "sequence",
            True,
        ),
        DatasetSpec(
            "imdb",
            "IMDB reviews (Keras)",
            "The seed's data: 50,000 movie reviews, positive or negative. Downloaded once (17 MB).",
            "keras",
            "binary",
            "sequence",
            False,
        ),
        DatasetSpec(
            "mnist",
            "MNIST (Keras)",
            "70,000 handwritten 28x28 digits. Downloaded once (11 MB).",
            "keras",
            "multiclass",
            "image",
            False,
        ),
        DatasetSpec(
            "fashion_mnist",
            "Fashion-MNIST (Keras)",
            "70,000 28x28 clothing images in 10 classes. Downloaded once (30 MB).",
            "keras",
            "multiclass",
            "image",
            False,
        ),
    )
}


@dataclass(frozen=True)
class DatasetInfo:
    """What config validation needs before training; computed without TensorFlow or downloads."""

    task: str
    input_kind: str
    n_classes: int | None
    n_samples: int | None
    columns: tuple[str, ...] = ()  # every column of a CSV file
    input_shape: tuple[int, ...] | None = None  # per sample, as the model sees it


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None  # None when validation_split == 0
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    input_kind: str
    classes: list[str]  # class labels as strings (empty for regression)
    input_shape: tuple[int, ...]  # per-sample shape
    vocab_size: int | None  # sequences only (num_words)
    feature_names: list[str]
    description: str


# --------------------------------------------------------------------------------------------
# Static facts about the built-in and Keras sets (so describe() needs no loading).

_BUILTIN_SIZES = {
    "digits": (1797, 10),
    "digits_images": (1797, 10),
    "breast_cancer": (569, 2),
    "wine": (178, 3),
}
SYNTHETIC_SIZES = {"overfit": 400, "text_sentiment": 2000}
_FIXED_SHAPES = {
    "digits": (64,),
    "digits_images": (8, 8, 1),
    "breast_cancer": (30,),
    "wine": (13,),
    "overfit": (60,),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
}
_KERAS_SIZES = {"imdb": (25000, 25000, 2), "mnist": (60000, 10000, 10), "fashion_mnist": (60000, 10000, 10)}

# Where keras.datasets.<name>.load_data fetches its files (keras/src/datasets/*.py, Keras 3.15).
_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_KERAS_FILES: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    # name: (cache subdir, file names, sha256 Keras checks; Fashion-MNIST is not checked)
    "imdb": ("datasets", ("imdb.npz",), "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),
    "mnist": ("datasets", ("mnist.npz",), "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
    "fashion_mnist": (
        os.path.join("datasets", "fashion-mnist"),
        (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        ),
        None,
    ),
}
_KERAS_OFFLINE_ALTERNATIVE = {
    "imdb": "use the offline text_sentiment set, or upload the 50,000-review IMDB CSV as text_csv "
    "(text column 'review', target 'sentiment')",
    "mnist": "use digits_images (scikit-learn's 8x8 digits, no download needed)",
    "fashion_mnist": "use digits_images (scikit-learn's 8x8 digits, no download needed)",
}
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def fixed_shape(name: str) -> tuple[int, ...] | None:
    """The per-sample shape of a set whose shape does not depend on the config or a file."""
    return _FIXED_SHAPES.get(name)


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.") from None


def _check_task(cfg: DataConfig, spec: DatasetSpec) -> None:
    if cfg.task is not None and cfg.task not in TASKS:
        raise DatasetError(f"Task must be one of {', '.join(TASKS)}, not {cfg.task!r}.")
    if spec.task is not None and cfg.task not in (None, spec.task):
        raise DatasetError(
            f"{spec.label} is a {spec.task} task; a task override ({cfg.task}) applies only to CSV files. "
            "Clear the task setting."
        )


def _capped(n: int, cfg: DataConfig) -> int:
    return n if cfg.max_samples is None else min(n, cfg.max_samples)


def describe(cfg: DataConfig, *, uploads_dir: str | os.PathLike | None = None) -> DatasetInfo:
    """Task, input kind and size, cheaply: no TensorFlow, no download; CSVs are read with pandas.

    ``uploads_dir``: where uploaded CSVs are (default ``<runs>/uploads`` of the default runs folder).
    """
    spec = _spec(cfg.name)
    _check_task(cfg, spec)
    shape = _FIXED_SHAPES.get(spec.name, (cfg.maxlen,) if spec.input_kind == "sequence" else None)
    if spec.source == "builtin":
        n, k = _BUILTIN_SIZES[spec.name]
        return DatasetInfo(spec.task, spec.input_kind, k, _capped(n, cfg), input_shape=shape)
    if spec.source == "synthetic":
        n = cfg.max_samples or SYNTHETIC_SIZES[spec.name]
        return DatasetInfo(spec.task, spec.input_kind, 2, n, input_shape=shape)
    if spec.source == "keras":
        n_train, n_test, k = _KERAS_SIZES[spec.name]
        return DatasetInfo(spec.task, spec.input_kind, k, _capped(n_train + n_test, cfg), input_shape=shape)
    df = _read_config_csv(cfg, uploads_dir)
    if spec.name == "text_csv":
        _, y, task, classes = _text_table(df, cfg)
        shape = (cfg.maxlen,)
    else:
        x, y, task, classes = _numeric_table(df, cfg)
        shape = (x.shape[1],)
    return DatasetInfo(
        task, spec.input_kind, len(classes) or None, _capped(len(y), cfg), tuple(map(str, df.columns)), shape
    )


def file_label(cfg: DataConfig) -> str:
    """How a run's CSV is shown: its own file name (never a server path or a hash)."""
    return cfg.file_name or "uploaded CSV"


def split_sizes(cfg: DataConfig, info: DatasetInfo, validation_split: float) -> tuple[int, int, int] | None:
    """(train, validation, test) sample counts the split will give, as scikit-learn rounds (ceil)."""
    spec = _spec(cfg.name)
    if spec.source == "keras" or not info.n_samples:
        return None  # Keras' own test split; large
    n = info.n_samples
    n_test = math.ceil(n * cfg.test_fraction)
    rest = n - n_test
    n_val = math.ceil(rest * validation_split) if validation_split > 0 else 0
    return rest - n_val, n_val, n_test


def load(
    cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: str | os.PathLike | None = None
) -> Dataset:
    """The arrays a run trains, validates and tests on; deterministic for a given seed."""
    spec = _spec(cfg.name)
    _check_task(cfg, spec)
    if not 0.0 <= validation_split < 0.9:
        raise DatasetError("The validation split must be at least 0 and below 0.9.")
    if spec.source != "keras" and not 0.0 < cfg.test_fraction < 0.9:
        raise DatasetError("The test share must be above 0 and below 0.9.")
    if cfg.max_samples is not None and cfg.max_samples < MIN_ROWS:
        raise DatasetError(f"Keep at least {MIN_ROWS} samples (max samples is {cfg.max_samples}).")
    split = functools.partial(_split_and_scale, cfg=cfg, validation_split=validation_split, seed=seed)
    if spec.source == "builtin":
        return _load_builtin(spec, split)
    if spec.name == "overfit":
        return _load_overfit(cfg, split)
    if spec.name == "text_sentiment":
        texts, y = _generate_reviews(cfg.max_samples or SYNTHETIC_SIZES["text_sentiment"])
        return _text_dataset(texts, y, "binary", ["negative", "positive"], cfg, validation_split, seed, spec)
    if spec.source == "keras":
        return _load_keras(spec, cfg, validation_split, seed)
    df = _read_config_csv(cfg, uploads_dir)
    if spec.name == "text_csv":
        texts, y, task, classes = _text_table(df, cfg)
        return _text_dataset(texts, y, task, classes, cfg, validation_split, seed, spec)
    x, y, task, classes = _numeric_table(df, cfg)
    label = f"{file_label(cfg)} (target {cfg.target_column!r})"
    return split(x.to_numpy(np.float64), y, task=task, classes=classes, names=list(x.columns), label=label)


# --------------------------------------------------------------------------------------------
# Splitting: test first, validation from the rest, scaler fitted on what is left for training.


@dataclass
class _Parts:
    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray
    note: str  # why a split could not be stratified ("" when it was, or for regression)


def _take(
    idx: np.ndarray, y: np.ndarray, size: float | int, seed: int, classify: bool
) -> tuple[np.ndarray, np.ndarray, str]:
    """Split ``idx`` into (rest, taken); stratified when every class allows it."""
    from sklearn.model_selection import train_test_split

    if classify:
        try:
            rest, taken = train_test_split(idx, test_size=size, random_state=seed, stratify=y[idx])
            return rest, taken, ""
        except ValueError:
            counts = np.bincount(y[idx].astype(np.int64))
            smallest = counts[counts > 0].min()
            note = (
                f"the smallest class has {smallest} sample, too few to stratify"
                if smallest < 2
                else f"a part too small to hold all {np.count_nonzero(counts)} classes"
            )
    else:
        note = ""
    rest, taken = train_test_split(idx, test_size=size, random_state=seed)
    return rest, taken, note


def _subsample(idx: np.ndarray, y: np.ndarray, n: int | None, seed: int, classify: bool) -> np.ndarray:
    if n is None or n >= len(idx):
        return idx
    return _take(idx, y, n, seed, classify)[1]


def _split_indices(
    y: np.ndarray,
    task: str,
    *,
    test_fraction: float,
    validation_split: float,
    seed: int,
    max_samples: int | None,
) -> _Parts:
    """Row indices of train / validation / test; the test rows never reach validation or training."""
    classify = task != "regression"
    idx = _subsample(np.arange(len(y)), y, max_samples, seed, classify)
    try:
        rest, test, note = _take(idx, y, test_fraction, seed, classify)
        val = None
        if validation_split > 0:
            rest, val, note2 = _take(rest, y, validation_split, seed, classify)
            note = note or note2
    except ValueError as exc:
        raise DatasetError(
            f"{len(idx):,} samples are too few for a test share of {test_fraction:g} and a validation "
            f"split of {validation_split:g} ({exc}). Lower them, or use more data."
        ) from None
    return _Parts(rest, val, test, note)


def _split_and_scale(
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    classes: list[str],
    names: list[str],
    label: str,
    cfg: DataConfig,
    validation_split: float,
    seed: int,
    image_shape: tuple[int, ...] | None = None,
) -> Dataset:
    """Split rows, then standardize features with statistics of the training part only."""
    parts = _split_indices(
        y,
        task,
        test_fraction=cfg.test_fraction,
        validation_split=validation_split,
        seed=seed,
        max_samples=cfg.max_samples,
    )
    if image_shape is None:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x[parts.train])

        def prep(rows: np.ndarray) -> np.ndarray:
            return scaler.transform(x[rows]).astype(np.float32)
    else:

        def prep(rows: np.ndarray) -> np.ndarray:
            return x[rows].reshape(len(rows), *image_shape).astype(np.float32)

    kind = "tabular" if image_shape is None else "image"
    what = (
        f"{x.shape[1]} features" if image_shape is None else "x".join(map(str, image_shape[:2])) + " images"
    )
    return _dataset(
        parts,
        prep,
        y,
        task=task,
        kind=kind,
        classes=classes,
        shape=(x.shape[1],) if image_shape is None else image_shape,
        vocab=None,
        names=names,
        label=label,
        what=what,
    )


def _dataset(
    parts: _Parts,
    prep: Callable[[np.ndarray], np.ndarray],
    y: np.ndarray,
    *,
    task: str,
    kind: str,
    classes: list[str],
    shape: tuple[int, ...],
    vocab: int | None,
    names: list[str],
    label: str,
    what: str,
) -> Dataset:
    """Apply ``prep`` to the rows of each part; label dtypes follow the task."""
    ydt = np.int32 if task == "multiclass" else np.float32
    n_val = 0 if parts.val is None else len(parts.val)
    sizes = (
        f"{len(parts.train):,} train / "
        + (f"{n_val:,} val / " if n_val else "")
        + f"{len(parts.test):,} test"
    )
    tail = f", {len(classes)} classes" if classes else ", regression"
    note = f" (split unstratified: {parts.note})" if parts.note else ""
    return Dataset(
        x_train=prep(parts.train),
        y_train=y[parts.train].astype(ydt),
        x_val=None if parts.val is None else prep(parts.val),
        y_val=None if parts.val is None else y[parts.val].astype(ydt),
        x_test=prep(parts.test),
        y_test=y[parts.test].astype(ydt),
        task=task,
        input_kind=kind,
        classes=classes,
        input_shape=tuple(shape),
        vocab_size=vocab,
        feature_names=names,
        description=f"{label}: {sizes}, {what}{tail}{note}",
    )


# --------------------------------------------------------------------------------------------
# Built-in and synthetic tabular sets.


def _load_builtin(spec: DatasetSpec, split: Callable[..., Dataset]) -> Dataset:
    from sklearn import datasets as skd

    loaders = {
        "digits": skd.load_digits,
        "digits_images": skd.load_digits,
        "breast_cancer": skd.load_breast_cancer,
        "wine": skd.load_wine,
    }
    bunch = loaders[spec.name]()
    classes = [str(c) for c in bunch.target_names]
    y = bunch.target.astype(np.int64)
    label = f"scikit-learn {spec.name.removesuffix('_images').replace('_', ' ')}"
    if spec.name == "digits_images":  # pixel values are 0..16
        return split(
            bunch.data / 16.0,
            y,
            task=spec.task,
            classes=classes,
            names=[],
            label=label,
            image_shape=(8, 8, 1),
        )
    names = [str(n) for n in bunch.feature_names]
    return split(bunch.data, y, task=spec.task, classes=classes, names=names, label=label)


def _load_overfit(cfg: DataConfig, split: Callable[..., Dataset]) -> Dataset:
    """Few samples, many useless features, noisy labels: an MLP memorizes it within a few epochs."""
    from sklearn.datasets import make_classification

    n = cfg.max_samples or SYNTHETIC_SIZES["overfit"]
    x, y = make_classification(
        n_samples=n,
        n_features=60,
        n_informative=6,
        n_redundant=0,
        flip_y=0.15,
        class_sep=1.5,
        random_state=GENERATOR_SEED,
    )
    names = [f"x{i}" for i in range(x.shape[1])]
    # max_samples is the generated size, so the cap in the split keeps every row.
    return split(x, y, task="binary", classes=["0", "1"], names=names, label="overfit (synthetic)")


REVIEW_WORDS = {
    "positive": "good great excellent wonderful brilliant superb enjoyable delightful moving charming "
    "fantastic memorable gripping beautiful clever funny touching fresh stunning lovely",
    "negative": "bad awful terrible boring dull weak poor predictable tedious clumsy forgettable lifeless "
    "annoying disappointing messy bland painful silly flat pointless",
    "noun": "movie film plot story acting cast script ending soundtrack direction dialogue pacing "
    "camera performance humor lead villain finale music editing",
    "adverb": "very really quite truly rather incredibly pretty so",
    "day": "Monday Friday Saturday Sunday weekend evening",
    "who": "friends sister brother parents kids partner roommate",
    "place": "cinema festival theater drive-in",
}
REVIEW_FILLER = (
    "I watched it on a {day} with my {who}.",
    "It runs about {n} minutes.",
    "The {noun} reminded me of an older film.",
    "I had read the book before.",
    "We saw it at the {place}.",
    "My {who} picked it.",
)


def _generate_reviews(n: int) -> tuple[list[str], np.ndarray]:
    """English-like reviews: opinion sentences (some negated) among neutral ones, 8% of labels flipped."""
    rng = np.random.default_rng(GENERATOR_SEED)
    words = {kind: text.split() for kind, text in REVIEW_WORDS.items()}

    def pick(kind: str) -> str:
        return str(rng.choice(words[kind]))

    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        sentences = []
        for _ in range(int(rng.integers(3, 9))):
            if rng.random() < 0.35:
                filler = str(rng.choice(REVIEW_FILLER))
                n_min = int(rng.integers(80, 180))
                sentences.append(
                    filler.format(
                        day=pick("day"), who=pick("who"), n=n_min, noun=pick("noun"), place=pick("place")
                    )
                )
                continue
            polarity = label if rng.random() < 0.75 else 1 - label  # mixed reviews
            negate = rng.random() < 0.2  # "not bad" says the opposite of "bad"
            word = pick("positive" if (polarity == 1) != negate else "negative")
            adverb = f"{pick('adverb')} " if rng.random() < 0.4 and not negate else ""
            sentences.append(f"The {pick('noun')} was {'not ' if negate else ''}{adverb}{word}.")
        text = " ".join(sentences)
        if rng.random() < 0.3:
            text = text.replace(". ", ".<br /><br />", 1)  # IMDB-style line breaks
        texts.append(text)
        labels.append(label if rng.random() >= 0.08 else 1 - label)
    return texts, np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Text: the seed's tokenization (5,000-word vocabulary, 400 tokens), fitted on training texts only.

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _text_dataset(
    texts: list[str],
    y: np.ndarray,
    task: str,
    classes: list[str],
    cfg: DataConfig,
    validation_split: float,
    seed: int,
    spec: DatasetSpec,
) -> Dataset:
    """Split first, then build the vocabulary from the training texts alone."""
    parts = _split_indices(
        y,
        task,
        test_fraction=cfg.test_fraction,
        validation_split=validation_split,
        seed=seed,
        max_samples=cfg.max_samples,
    )
    clean = np.array([_BR.sub(" ", t) for t in texts], dtype=object)
    vectorize = _fit_vectorizer(clean[parts.train], cfg.num_words, cfg.maxlen)
    label = "generated reviews" if spec.name == "text_sentiment" else file_label(cfg)
    return _dataset(
        parts,
        lambda rows: vectorize(clean[rows]),
        y,
        task=task,
        kind="sequence",
        classes=classes,
        shape=(cfg.maxlen,),
        vocab=cfg.num_words,
        names=[],
        label=label,
        what=f"{cfg.num_words:,}-word vocabulary, length {cfg.maxlen}",
    )


def _fit_vectorizer(
    train_texts: np.ndarray, num_words: int, maxlen: int
) -> Callable[[np.ndarray], np.ndarray]:
    """TextVectorization adapted on the training texts; ids 0 = padding, 1 = out of vocabulary."""
    import keras

    layer = keras.layers.TextVectorization(
        max_tokens=num_words, output_sequence_length=maxlen, standardize="lower_and_strip_punctuation"
    )
    layer.adapt(train_texts.astype(str), batch_size=1024)

    def vectorize(texts: np.ndarray) -> np.ndarray:
        out = np.zeros((len(texts), maxlen), dtype=np.int32)
        for start in range(0, len(texts), 4096):  # bounded peak memory on 50,000 reviews
            chunk = texts[start : start + 4096].astype(str)
            out[start : start + len(chunk)] = np.asarray(layer(chunk))
        return out

    return vectorize


# --------------------------------------------------------------------------------------------
# Keras datasets: the real keras.datasets loaders, with actionable messages when they cannot run.


def _keras_home() -> str:
    """Keras' home dir. Keras reads KERAS_HOME once, when it is imported; mirror that."""
    cfg = sys.modules.get("keras.src.backend.config")
    if cfg is not None:
        return cfg.keras_home()
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def _keras_dir(name: str) -> pathlib.Path:
    if name not in _KERAS_FILES:
        raise DatasetError(f"{name!r} is not a Keras dataset; those are {', '.join(_KERAS_FILES)}.")
    base = os.path.expanduser(_keras_home())
    # keras.utils.get_file falls back to /tmp/.keras when the home is not writable (Keras creates
    # the home on import, so a missing one is only a problem once Keras is loaded).
    missing_ok = not os.path.exists(base) and "keras.src.backend.config" not in sys.modules
    if not (missing_ok or os.access(base, os.W_OK)):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return pathlib.Path(base, _KERAS_FILES[name][0])


def keras_cache_path(name: str) -> pathlib.Path:
    """Where Keras looks for the file (imdb.npz, mnist.npz) or, for fashion_mnist, its folder of 4."""
    folder = _keras_dir(name)
    files = _KERAS_FILES[name][1]
    return folder if len(files) > 1 else folder / files[0]


def keras_cached(name: str) -> bool:
    """Whether the files are in the cache (present; Keras checks their hash when loading)."""
    folder = _keras_dir(name)
    return all((folder / f).is_file() for f in _KERAS_FILES[name][1])


def _keras_where(name: str) -> str:
    folder = _keras_dir(name)
    files = _KERAS_FILES[name][1]
    if len(files) == 1:
        return f"download {_KERAS_ORIGIN}{files[0]} and put it at {folder / files[0]}"
    urls = ", ".join(_KERAS_ORIGIN + f for f in files)
    return f"download the {len(files)} files {urls} into the folder {folder}"


def _load_keras(spec: DatasetSpec, cfg: DataConfig, validation_split: float, seed: int) -> Dataset:
    import keras
    from keras.src.utils import file_utils

    _, files, sha256 = _KERAS_FILES[spec.name]
    path = keras_cache_path(spec.name)
    # A bad cached file makes Keras re-download it and, if that fails, delete it: say so.
    bad_cache = sha256 is not None and path.is_file() and not file_utils.validate_file(str(path), sha256)
    loader = getattr(keras.datasets, spec.name).load_data
    try:
        if spec.name == "imdb":
            (x_tr, y_tr), (x_te, y_te) = loader(num_words=cfg.num_words)
        else:
            (x_tr, y_tr), (x_te, y_te) = loader()
    except Exception as exc:  # Keras raises a bare Exception("URL fetch failure on ...") offline
        text = str(exc)
        fetch = re.match(r"URL fetch failure on (\S+): (\S+) -- (.*)", text, re.DOTALL)
        if fetch:
            reason = fetch.group(3) if fetch.group(2) == "None" else f"HTTP {fetch.group(2)} {fetch.group(3)}"
            before = (
                f"The cached {files[0]} at {path} did not match the sha256 Keras expects (incomplete, "
                "damaged or a different file), so Keras tried to download it again, failed, and deleted it. "
                if bad_cache
                else f"{spec.label} is not in the Keras cache and could not be downloaded. "
            )
            raise DatasetUnavailable(
                f"{before}Download failed: {reason}. To use it offline, {_keras_where(spec.name)}. "
                f"Or {_KERAS_OFFLINE_ALTERNATIVE[spec.name]}."
            ) from exc
        where = path if len(files) == 1 else _keras_dir(spec.name)
        raise DatasetError(
            f"Keras could not read {spec.label} from {where}: {text.rstrip('.')}. The cached file is "
            "damaged or not the original; delete it and load again with internet access, or "
            f"{_keras_where(spec.name)}."
        ) from exc

    y_tr, y_te = np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64)
    keep_tr, keep_te = np.arange(len(y_tr)), np.arange(len(y_te))
    if cfg.max_samples is not None and cfg.max_samples < len(y_tr) + len(y_te):
        n_tr = max(1, round(cfg.max_samples * len(y_tr) / (len(y_tr) + len(y_te))))
        keep_tr = _subsample(keep_tr, y_tr, n_tr, seed, True)
        keep_te = _subsample(keep_te, y_te, max(1, cfg.max_samples - n_tr), seed, True)
    train, val, note = keep_tr, None, ""
    if validation_split > 0:
        try:
            train, val, note = _take(keep_tr, y_tr, validation_split, seed, True)
        except ValueError as exc:
            raise DatasetError(
                f"Too few training samples for a validation split of {validation_split:g}: {exc}"
            ) from None
    # Train and validation rows both index Keras' train arrays; test rows its test arrays.
    n_tr_all = len(y_tr)
    y_all = np.concatenate([y_tr, y_te])
    parts = _Parts(train, val, keep_te + n_tr_all, note)
    if spec.name == "imdb":
        x_all = np.concatenate([np.asarray(x_tr, dtype=object), np.asarray(x_te, dtype=object)])

        def prep(rows: np.ndarray) -> np.ndarray:
            return keras.utils.pad_sequences(list(x_all[rows]), maxlen=cfg.maxlen).astype(np.int32)

        shape, kind, vocab, classes = (cfg.maxlen,), "sequence", cfg.num_words, ["negative", "positive"]
        what = f"{cfg.num_words:,}-word vocabulary, length {cfg.maxlen}"
    else:
        x_all = np.concatenate([x_tr, x_te])
        h, w = x_all.shape[1:3]

        def prep(rows: np.ndarray) -> np.ndarray:
            return (x_all[rows].astype(np.float32) / 255.0).reshape(len(rows), h, w, 1)

        shape, kind, vocab = (h, w, 1), "image", None
        classes = FASHION_CLASSES if spec.name == "fashion_mnist" else [str(i) for i in range(10)]
        what = f"{h}x{w} images"
    return _dataset(
        parts,
        prep,
        y_all,
        task=spec.task,
        kind=kind,
        classes=classes,
        shape=shape,
        vocab=vocab,
        names=[],
        label=f"{spec.label} (Keras' own test split)",
        what=what,
    )


# --------------------------------------------------------------------------------------------
# CSV files: read them defensively, then check the columns the config names.
#
# The structure is checked with the csv module before pandas sees the text: pandas silently turns
# a header shorter than the rows into a hidden index (scikit-learn's own wine_data.csv trains on
# 4 of its 13 features that way) and fills a longer one with empty columns. Here such a file is
# refused with what was found and the fix (``DatasetError.fixes``, offered as buttons by the page).

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {"auto": "detect", ",": "comma ,", ";": "semicolon ;", "\t": "tab", "|": "pipe |"}
_DETECT_ORDER = ("\t", ";", "|", ",")  # on a tie: a comma inside ;-separated rows is a decimal comma
_CACHE_SIZE = 4  # parsed uploads kept (content id and reading options), for the reruns of a page
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _mb(n: float) -> str:
    value = n / 2**20
    return f"{value:,.1f}" if value >= 0.1 else f"{value:.2g}"


@dataclass(frozen=True)
class CsvTable:
    """A CSV read with given options: the frame, and what the page shows about its structure."""

    frame: pd.DataFrame
    delimiter: str  # the one used (resolved when the config says auto)
    header_line: int | None  # file line of the header row; None without one
    notes: tuple[str, ...]  # the structure found and the choices made, one sentence each


def read_csv(
    source: str | os.PathLike | bytes, *, fmt: CsvFormat | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """A CSV file (path or bytes) as a DataFrame, or a DatasetError saying what is wrong."""
    return read_table(source, fmt=fmt, max_bytes=max_bytes).frame


def read_table(
    source: str | os.PathLike | bytes, *, fmt: CsvFormat | None = None, max_bytes: int | None = None
) -> CsvTable:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if max_bytes is not None and len(data) > max_bytes:
            raise DatasetError(f"The file is {_mb(len(data))} MB; the limit is {max_bytes / 2**20:g} MB.")
    else:
        path = pathlib.Path(source)
        if not path.is_file():
            raise DatasetError("The CSV file is not there (any more). Upload it again.")
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DatasetError(f"The file is {_mb(size)} MB; the limit is {max_bytes / 2**20:g} MB.")
        data = path.read_bytes()
    return _table(_decode(data), fmt or CsvFormat())


def kept_text(text: str, skip_rows: int) -> str:
    """The text after the first ``skip_rows`` lines (what the exported script does too)."""
    parts = text.split("\n", skip_rows)
    return parts[skip_rows] if len(parts) > skip_rows else ""


def detect_delimiter(text: str) -> str | None:
    """The delimiter that splits every row of the first 200 into the same number of
    fields (more than one), preferring one the first row agrees with, then tab, ;, |
    and "," in that order (a comma inside ;-separated rows is a decimal comma).
    None when none fits. Scripts exported with delimiter "auto" carry this function."""
    import csv
    import io

    sample = text[:262144]
    if len(sample) < len(text):
        sample = sample[: sample.rfind("\n") + 1] or sample
    fits = []
    for rank, sep in enumerate(("\t", ";", "|", ",")):
        counts = []
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=sep):
            if row:
                counts.append(len(row))
            if len(counts) > 200:
                break
        body = counts[1:] or counts
        if body and min(body) > 1 and len(set(body)) == 1:
            fits.append((counts[0] != body[0], rank, sep))
    return min(fits)[2] if fits else None


def _records(text: str, sep: str) -> list[tuple[int, int, list[str]]]:
    """(first line, field count, fields) of every non-blank record; lines count from 1 in ``text``."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    out = []
    line = 1
    try:
        for row in reader:
            if row:
                out.append((line, len(row), row if len(out) < 2 else []))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise DatasetError(f"The file could not be read as CSV: line {reader.line_num}: {exc}.") from None
    return out


def _lines(numbers: list[int], *, limit: int = 5) -> str:
    shown = ", ".join(f"{n:,}" for n in numbers[:limit])
    more = f" and {len(numbers) - limit:,} more" if len(numbers) > limit else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _mixed_delimiters(text: str, offset: int) -> str | None:
    """ "line 4 by ';' and lines 2, 3 by ','" when the rows use different delimiters."""
    sample = text[:262144]
    used = {}
    for sep in DELIMITERS:
        lines = {ln + offset for ln, n, _ in _records(sample, sep)[:200] if n > 1}
        if lines:
            used[sep] = lines
    by = {}
    for sep, lines in used.items():
        others = set().union(*(v for s, v in used.items() if s != sep))
        if only := sorted(lines - others):
            by[sep] = only
    if len(by) < 2:
        return None
    fewest_first = sorted(by.items(), key=lambda item: len(item[1]))
    return " and ".join(f"{_lines(lines)} by {sep!r}" for sep, lines in fewest_first)


def _table(text: str, fmt: CsvFormat) -> CsvTable:
    if not text.strip():
        raise DatasetError("The file is empty.")
    kept = kept_text(text, fmt.skip_rows)
    skipped = fmt.skip_rows
    if not kept.strip():
        raise DatasetError(
            f"Nothing is left after skipping {skipped} line{'s' if skipped != 1 else ''}: "
            "lower the lines to skip (data.csv.skip_rows)."
        )
    notes: list[str] = []
    sep = fmt.delimiter
    if sep == "auto":
        found = detect_delimiter(kept)
        if found is None:
            mixed = _mixed_delimiters(kept, skipped)
            if mixed:
                raise DatasetError(
                    f"The rows are not separated the same way: {mixed}. Use one delimiter throughout "
                    "(save the file again from a spreadsheet), or pick the delimiter (data.csv.delimiter) "
                    "and fix the other lines."
                )
            sep = ","  # one column, or ragged rows: the structure checks below say which
        else:
            sep = found
            notes.append(f"Delimiter: {DELIMITER_NAMES[sep].split()[0]} (detected).")
    if sep == fmt.decimal:
        raise DatasetError(
            f"The delimiter and the decimal separator are both {sep!r}: pick ';' as the delimiter "
            "(data.csv.delimiter), or '.' as the decimal separator (data.csv.decimal).",
            fixes=[("Delimiter ;", {"data.csv.delimiter": ";"})],
        )
    records = _records(kept, sep)

    def where(line: int) -> int:
        return line + skipped

    if not records:
        raise DatasetError("The file is empty.")
    head, rows = (records[0], records[1:]) if fmt.header else (None, records)
    if not rows:
        cols = ", ".join(records[0][2])
        raise DatasetError(f"The file has a header row ({cols}) but no data rows.")
    # The rows' field count: the most common one; on a tie the header's, else the first row's.
    tally = collections.Counter(n for _, n, _ in rows)
    top = max(tally.values())
    tied = [n for n, k in tally.items() if k == top]
    width = (
        head[1] if head is not None and head[1] in tied else (rows[0][1] if rows[0][1] in tied else tied[0])
    )
    lead = records[0]
    lead_fits = lead[1] == width
    through = skipped + lead[0]  # skip_rows that skips the lead line too
    skip_fix = [
        (
            "Skip the first line" if through == 1 else f"Skip the first {through} lines",
            {"data.csv.skip_rows": through},
        )
    ]
    if not lead_fits and through <= 100:
        ragged_rest = [where(ln) for ln, n, _ in records[1:] if n != width]
        what = "it looks like a metadata line (a title, or counts such as scikit-learn's '178,13,…')"
        if lead[1] > width:
            what = "the header names more columns than the rows have"
        if not ragged_rest:
            raise DatasetError(
                f"Line {where(lead[0])} has {lead[1]} field{'s' if lead[1] != 1 else ''}, the rows have "
                f"{width}: {what}. Skip it (data.csv.skip_rows = {through}), "
                "or fix that line.",
                fixes=skip_fix,
            )
    bad = [where(ln) for ln, n, _ in rows if n != width]
    if bad:
        odd = pd.Series([n for _, n, _ in rows if n != width]).value_counts().index.tolist()
        raise DatasetError(
            f"Rows have different numbers of fields: most have {width}, but {_lines(bad)} "
            f"{'has' if len(bad) == 1 else 'have'} {' or '.join(map(str, sorted(odd)))} "
            f"(delimiter {sep!r}). Fix those lines (a missing or extra delimiter, or a text holding "
            "the delimiter without quotes), or pick the right delimiter (data.csv.delimiter)."
        )
    if width == 1 and fmt.delimiter == "auto":
        notes.append("One column: no delimiter found on every row.")
    if head is not None:
        names = head[2]
        numeric = [v for v in names if _NUMBER.match(v)]
        if len(numeric) == len(names) and len(names) > 0:
            shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
            raise DatasetError(
                f"The header row (line {where(head[0])}) holds only numbers ({shown}): it looks like a data "
                f"row. Choose no header row (data.csv.header = false): the columns are then named "
                f"column 1..{width}.",
                fixes=[("No header row", {"data.csv.header": False})],
            )
    else:
        notes.append(f"No header row: columns are named column 1..{width}.")
    if skipped:
        notes.append("Skipped line 1." if skipped == 1 else f"Skipped lines 1 to {skipped}.")
    frame = _frame(kept, sep, fmt.header, fmt.decimal)
    return CsvTable(frame, sep, where(head[0]) if head else None, tuple(notes))


def _frame(kept: str, sep: str, header: bool, decimal: str) -> pd.DataFrame:
    """pandas, after the structure checks, never with an implicit index (``index_col=False``); the
    exported script reads the file with these same calls."""
    try:
        df = pd.read_csv(
            io.StringIO(kept), sep=sep, header=0 if header else None, index_col=False, decimal=decimal,
            low_memory=False,
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise DatasetError("The file is empty.") from None
    except (pd.errors.ParserError, ValueError, OverflowError) as exc:
        raise DatasetError(f"The file could not be read as CSV: {str(exc).strip()}") from None
    if not header:
        df.columns = [f"column {i}" for i in range(1, df.shape[1] + 1)]
    return df


def _decode(data: bytes) -> str:
    sample = data[:65536]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError(
            "This file is UTF-16 text, not UTF-8. Re-save it as 'CSV UTF-8' and upload it again."
        )
    if sample.startswith(b"PK\x03\x04"):
        raise DatasetError(
            "This file is not a CSV text file: it is an Excel workbook or a zip archive. "
            "Export it as CSV (comma-separated) first."
        )
    if sample.startswith(b"\x1f\x8b"):
        raise DatasetError("This file is not a CSV text file: it is gzip-compressed. Decompress it first.")
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in sample or control > 0.05 * len(sample):
        raise DatasetError(
            "This file is not a CSV text file (it contains binary data). Upload a comma-separated text file."
        )
    try:
        return data.decode("utf-8-sig")  # also plain UTF-8; drops Excel's byte-order mark
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line} cannot be decoded). "
            "Re-save it as 'CSV UTF-8' and upload it again."
        ) from None


_GONE = "The uploaded CSV is not on this server (any more): upload the file again."
_parsed: collections.OrderedDict[tuple, CsvTable | DatasetError] = collections.OrderedDict()
_parsed_lock = threading.Lock()


def read_upload(
    upload_id: str | None, fmt: CsvFormat, uploads_dir: str | os.PathLike | None = None
) -> CsvTable:
    """An uploaded CSV read with ``fmt``: parsed once per (content id, options), then from a bounded
    cache (the page asks on every rerun). Shared: never modify the frame in place."""
    if not upload_id:
        raise DatasetError("Upload a CSV file first.")
    try:
        path = uploads.path_of(upload_id, uploads_dir)
    except uploads.UploadError as exc:
        raise DatasetError(str(exc)) from None
    try:
        st = path.stat()
    except OSError:
        raise DatasetError(_GONE) from None
    # The id names the content; size and mtime too, in case the file was changed on disk after all.
    key = (upload_id, str(path.parent), st.st_size, st.st_mtime_ns, *astuple(fmt))
    with _parsed_lock:
        hit = _parsed.get(key)
        if hit is not None:
            _parsed.move_to_end(key)
    if hit is None:
        try:
            hit = read_table(path, fmt=fmt)
        except DatasetError as exc:
            hit = exc
        with _parsed_lock:
            _parsed[key] = hit
            while len(_parsed) > _CACHE_SIZE:
                _parsed.popitem(last=False)
    if isinstance(hit, DatasetError):
        raise DatasetError(str(hit), fixes=hit.fixes)
    return hit


def _read_config_csv(cfg: DataConfig, uploads_dir: str | os.PathLike | None) -> pd.DataFrame:
    return read_upload(cfg.upload, cfg.csv, uploads_dir).frame


def _column(df: pd.DataFrame, name: str | None, what: str) -> pd.Series:
    cols = ", ".join(map(str, df.columns))
    if not name:
        raise DatasetError(f"Choose the {what}. Columns: {cols}.")
    if name not in df.columns:
        near = [c for c in df.columns if str(c).strip().casefold() == name.strip().casefold()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise DatasetError(f"There is no column {name!r} in the file.{hint} Columns: {cols}.")
    return df[name]


def _rows(mask: pd.Series) -> str:
    """'3 cells, first on data row 5' for the True entries of mask (data rows count from 1)."""
    n = int(mask.sum())
    first = int(np.flatnonzero(mask.to_numpy())[0]) + 1
    return f"{n:,} {'cell' if n == 1 else 'cells'}, first on data row {first:,}"


def _numeric_table(df: pd.DataFrame, cfg: DataConfig):
    """Numeric features (float) and the encoded target, with every problem of the table at once."""
    target = _column(df, cfg.target_column, "target column (the one to predict)")
    if len(df.columns) < 2:
        raise DatasetError(f"The file has only the target column {cfg.target_column!r}; add feature columns.")
    _check_min_rows(df)
    features = df.drop(columns=[cfg.target_column])
    problems = []
    text_cols, comma_cols = [], []
    for name, col in features.items():
        example = _non_numeric_example(col)
        if example is None:
            continue
        where = f"{name!r} (e.g. {example[1]!r} on data row {example[0]:,})"
        decimal_comma = isinstance(example[1], str) and _DECIMAL_COMMA.match(example[1].strip())
        (comma_cols if decimal_comma and cfg.csv.decimal == "." else text_cols).append(where)
    fixes = []
    if comma_cols:
        problems.append(
            f"Feature column(s) {', '.join(comma_cols)} hold numbers with a decimal comma: choose ',' as "
            "the decimal separator (data.csv.decimal)."
        )
        fixes.append(("Decimal comma", {"data.csv.decimal": ","}))
    if text_cols:
        problems.append(
            f"Feature column(s) {', '.join(text_cols)} are not numeric: remove them or encode them as "
            "numbers (e.g. one-hot) before uploading."
        )
    problems += _cell_problems(df)
    if problems:
        raise DatasetError(" ".join(problems), fixes=fixes)
    y, task, classes = _encode_target(target, cfg.task)
    numbers = features.apply(_as_numbers).astype(np.float64)
    return numbers, y, task, classes


def _text_table(df: pd.DataFrame, cfg: DataConfig):
    """Texts and encoded labels of a text CSV; other columns are ignored."""
    text = _column(df, cfg.text_column, "text column (the reviews or documents)")
    target = _column(df, cfg.target_column, "label column (the one to predict)")
    if cfg.text_column == cfg.target_column:
        raise DatasetError("The text column and the label column must be different columns.")
    _check_min_rows(df)
    if pd.api.types.is_numeric_dtype(text):
        raise DatasetError(
            f"The text column {cfg.text_column!r} holds numbers, not text. Pick the text column."
        )
    empty = text.isna() | (text.astype(str).str.strip() == "")
    problems = []
    if empty.any():
        problems.append(
            f"The text column {cfg.text_column!r} has empty texts ({_rows(empty)}): remove those rows."
        )
    problems += _cell_problems(df[[cfg.target_column]])
    if problems:
        raise DatasetError(" ".join(problems))
    if cfg.task == "regression":
        raise DatasetError("Text data takes class labels: set the task to binary or multiclass.")
    y, task, classes = _encode_target(target, cfg.task)
    if task == "regression":
        raise DatasetError(
            f"The label column {cfg.target_column!r} looks continuous (many different numbers); text data "
            "takes class labels. Pick another label column, or set the task to multiclass if they are "
            "classes."
        )
    return text.astype(str).tolist(), y, task, classes


def _check_min_rows(df: pd.DataFrame) -> None:
    if len(df) < MIN_ROWS:
        raise DatasetError(
            f"The file has only {len(df)} data rows; at least {MIN_ROWS} are needed to split off "
            "training, validation and test data."
        )


def _non_numeric_example(col: pd.Series) -> tuple[int, Any] | None:
    """(data row, value) of the first value that is not a number, or None for a numeric column."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    present = col.dropna()
    as_numbers = _as_numbers(present)
    bad = present[as_numbers.isna()]
    if bad.empty:
        return None
    return int(col.index.get_loc(bad.index[0])) + 1, bad.iloc[0]


def _cell_problems(df: pd.DataFrame) -> list[str]:
    """Empty and infinite cells, named by column."""
    problems = []
    missing = [f"{name!r} ({_rows(col.isna())})" for name, col in df.items() if col.isna().any()]
    if missing:
        problems.append(f"Empty cells in {', '.join(missing)}: fill them in or drop those rows.")
    infinite = []
    for name, col in df.items():
        if pd.api.types.is_bool_dtype(col):
            continue
        if pd.api.types.is_float_dtype(col):
            mask = pd.Series(np.isinf(col.to_numpy(dtype=np.float64)), index=col.index)
            example = ""
        elif not pd.api.types.is_numeric_dtype(col) and _non_numeric_example(col) is None:
            # numbers pandas could not hold (a 400-digit cell): it leaves them as text
            as_numbers = _as_numbers(col)
            mask = pd.Series(np.isinf(as_numbers.to_numpy(dtype=np.float64)), index=col.index)
            example = _huge_example(col[mask]) if mask.any() else ""
        else:
            continue
        if mask.any():
            infinite.append(f"{name!r} ({_rows(mask)}{example})")
    if infinite:
        problems.append(
            f"Infinite values, or numbers too large for a 64-bit float (beyond ±1.8e308), in "
            f"{', '.join(infinite)}: replace them with finite numbers."
        )
    return problems


def _as_numbers(col: pd.Series) -> pd.Series:
    """Numbers as float64: text that is no number is NaN, a number too large for a float is inf."""
    if pd.api.types.is_numeric_dtype(col):
        return col
    try:
        return pd.to_numeric(col, errors="coerce")
    except OverflowError:  # Python ints too large for a float (a 400-digit cell)

        def one(value: Any) -> float:
            try:
                return float(value)
            except OverflowError:
                return -math.inf if int(value) < 0 else math.inf
            except (TypeError, ValueError):
                return math.nan

        return col.map(one).astype(np.float64)


def _huge_example(cells: pd.Series) -> str:
    text = str(cells.iloc[0]).strip()
    digits = len(re.sub(r"[^0-9]", "", text.split("e")[0].split("E")[0]))
    return f": a {digits:,}-digit number" if digits > 20 else f": {text[:40]!r}"


def infer_task(y: pd.Series) -> str:
    """binary for 2 values; multiclass for a few whole numbers or labels; regression for other numbers."""
    values = _two_values(y)
    distinct = int(values.nunique())
    name = f"The target column {y.name!r}" if y.name is not None else "The target"
    if distinct == 2:
        return "binary"
    few = distinct <= MAX_INFERRED_CLASSES and distinct <= len(values) / 2
    if not pd.api.types.is_numeric_dtype(values):
        if few:
            return "multiclass"
        raise DatasetError(
            f"{name} holds text with {distinct:,} different values: too many to be classes, and "
            "regression needs numbers. Pick another target column, or set the task to multiclass."
        )
    whole = bool(np.all(np.mod(values.to_numpy(dtype=np.float64), 1) == 0))
    return "multiclass" if whole and few else "regression"


def _two_values(y: pd.Series) -> pd.Series:
    """The present values of a target, which must hold at least two different ones."""
    values = y.dropna()
    if values.nunique() < 2:
        name = f"The target column {y.name!r}" if y.name is not None else "The target"
        only = f" ({_label_text(values.iloc[0])!r})" if len(values) else ""
        raise DatasetError(
            f"{name} has only one value{only}: there is nothing to learn. "
            "Pick another target column, or add rows of the other classes."
        )
    return values


def _label_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _encode_target(target: pd.Series, task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """Target as numbers (class codes 0..k-1 in sorted label order) and its class names."""
    _two_values(target)
    task = task or infer_task(target)
    name = target.name
    if task == "regression":
        example = _non_numeric_example(target)
        if example is not None:
            raise DatasetError(
                f"Regression needs a numeric target; {name!r} holds text such as {example[1]!r} "
                f"(data row {example[0]:,}). Set the task to binary or multiclass, or pick another column."
            )
        return _as_numbers(target).to_numpy(dtype=np.float64), task, []
    codes, uniques = pd.factorize(target, sort=True)
    if task == "binary" and len(uniques) != 2:
        raise DatasetError(
            f"Binary classification needs exactly 2 classes; {name!r} has {len(uniques):,} different values. "
            "Set the task to multiclass, or pick another target column."
        )
    return codes.astype(np.int64), task, [_label_text(v) for v in uniques]
