"""Splitting: test first, validation from the rest, the scaler fitted on what is left for training.

The split order is the point of the seed tutorial: the test part is split off first and never seen
until the end, validation (what early stopping watches) comes out of the rest, and the scaler or
vocabulary is fitted on the final training part only, so nothing leaks into validation or test.
The exported script carries the same rules as source text (``DATA_TUPLE``, ``SPLIT``,
``SCALED_PREP`` below), beside the code they repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.codegen import Piece, code
from core.config import DataConfig
from core.data.contract import Dataset, DatasetError


@dataclass
class Parts:
    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray
    note: str  # why a split could not be stratified ("" when it was, or for regression)


def take(
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


def subsample(idx: np.ndarray, y: np.ndarray, n: int | None, seed: int, classify: bool) -> np.ndarray:
    if n is None or n >= len(idx):
        return idx
    return take(idx, y, n, seed, classify)[1]


def split_indices(
    y: np.ndarray,
    task: str,
    *,
    test_fraction: float,
    validation_split: float,
    seed: int,
    max_samples: int | None,
) -> Parts:
    """Row indices of train / validation / test; the test rows never reach validation or training."""
    classify = task != "regression"
    idx = subsample(np.arange(len(y)), y, max_samples, seed, classify)
    try:
        rest, test, note = take(idx, y, test_fraction, seed, classify)
        val = None
        if validation_split > 0:
            rest, val, note2 = take(rest, y, validation_split, seed, classify)
            note = note or note2
    except ValueError as exc:
        raise DatasetError(
            f"{len(idx):,} samples are too few for a test share of {test_fraction:g} and a validation "
            f"split of {validation_split:g} ({exc}). Lower them, or use more data."
        ) from None
    return Parts(rest, val, test, note)


TRAIN, VALIDATION, TEST = 0, 1, 2  # the part a row belongs to, when the data names it


def split_given(
    part: np.ndarray,
    y: np.ndarray,
    task: str,
    *,
    validation_split: float,
    seed: int,
    max_samples: int | None,
) -> Parts:
    """Row indices of train / validation / test when the data names each row's part (a split
    column, or a second file as the test set). ``max_samples`` keeps a seeded, stratified share of
    each part in proportion to its size; validation comes out of the train part, as today, unless
    the data names validation rows, which then are the validation data."""
    classify = task != "regression"
    pools = [np.flatnonzero(part == k) for k in (TRAIN, VALIDATION, TEST)]
    if max_samples is not None and max_samples < len(y):
        pools = [
            subsample(p, y, max(1, round(max_samples * len(p) / len(y))), seed, classify) if len(p) else p
            for p in pools
        ]
    train, val, test = pools
    note = ""
    if len(val):
        if validation_split == 0:
            raise DatasetError(
                f"The data names {len(val):,} validation rows, but the validation split is 0 (no "
                "validation): set it above 0 to validate on those rows, or mark them train."
            )
        return Parts(train, val, test, note)
    val = None
    if validation_split > 0:
        try:
            train, val, note = take(train, y, validation_split, seed, classify)
        except ValueError as exc:
            raise DatasetError(
                f"{len(train):,} training rows are too few for a validation split of "
                f"{validation_split:g} ({exc}). Lower it, or use more data."
            ) from None
    return Parts(train, val, test, note)


def split_for(
    cfg: DataConfig,
    y: np.ndarray,
    task: str,
    validation_split: float,
    seed: int,
    part: np.ndarray | None = None,
) -> Parts:
    """``split_indices`` with the data settings of a config; ``split_given`` when the data names
    each row's part (``part``: TRAIN, VALIDATION or TEST per row)."""
    if part is not None:
        return split_given(
            part, y, task, validation_split=validation_split, seed=seed, max_samples=cfg.max_samples
        )
    return split_indices(
        y,
        task,
        test_fraction=cfg.test_fraction,
        validation_split=validation_split,
        seed=seed,
        max_samples=cfg.max_samples,
    )


def split_and_scale(
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
    part: np.ndarray | None = None,
) -> Dataset:
    """Split rows, then standardize features with statistics of the training part only."""
    parts = split_for(cfg, y, task, validation_split, seed, part)
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
    return to_dataset(
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


def to_dataset(
    parts: Parts,
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


# The same rules as the exported script's source text.

DATA_TUPLE = Piece(
    code('''
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

SPLIT = Piece(
    code('''
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


SPLIT_GIVEN = Piece(
    code('''
        def split_given(y, part, classify):
            """Rows of train, validation and test as the data names them (part: 0 train,
            1 validation, 2 test). MAX_SAMPLES keeps a stratified share of each part; validation
            comes out of the train part (VALIDATION_SPLIT) unless validation rows are named."""
            pools = [np.flatnonzero(part == k) for k in (0, 1, 2)]
            if MAX_SAMPLES is not None and MAX_SAMPLES < len(y):
                for k, idx in enumerate(pools):
                    n = max(1, round(MAX_SAMPLES * len(idx) / len(y)))
                    if len(idx) and n < len(idx):
                        pools[k] = take(idx, y, n, classify)[1]
            train, val, test = pools
            if len(val):
                return train, val, test
            val = None
            if VALIDATION_SPLIT > 0:
                train, val = take(train, y, VALIDATION_SPLIT, classify)
            return train, val, test
    ''')
)


# Standardize with the mean and spread of the training part only (nothing leaks from val/test).
SCALED_PREP = code("""
    scaler = StandardScaler().fit(x[train])  # statistics of the training part only

    def prep(rows):
        return scaler.transform(x[rows]).astype(np.float32)
""")
