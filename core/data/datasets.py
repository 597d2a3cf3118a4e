"""The data side's public face: the registry, ``describe`` (cheap: no TensorFlow, no download)
and ``load`` (the split arrays a run trains on), whatever plugin the config names.

The plugins live in ``core/data/sources/`` (one module per source family) and are listed in
``core/data/registry.py``; the split rules in ``split.py``, CSV reading in ``csv_table.py``,
tokenization in ``text.py``. TensorFlow is imported only inside the loaders that need it, so
``describe`` and the registry stay cheap enough to run on every page draw.
"""

from __future__ import annotations

import math

from core.config import DataConfig
from core.data.contract import (
    GENERATOR_SEED,
    MIN_ROWS,
    Dataset,
    DatasetError,
    DatasetInfo,
    DatasetSpec,
    DatasetUnavailable,
    Uploads,
    file_label,
)
from core.data.csv_table import (
    DELIMITER_NAMES,
    DELIMITERS,
    MAX_INFERRED_CLASSES,
    CsvTable,
    detect_delimiter,
    infer_task,
    kept_text,
    part_counts,
    read_csv,
    read_table,
    read_upload,
    split_by_column,
    split_column_guess,
)
from core.data.registry import DATASETS
from core.data.sources.keras_sets import KerasSet

__all__ = [
    "DATASETS",
    "DELIMITERS",
    "DELIMITER_NAMES",
    "GENERATOR_SEED",
    "MAX_INFERRED_CLASSES",
    "MIN_ROWS",
    "CsvTable",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "DatasetSpec",
    "DatasetUnavailable",
    "describe",
    "detect_delimiter",
    "file_label",
    "fixed_shape",
    "infer_task",
    "keras_cache_path",
    "keras_cached",
    "kept_text",
    "load",
    "read_csv",
    "read_table",
    "read_upload",
    "part_counts",
    "spec_of",
    "split_by_column",
    "split_column_guess",
    "split_sizes",
    "upload_suffix",
    "upload_summary",
]

_UPLOAD_SUFFIXES = {"csv": ".csv", "npz": ".npz", "images": ".zip"}  # by source: how each kind is stored


def spec_of(name: str) -> DatasetSpec:
    """The registered plugin, or a message listing the ones there are."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.") from None


def describe(cfg: DataConfig, *, uploads_dir: Uploads = None) -> DatasetInfo:
    """Task, input kind and size, cheaply: no TensorFlow, no download; CSVs are read with pandas.

    ``uploads_dir``: where uploaded CSVs are (default ``<runs>/uploads`` of the default runs folder).
    """
    spec = spec_of(cfg.name)
    spec.check_task(cfg)
    return spec.describe(cfg, uploads_dir)


def upload_suffix(name: str) -> str | None:
    """How a dataset's upload is stored (``.csv``, ``.npz``, ``.zip``); None for sets without one."""
    spec = DATASETS.get(name)
    return None if spec is None else _UPLOAD_SUFFIXES.get(spec.source)


def upload_summary(cfg: DataConfig, uploads_dir: Uploads = None) -> str:
    """What the config's uploaded .npz or zip holds (arrays and shapes, classes and image counts)."""
    return spec_of(cfg.name).upload_summary(cfg, uploads_dir)


def load(cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads = None) -> Dataset:
    """The arrays a run trains, validates and tests on; deterministic for a given seed."""
    spec = spec_of(cfg.name)
    spec.check_task(cfg)
    if not 0.0 <= validation_split < 0.9:
        raise DatasetError("The validation split must be at least 0 and below 0.9.")
    if not spec.own_test_split and not 0.0 < cfg.test_fraction < 0.9:
        raise DatasetError("The test share must be above 0 and below 0.9.")
    if cfg.max_samples is not None and cfg.max_samples < MIN_ROWS:
        raise DatasetError(f"Keep at least {MIN_ROWS} samples (max samples is {cfg.max_samples}).")
    return spec.load(cfg, validation_split=validation_split, seed=seed, uploads_dir=uploads_dir)


def split_sizes(cfg: DataConfig, info: DatasetInfo, validation_split: float) -> tuple[int, int, int] | None:
    """(train, validation, test) sample counts the split will give, as scikit-learn rounds (ceil)."""
    if info.given_parts is not None:  # the data names the parts (max_samples keeps a share of each)
        total = sum(info.given_parts)
        n_train, n_val, n_test = (
            k if cfg.max_samples is None or cfg.max_samples >= total or not k
            else max(1, round(cfg.max_samples * k / total))
            for k in info.given_parts
        )  # fmt: skip
        if n_val == 0 and validation_split > 0:
            n_val = math.ceil(n_train * validation_split)
            n_train -= n_val
        return n_train, n_val, n_test
    if spec_of(cfg.name).own_test_split or not info.n_samples:
        return None  # the data's own test split; large
    n = info.n_samples
    n_test = math.ceil(n * cfg.test_fraction) if info.test_samples is None else info.test_samples
    rest = n - n_test
    n_val = math.ceil(rest * validation_split) if validation_split > 0 else 0
    return rest - n_val, n_val, n_test


def fixed_shape(name: str) -> tuple[int, ...] | None:
    """The per-sample shape of a set whose shape does not depend on the config or a file."""
    spec = DATASETS.get(name)
    return None if spec is None else spec.fixed_shape


def _keras_set(name: str) -> KerasSet:
    spec = DATASETS.get(name)
    if not isinstance(spec, KerasSet):
        keras_sets = [n for n, s in DATASETS.items() if isinstance(s, KerasSet)]
        raise DatasetError(f"{name!r} is not a Keras dataset; those are {', '.join(keras_sets)}.")
    return spec


def keras_cache_path(name: str):
    """Where Keras looks for the file (imdb.npz, mnist.npz) or, for fashion_mnist, its folder of 4."""
    return _keras_set(name).cache_path()


def keras_cached(name: str) -> bool:
    """Whether the files are in the cache (present; Keras checks their hash when loading)."""
    return _keras_set(name).cached()
