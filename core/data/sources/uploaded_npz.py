"""Your arrays, uploaded as an ``.npz``: ``x`` and ``y``, or ``x_train`` / ``y_train`` (and
``x_test`` / ``y_test``, then the file's own test part is used).

An ``.npz`` is a zip of ``.npy`` files, so it is read defensively: the file size is capped, every
member's header is read first (its dtype and shape, and that the declared size is what the shape
needs) and the decompressed total is capped before any array is loaded; ``allow_pickle=False``
always. Two plugins share the reader: ``npz`` (samples of shape (features,), tabular, standardized
as a CSV is) and ``npz_images`` (samples of (height, width) or (height, width, channels), for the
CNN; uint8 pixels are divided by 255).
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
import zipfile
import zlib

import numpy as np
import pandas as pd

from core.codegen import Piece, ScriptContext, code
from core.config import DataConfig
from core.data import uploads
from core.data.checked_cache import CheckedCache
from core.data.contract import MIN_ROWS, Dataset, DatasetError, DatasetInfo, DatasetSpec, Setting, Uploads
from core.data.csv_table import INFER_TASK, MAX_UPLOAD_BYTES, infer_task
from core.data.split import DATA_TUPLE, SCALED_PREP, SPLIT, Parts, split_for, subsample, take, to_dataset

MAX_NPZ_BYTES = MAX_UPLOAD_BYTES  # the file itself (the app's upload limit)
MAX_ARRAY_BYTES = 2**30  # all arrays together, decompressed: an .npz is a zip, and can be a zip bomb
KEYS = ("x", "y", "x_train", "y_train", "x_test", "y_test")
LAYOUTS = ({"x", "y"}, {"x_train", "y_train"}, {"x_train", "y_train", "x_test", "y_test"})
_LAYOUT_TEXT = "x and y, or x_train and y_train (with x_test and y_test for your own test part)"
_CACHE_SIZE = 2
# A damaged member: a deflate stream cut short or corrupt, or a compression Python cannot unpack.
UNREADABLE = (zlib.error, EOFError, NotImplementedError)
_DAMAGED = "The .npz is damaged or packed in a way NumPy cannot read: save it again with numpy.savez."


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


@dataclasses.dataclass(frozen=True)
class NpzArrays:
    """An uploaded .npz, checked: features and labels of every sample, the file's test part last."""

    x: np.ndarray  # (n, ...) the samples, train then test
    y: np.ndarray  # (n,) raw labels or targets
    n_test: int  # the last n_test samples are the file's own test part (0: split one off)
    keys: tuple[str, ...]

    @property
    def n_train(self) -> int:
        return len(self.y) - self.n_test

    def summary(self) -> str:
        """What was found, for the page: the arrays and their shapes."""
        if self.n_test:
            parts = (
                f"x_train {self.n_train:,} samples of shape {self.sample_shape}, "
                f"x_test {self.n_test:,} (your own test part)"
            )
        else:
            parts = f"x {len(self.y):,} samples of shape {self.sample_shape}"
        return f"{parts}, labels of dtype {self.y.dtype}."

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def _member_headers(zf: zipfile.ZipFile) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every member's shape and dtype, from its .npy header alone; refuses what is not allowed."""
    members = zf.infolist()
    names = [m.filename for m in members]
    bad = [n for n in names if not n.endswith(".npy")]
    if bad:
        raise DatasetError(
            f"The .npz holds {bad[0]!r}, which is not a NumPy array (.npy): save it with "
            "numpy.savez(file, x=..., y=...)."
        )
    locked = [m.filename for m in members if m.flag_bits & 0x1]
    if locked:
        raise DatasetError(
            f"The .npz's member {locked[0]!r} is encrypted (password-protected): save it again with "
            "numpy.savez."
        )
    keys = [n.removesuffix(".npy") for n in names]
    extra = sorted(k for k in set(keys) if k not in KEYS)
    if extra:
        raise DatasetError(
            f"The .npz holds arrays named {', '.join(map(repr, extra[:5]))}; it may hold only {_LAYOUT_TEXT}."
        )
    if len(set(keys)) != len(keys):
        raise DatasetError("The .npz holds an array name twice: save it again with numpy.savez.")
    layout = set(keys)
    if layout not in LAYOUTS:
        if {"x", "y"} & layout and {"x_train", "y_train", "x_test", "y_test"} & layout:
            raise DatasetError(f"The .npz mixes x / y with x_train / y_train; it must hold {_LAYOUT_TEXT}.")
        pairs = (("x", "y"), ("x_train", "y_train"), ("x_test", "y_test"))
        missing = [b if a in layout else a for a, b in pairs if (a in layout) != (b in layout)]
        if "x_test" in layout and "x_train" not in layout:
            missing.append("x_train")
        what = f"it has no {' or '.join(map(repr, missing))}" if missing else "it holds none of them"
        found = ", ".join(map(repr, sorted(layout))) or "nothing"
        raise DatasetError(f"The .npz must hold {_LAYOUT_TEXT}; {what} (found {found}).")
    declared = sum(m.file_size for m in members)
    if declared > MAX_ARRAY_BYTES:
        raise DatasetError(
            f"The arrays in the .npz take {_mb(declared)} unpacked; the limit is {_mb(MAX_ARRAY_BYTES)}."
        )
    out = {}
    for member, key in zip(members, keys):
        with zf.open(member) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            except ValueError as exc:
                raise DatasetError(f"Array {key!r} in the .npz is not a readable .npy: {exc}") from None
            header = fh.tell()
        if dtype.hasobject or dtype.fields is not None:
            raise DatasetError(
                f"Array {key!r} holds Python objects (dtype {dtype}); the app reads only numbers (and "
                "text labels), never pickles: save it as a numeric array, e.g. x.astype('float32')."
            )
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.itemsize != member.file_size - header:
            raise DatasetError(
                f"Array {key!r} in the .npz is damaged: its data does not match its shape {shape}."
            )
        out[key] = (tuple(shape), dtype)
    return out


def _numbers(key: str, dtype: np.dtype, *, text_ok: bool) -> None:
    if dtype.kind in "biuf" or (text_ok and dtype.kind == "U"):
        return
    allowed = "numbers or text labels" if text_ok else "numbers"
    raise DatasetError(f"Array {key!r} has dtype {dtype}; it must hold {allowed}.")


def read_npz(path: os.PathLike | str) -> NpzArrays:
    """The checked arrays of an .npz file, or a DatasetError naming what is wrong."""
    if os.path.getsize(path) > MAX_NPZ_BYTES:
        raise DatasetError(f"The .npz is larger than the {_mb(MAX_NPZ_BYTES)} upload limit.")
    try:
        with zipfile.ZipFile(path) as zf:
            headers = _member_headers(zf)
    except zipfile.BadZipFile:
        raise DatasetError(
            "This is not an .npz file (a zip of .npy arrays, as numpy.savez writes it)."
        ) from None
    except (OSError, *UNREADABLE):  # OSError: an offset in the zip's directory points before the file
        raise DatasetError(_DAMAGED) from None
    for key, (shape, dtype) in headers.items():
        if not shape:
            raise DatasetError(
                f"Array {key!r} is a single number (shape ()); it must hold one entry per sample."
            )
        _numbers(key, dtype, text_ok=key.startswith("y"))
        if key.startswith("y") and not dtype.isnative:  # pandas (inferring the task) cannot read them
            raise DatasetError(
                f"Array {key!r} is stored big-endian (dtype {dtype.str}): save it as "
                f"{key}.astype({dtype.newbyteorder('=').str!r})."
            )
        if key.startswith("x") and 0 in shape[1:]:
            raise DatasetError(f"Array {key!r} has shape {shape}: its samples hold no values.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in headers}
    except (zipfile.BadZipFile, ValueError, OSError, *UNREADABLE):
        raise DatasetError(_DAMAGED) from None
    own_test = "x_test" in arrays
    xk, yk = ("x_train", "y_train") if "x_train" in arrays else ("x", "y")
    x, y = arrays[xk], _labels(yk, arrays[yk])
    if len(x) != len(y):
        raise DatasetError(f"{xk} has {len(x):,} samples but {yk} has {len(y):,}: they must match.")
    if len(y) < MIN_ROWS:
        raise DatasetError(
            f"{xk} has only {len(y)} samples; at least {MIN_ROWS} are needed to split off training, "
            "validation and test data."
        )
    _finite(xk, x)
    n_test = 0
    if own_test:
        x_te, y_te = arrays["x_test"], _labels("y_test", arrays["y_test"])
        if len(x_te) != len(y_te):
            raise DatasetError(
                f"x_test has {len(x_te):,} samples but y_test has {len(y_te):,}: they must match."
            )
        if x_te.shape[1:] != x.shape[1:]:
            raise DatasetError(
                f"x_test's samples have shape {x_te.shape[1:]} but x_train's have {x.shape[1:]}: "
                "they must match."
            )
        if not len(y_te):
            raise DatasetError("x_test and y_test are empty; leave them out to split a test part off.")
        _finite("x_test", x_te)
        if (y.dtype.kind in "US") != (y_te.dtype.kind in "US"):
            raise DatasetError(f"y_train holds {y.dtype} labels but y_test {y_te.dtype}: they must be alike.")
        x, y, n_test = np.concatenate([x, x_te]), np.concatenate([y, y_te]), len(y_te)
    return NpzArrays(x, y, n_test, tuple(sorted(arrays)))


def _labels(key: str, y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        hint = " (one-hot? save y.argmax(axis=1))" if y.ndim == 2 else ""
        raise DatasetError(f"{key} has shape {y.shape}; it must hold one label or value per sample{hint}.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = np.flatnonzero(~np.isfinite(y))
        raise DatasetError(f"{key} has {len(bad):,} NaN or infinite values, first at sample {bad[0]:,}.")
    return y


def _finite(key: str, x: np.ndarray) -> None:
    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DatasetError(
            f"{key} has NaN or infinite values in {len(rows):,} samples, first sample {rows[0]:,}."
        )


_read: CheckedCache[NpzArrays] = CheckedCache(_CACHE_SIZE)


def read_upload(upload_id: str | None, uploads_dir: Uploads = None, *, features: bool = False) -> NpzArrays:
    """An uploaded .npz, checked once per content (the page asks on every rerun), then from a small
    cache that keeps the labels but not the features (``x`` is a zero-memory stand-in of the same
    shape and dtype); ``features=True`` reads the file again, for training."""
    if not upload_id:
        raise DatasetError("Upload an .npz file first.")
    try:
        path = uploads.path_of(upload_id, uploads_dir, ".npz")
        st = path.stat()
    except uploads.UploadError as exc:
        raise DatasetError(str(exc)) from None
    except OSError:
        raise DatasetError("The uploaded .npz is not on this server (any more): upload it again.") from None
    key = (upload_id, str(path.parent), st.st_size, st.st_mtime_ns)
    if features and not isinstance(_read.peek(key), DatasetError):
        return read_npz(path)

    def labels_only() -> NpzArrays:
        full = read_npz(path)
        return dataclasses.replace(full, x=np.broadcast_to(np.zeros((), full.x.dtype), full.x.shape))

    return _read.get(key, labels_only)


def label_text(value: object) -> str:
    """A class name; a whole-number float label 1.0 is called "1", as for a CSV."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def encode(arrays: NpzArrays, task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """Labels as class codes 0..k-1 (sorted label order) or regression targets; the task."""
    train = arrays.y[: arrays.n_train]
    values = np.unique(train)
    if len(values) < 2:
        raise DatasetError(
            f"The labels have only one value ({label_text(values[0].item())!r}): there is nothing to "
            "learn. Add samples of the other classes."
        )
    task = task or infer_task(pd.Series(train))
    if task == "regression":
        if arrays.y.dtype.kind in "US":
            raise DatasetError(
                "Regression needs numeric targets; the labels are text. Set the task to multiclass."
            )
        return arrays.y.astype(np.float64), task, []
    if task == "binary" and len(values) != 2:
        raise DatasetError(
            f"Binary classification needs exactly 2 classes; the labels have {len(values):,} values. "
            "Set the task to multiclass."
        )
    unseen = np.setdiff1d(arrays.y[arrays.n_train :], values)
    if len(unseen):
        raise DatasetError(
            f"y_test has the label {label_text(unseen[0].item())!r}, which y_train does not have."
        )
    classes, codes = np.unique(arrays.y, return_inverse=True)
    return codes.astype(np.int64), task, [label_text(v) for v in classes.tolist()]


@dataclasses.dataclass(frozen=True)
class UploadedNpz(DatasetSpec):
    """x of shape (n, features) (tabular) or (n, h, w[, c]) (image): which one is the plugin's fact."""

    def _arrays(self, cfg: DataConfig, uploads_dir: Uploads, *, features: bool = False) -> NpzArrays:
        arrays = read_upload(cfg.upload, uploads_dir, features=features)
        ndim = arrays.x.ndim
        xk = "x_train" if arrays.n_test else "x"
        shape = arrays.x.shape
        if self.input_kind == "tabular" and ndim in (3, 4):
            raise DatasetError(
                f"{xk} holds images (shape {shape}): choose the dataset 'Your image arrays (.npz)'.",
                fixes=[("Use image arrays", {"data.name": "npz_images"})],
            )
        if self.input_kind == "image" and ndim == 2:
            raise DatasetError(
                f"{xk} holds rows of features (shape {shape}): choose the dataset 'Your arrays (.npz)'.",
                fixes=[("Use feature arrays", {"data.name": "npz"})],
            )
        if ndim not in ((2,) if self.input_kind == "tabular" else (3, 4)):
            raise DatasetError(
                f"{xk} has shape {shape}; it must be (samples, features) or images (samples, height, "
                "width[, channels])" + (": for one feature, save x.reshape(-1, 1)." if ndim == 1 else ".")
            )
        return arrays

    def shape_of(self, arrays: NpzArrays) -> tuple[int, ...]:
        shape = arrays.sample_shape
        return (*shape, 1) if self.input_kind == "image" and len(shape) == 2 else shape

    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        arrays = self._arrays(cfg, uploads_dir)
        _, task, classes = encode(arrays, cfg.task)
        n = len(arrays.y) if cfg.max_samples is None else min(len(arrays.y), cfg.max_samples)
        n_test = None
        if arrays.n_test:  # as _given_test keeps them
            n_tr = arrays.n_train if n == len(arrays.y) else max(1, round(n * arrays.n_train / len(arrays.y)))
            n_test = arrays.n_test if n == len(arrays.y) else min(arrays.n_test, max(1, n - n_tr))
            n = min(n_tr, arrays.n_train) + n_test
        shape = self.shape_of(arrays)
        return DatasetInfo(
            task, self.input_kind, len(classes) or None, n, arrays.keys, shape, test_samples=n_test
        )

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        arrays = self._arrays(cfg, uploads_dir, features=True)
        y, task, classes = encode(arrays, cfg.task)
        classify = task != "regression"
        if arrays.n_test:
            parts = _given_test(arrays, y, cfg, validation_split, seed, classify)
        else:
            parts = split_for(cfg, y, task, validation_split, seed)
        shape = self.shape_of(arrays)
        if self.input_kind == "image":
            x = arrays.x / 255.0 if arrays.x.dtype == np.uint8 else arrays.x

            def prep(rows: np.ndarray) -> np.ndarray:
                return x[rows].reshape(len(rows), *shape).astype(np.float32)

            what = "x".join(map(str, shape)) + " images"
        else:
            from sklearn.preprocessing import StandardScaler

            x = arrays.x.astype(np.float64)
            scaler = StandardScaler().fit(x[parts.train])

            def prep(rows: np.ndarray) -> np.ndarray:
                return scaler.transform(x[rows]).astype(np.float32)

            what = f"{shape[0]} features"
        name = cfg.file_name or "uploaded .npz"
        return to_dataset(
            parts,
            prep,
            y,
            task=task,
            kind=self.input_kind,
            classes=classes,
            shape=shape,
            vocab=None,
            names=[],
            label=name + (" (its own test part)" if arrays.n_test else ""),
            what=what,
        )

    def upload_summary(self, cfg: DataConfig, uploads_dir: Uploads) -> str:
        return self._arrays(cfg, uploads_dir).summary()

    def script_settings(self, ctx: ScriptContext) -> list[Setting]:
        return [("DATA_PATH", ctx.data_path, "the .npz the run was trained on")]

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        if self.input_kind == "image":
            x_line = "x = x / 255.0 if x.dtype == np.uint8 else x  # uint8 pixels: 0..255"
            prep = code("""
                shape = x.shape[1:] + ((1,) if x.ndim == 3 else ())

                def prep(rows):
                    return x[rows].reshape(len(rows), *shape).astype(np.float32)
            """)
            imports: tuple[str, ...] = ()
        else:
            x_line = "x = x.astype(np.float64)"
            prep = SCALED_PREP
            imports = ("from sklearn.preprocessing import StandardScaler",)
        task_line = "task = TASK" if ctx.task else "task = TASK or infer_task(pd.Series(y[:n_train]))"
        source = code(
            '''
            def load_data(path) -> Data:
                """Your arrays (.npz): x and y, or x_train and y_train (and x_test, y_test)."""
                with np.load(path, allow_pickle=False) as npz:
                    arrays = {key: npz[key] for key in npz.files}
                if "x_train" in arrays:
                    x, y = arrays["x_train"], arrays["y_train"].reshape(-1)
                else:
                    x, y = arrays["x"], arrays["y"].reshape(-1)
                n_train = len(y)
                if "x_test" in arrays:  # the file's own test part (TEST_FRACTION unused)
                    x = np.concatenate([x, arrays["x_test"]])
                    y = np.concatenate([y, arrays["y_test"].reshape(-1)])
                <<task_line>>
                if task == "regression":
                    classes, y = [], y.astype(np.float64)
                else:
                    values, y = np.unique(y, return_inverse=True)
                    classes = [label_text(v) for v in values.tolist()]
                <<x_line>>
                classify = task != "regression"
                if n_train < len(y):
                    train, val, test = given_test_indices(y, n_train, classify)
                else:
                    train, val, test = split_indices(y, classify)

            <<prep>>

                return to_data(prep, y, train, val, test, task, classes)


            def given_test_indices(y, n_train, classify):
                """The file's own test part; validation comes out of its training part."""
                keep_tr, keep_te = np.arange(n_train), np.arange(n_train, len(y))
                if MAX_SAMPLES is not None and MAX_SAMPLES < len(y):
                    n_tr = max(1, round(MAX_SAMPLES * n_train / len(y)))
                    if n_tr < len(keep_tr):
                        keep_tr = take(keep_tr, y, n_tr, classify)[1]
                    n_te = max(1, MAX_SAMPLES - n_tr)
                    if n_te < len(keep_te):
                        keep_te = take(keep_te, y, n_te, classify)[1]
                train, val = keep_tr, None
                if VALIDATION_SPLIT > 0:
                    train, val = take(keep_tr, y, VALIDATION_SPLIT, classify)
                return train, val, keep_te


            def label_text(value):
                """A class name; a whole-number float label 1.0 is called "1", as the app does."""
                if isinstance(value, float) and value.is_integer():
                    return str(int(value))
                return str(value)
            ''',
            task_line=task_line,
            x_line=x_line,
            prep=textwrap.indent(prep, "    "),
        )
        pieces = [DATA_TUPLE, SPLIT, *([] if ctx.task else [INFER_TASK])]
        extra = () if ctx.task else ("import pandas as pd",)
        return [*pieces, Piece(source, imports + extra)]


def _given_test(
    arrays: NpzArrays, y: np.ndarray, cfg: DataConfig, validation_split: float, seed: int, classify: bool
) -> Parts:
    """The file's own test part; validation from its training part (as Keras' own sets are split)."""
    n_train = arrays.n_train
    keep_tr, keep_te = np.arange(n_train), np.arange(n_train, len(y))
    if cfg.max_samples is not None and cfg.max_samples < len(y):
        n_tr = max(1, round(cfg.max_samples * n_train / len(y)))
        keep_tr = subsample(keep_tr, y, n_tr, seed, classify)
        keep_te = subsample(keep_te, y, max(1, cfg.max_samples - n_tr), seed, classify)
    train, val, note = keep_tr, None, ""
    if validation_split > 0:
        try:
            train, val, note = take(keep_tr, y, validation_split, seed, classify)
        except ValueError as exc:
            raise DatasetError(
                f"Too few training samples for a validation split of {validation_split:g}: {exc}"
            ) from None
    return Parts(train, val, keep_te, note)


NPZ = UploadedNpz(
    "npz",
    "Your arrays (.npz)",
    "Upload an .npz with x (samples, features) and y, or x_train/y_train (and x_test/y_test).",
    "npz",
    None,
    "tabular",
    True,
)
NPZ_IMAGES = UploadedNpz(
    "npz_images",
    "Your image arrays (.npz)",
    "Upload an .npz with x (samples, height, width[, channels]) and y, or x_train/y_train (and "
    "x_test/y_test), for the CNN.",
    "npz",
    None,
    "image",
    True,
)
