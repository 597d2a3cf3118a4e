"""The Dataset contract: what every dataset plugin is, and the arrays it hands the engine.

A dataset plugin is one instance of a ``DatasetSpec`` subclass: its facts (task, input kind, size,
shape) answer ``describe`` without loading anything, ``load`` gives the split arrays, and
``script_pieces`` is the source text the exported script loads the same arrays with. The
registry (``core/data/registry.py``) lists the instances; nothing else names a dataset.

>>> from core.config import DataConfig
>>> from core.data.registry import DATASETS
>>> wine = DATASETS["wine"]
>>> info = wine.describe(DataConfig(name="wine", max_samples=100), None)
>>> info.task, info.n_classes, info.n_samples, info.input_shape
('multiclass', 3, 100, (13,))
>>> ds = wine.load(DataConfig(name="wine"), validation_split=0.2, seed=0, uploads_dir=None)
>>> len(ds.x_train), len(ds.x_val), len(ds.x_test)  # the test part is split off first
(113, 29, 36)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from core.config import TASKS, DataConfig, Pad

if TYPE_CHECKING:
    from core.codegen import Piece, ScriptContext

MIN_ROWS = 10  # fewer cannot give train, validation and test at least a row or two each
GENERATOR_SEED = 20190601  # generated sets are one fixed dataset; the run seed only splits them

Uploads = str | os.PathLike | None  # where uploaded files are (None: the default runs folder's)
Setting = tuple[str, object, str]  # one row of the exported script's settings: name, value, comment


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
class DatasetInfo:
    """What config validation needs before training; computed without TensorFlow or downloads."""

    task: str
    input_kind: str
    n_classes: int | None
    n_samples: int | None
    columns: tuple[str, ...] = ()  # every column of a CSV file
    input_shape: tuple[int, ...] | None = None  # per sample, as the model sees it
    given_parts: tuple[int, int, int] | None = None  # rows the data names train / validation / test
    test_samples: int | None = None  # a file's own test part (data.test_fraction unused), when it has one


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


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its facts, and the three things every plugin does (describe, load, export).

    Subclasses are source families (scikit-learn sets, generated sets, uploads, Keras' sets);
    each dataset is an instance with its own facts.
    """

    name: str
    label: str
    description: str  # one line for the UI
    source: str  # "builtin" (scikit-learn), "synthetic", "csv", "keras"
    task: str | None  # None: inferred from the file
    input_kind: str  # "tabular" / "image" / "sequence"
    offline: bool  # works without internet
    fixed_shape: tuple[int, ...] | None = None  # per-sample shape when no setting or file decides it
    own_test_split: bool = False  # the data comes with its test part (data.test_fraction unused)
    # Sequences: how texts are cut and padded when data.truncating / data.padding are None.
    default_pad: ClassVar[Pad] = "post"

    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        raise NotImplementedError

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        raise NotImplementedError

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        """The exported script's ``load_data`` and the helpers it calls."""
        raise NotImplementedError

    def script_settings(self, ctx: ScriptContext) -> list[Setting]:
        """Extra named constants the pieces use (beyond SEED, TASK, the split and the model's)."""
        del ctx
        return []

    def upload_summary(self, cfg: DataConfig, uploads_dir: Uploads) -> str:
        """What an uploaded file holds, one line for the page ("" for sets without an upload)."""
        del cfg, uploads_dir
        return ""

    def shape_for(self, cfg: DataConfig) -> tuple[int, ...] | None:
        """The per-sample shape, when the facts and the settings alone decide it."""
        if self.fixed_shape is not None:
            return self.fixed_shape
        return (cfg.maxlen,) if self.input_kind == "sequence" else None

    def check_task(self, cfg: DataConfig) -> None:
        if cfg.task is not None and cfg.task not in TASKS:
            raise DatasetError(f"Task must be one of {', '.join(TASKS)}, not {cfg.task!r}.")
        if self.task is not None and cfg.task not in (None, self.task):
            raise DatasetError(
                f"{self.label} is a {self.task} task; a task override ({cfg.task}) applies only to CSV "
                "files. Clear the task setting."
            )


def capped(n: int, cfg: DataConfig) -> int:
    return n if cfg.max_samples is None else min(n, cfg.max_samples)


def file_label(cfg: DataConfig) -> str:
    """How a run's CSV is shown: its own file name (never a server path or a hash)."""
    return cfg.file_name or "uploaded CSV"
