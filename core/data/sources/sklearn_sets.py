"""scikit-learn's bundled sets (offline): features standardized, or digits as 8x8 images."""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass

import numpy as np

from core.codegen import Piece, ScriptContext, code
from core.config import DataConfig
from core.data.contract import Dataset, DatasetInfo, DatasetSpec, Uploads, capped
from core.data.split import DATA_TUPLE, SCALED_PREP, SPLIT, split_and_scale


@dataclass(frozen=True)
class SklearnSet(DatasetSpec):
    """A ``sklearn.datasets.load_*`` set with ``target_names`` (a classification set)."""

    loader: str = ""  # the function in sklearn.datasets
    n_samples: int = 0
    n_classes: int = 0
    about: str = ""  # the exported loader's docstring
    scale: float | None = None  # images: pixel values are divided by this (digits: 0..16)

    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        del uploads_dir
        return DatasetInfo(
            self.task,
            self.input_kind,
            self.n_classes,
            capped(self.n_samples, cfg),
            input_shape=self.fixed_shape,
        )

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        del uploads_dir
        bunch = read_bundled(self.loader)
        classes = [str(c) for c in bunch.target_names]
        y = bunch.target.astype(np.int64)
        label = f"scikit-learn {self.name.removesuffix('_images').replace('_', ' ')}"
        split = {"cfg": cfg, "validation_split": validation_split, "seed": seed}
        if self.input_kind == "image":
            x = bunch.data / self.scale
            return split_and_scale(
                x,
                y,
                task=self.task,
                classes=classes,
                names=[],
                label=label,
                image_shape=self.fixed_shape,
                **split,
            )
        names = [str(n) for n in bunch.feature_names]
        return split_and_scale(
            bunch.data, y, task=self.task, classes=classes, names=names, label=label, **split
        )

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        if self.input_kind == "image":
            x_line = f"x = bunch.data / {self.scale!r}  # pixel values are 0..{self.scale:g}"
            shape = ", ".join(map(str, self.fixed_shape))
            prep = code(f"""
                def prep(rows):
                    return x[rows].reshape(len(rows), {shape}).astype(np.float32)
            """)
        else:
            x_line = "x = bunch.data"
            prep = SCALED_PREP
        source = code(
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
            about=self.about,
            loader=self.loader,
            x_line=x_line,
            prep=textwrap.indent(prep, "    "),
        )
        imports = (f"from sklearn.datasets import {self.loader}",)
        if self.input_kind != "image":
            imports += ("from sklearn.preprocessing import StandardScaler",)
        return [DATA_TUPLE, SPLIT, Piece(source, imports)]


@functools.cache
def read_bundled(loader: str):
    """``sklearn.datasets.<loader>()``, read once per process: reading digits' bundled CSV took 0.2 s
    of every run's start in the training worker. Its arrays are made read-only, so no run can change
    what the next one reads (the split copies the rows it takes)."""
    from sklearn import datasets as skd

    bunch = getattr(skd, loader)()
    for value in bunch.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return bunch


DIGITS = SklearnSet(
    "digits",
    "Digits (tabular)",
    "scikit-learn's 1,797 handwritten 8x8 digits as 64 pixel features; 10 classes.",
    "builtin",
    "multiclass",
    "tabular",
    True,
    fixed_shape=(64,),
    loader="load_digits",
    n_samples=1797,
    n_classes=10,
    about="scikit-learn's 1,797 handwritten 8x8 digits as 64 features.",
)
DIGITS_IMAGES = SklearnSet(
    "digits_images",
    "Digits (8x8 images)",
    "The same 1,797 digits as 8x8 grayscale images, for the CNN without a download.",
    "builtin",
    "multiclass",
    "image",
    True,
    fixed_shape=(8, 8, 1),
    loader="load_digits",
    n_samples=1797,
    n_classes=10,
    about="scikit-learn's 1,797 digits as 8x8 images.",
    scale=16.0,
)
BREAST_CANCER = SklearnSet(
    "breast_cancer",
    "Breast cancer",
    "scikit-learn's 569 tumour measurements (30 features): malignant or benign.",
    "builtin",
    "binary",
    "tabular",
    True,
    fixed_shape=(30,),
    loader="load_breast_cancer",
    n_samples=569,
    n_classes=2,
    about="scikit-learn's 569 tumours, 30 features.",
)
WINE = SklearnSet(
    "wine",
    "Wine",
    "scikit-learn's 178 wines (13 chemical features) from 3 cultivars.",
    "builtin",
    "multiclass",
    "tabular",
    True,
    fixed_shape=(13,),
    loader="load_wine",
    n_samples=178,
    n_classes=3,
    about="scikit-learn's 178 wines, 13 chemical features.",
)
