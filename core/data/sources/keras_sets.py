"""Keras' own datasets through ``keras.datasets`` (downloaded once into Keras' cache), with
actionable messages when they are neither cached nor downloadable (no internet here).

They come with their own test split; validation comes out of Keras' training part.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.codegen import Piece, ScriptContext, code, lit
from core.config import DataConfig, Pad
from core.data.contract import (
    Dataset,
    DatasetError,
    DatasetInfo,
    DatasetSpec,
    DatasetUnavailable,
    Uploads,
    capped,
)
from core.data.split import DATA_TUPLE, Parts, subsample, take, to_dataset
from core.data.text import pad_note, pad_way

# Where keras.datasets.<name>.load_data fetches its files (keras/src/datasets/*.py, Keras 3.15).
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

Prep = Callable[[np.ndarray], np.ndarray]


def _keras_home() -> str:
    """Keras' home dir. Keras reads KERAS_HOME once, when it is imported; mirror that."""
    cfg = sys.modules.get("keras.src.backend.config")
    if cfg is not None:
        return cfg.keras_home()
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


@dataclass(frozen=True)
class KerasSet(DatasetSpec):
    """A ``keras.datasets`` module: its cache files, sizes and the offline alternative to name."""

    cache_subdir: str = "datasets"
    files: tuple[str, ...] = ()
    sha256: str | None = None  # what Keras checks (Fashion-MNIST is not checked)
    n_train: int = 0
    n_test: int = 0
    n_classes: int = 0
    offline_alternative: str = ""
    own_test_split: bool = True
    script_load_args: str = ""  # the arguments of load_data in the exported script

    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        del uploads_dir
        n = capped(self.n_train + self.n_test, cfg)
        return DatasetInfo(self.task, self.input_kind, self.n_classes, n, input_shape=self.shape_for(cfg))

    def cache_dir(self) -> pathlib.Path:
        base = os.path.expanduser(_keras_home())
        # keras.utils.get_file falls back to /tmp/.keras when the home is not writable (Keras creates
        # the home on import, so a missing one is only a problem once Keras is loaded).
        missing_ok = not os.path.exists(base) and "keras.src.backend.config" not in sys.modules
        if not (missing_ok or os.access(base, os.W_OK)):
            base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
        return pathlib.Path(base, self.cache_subdir)

    def cache_path(self) -> pathlib.Path:
        """Where Keras looks for the file (imdb.npz, mnist.npz) or, for several files, their folder."""
        folder = self.cache_dir()
        return folder if len(self.files) > 1 else folder / self.files[0]

    def cached(self) -> bool:
        """Whether the files are in the cache (present; Keras checks their hash when loading)."""
        folder = self.cache_dir()
        return all((folder / f).is_file() for f in self.files)

    def where(self) -> str:
        """Where to get the files and where to put them, for a machine without internet."""
        folder = self.cache_dir()
        if len(self.files) == 1:
            return f"download {KERAS_ORIGIN}{self.files[0]} and put it at {folder / self.files[0]}"
        urls = ", ".join(KERAS_ORIGIN + f for f in self.files)
        return f"download the {len(self.files)} files {urls} into the folder {folder}"

    def load_kwargs(self, cfg: DataConfig) -> dict[str, int]:
        del cfg
        return {}

    def inputs(self, x_tr, x_te, cfg: DataConfig) -> tuple[Prep, tuple[int, ...], int | None, list[str], str]:
        """(prep of rows of Keras' train + test arrays, shape, vocabulary, classes, description)."""
        raise NotImplementedError

    def script_inputs(self, cfg: DataConfig) -> tuple[str, str, str]:
        """(the x line, the prep function, the classes expression) of the exported loader."""
        raise NotImplementedError

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        del uploads_dir
        x_tr, y_tr, x_te, y_te = self._fetch(cfg)
        y_tr, y_te = np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64)
        keep_tr, keep_te = np.arange(len(y_tr)), np.arange(len(y_te))
        if cfg.max_samples is not None and cfg.max_samples < len(y_tr) + len(y_te):
            n_tr = max(1, round(cfg.max_samples * len(y_tr) / (len(y_tr) + len(y_te))))
            keep_tr = subsample(keep_tr, y_tr, n_tr, seed, True)
            keep_te = subsample(keep_te, y_te, max(1, cfg.max_samples - n_tr), seed, True)
        train, val, note = keep_tr, None, ""
        if validation_split > 0:
            try:
                train, val, note = take(keep_tr, y_tr, validation_split, seed, True)
            except ValueError as exc:
                raise DatasetError(
                    f"Too few training samples for a validation split of {validation_split:g}: {exc}"
                ) from None
        # Train and validation rows both index Keras' train arrays; test rows its test arrays.
        parts = Parts(train, val, keep_te + len(y_tr), note)
        prep, shape, vocab, classes, what = self.inputs(x_tr, x_te, cfg)
        return to_dataset(
            parts,
            prep,
            np.concatenate([y_tr, y_te]),
            task=self.task,
            kind=self.input_kind,
            classes=classes,
            shape=shape,
            vocab=vocab,
            names=[],
            label=f"{self.label} (Keras' own test split)",
            what=what,
        )

    def _fetch(self, cfg: DataConfig):
        import keras
        from keras.src.utils import file_utils

        path = self.cache_path()
        # A bad cached file makes Keras re-download it and, if that fails, delete it: say so.
        bad_cache = (
            self.sha256 is not None
            and path.is_file()
            and not file_utils.validate_file(str(path), self.sha256)
        )
        loader = getattr(keras.datasets, self.name).load_data
        try:
            (x_tr, y_tr), (x_te, y_te) = loader(**self.load_kwargs(cfg))
        except Exception as exc:  # Keras raises a bare Exception("URL fetch failure on ...") offline
            text = str(exc)
            fetch = re.match(r"URL fetch failure on (\S+): (\S+) -- (.*)", text, re.DOTALL)
            if fetch:
                status, detail = fetch.group(2), fetch.group(3)
                reason = detail if status == "None" else f"HTTP {status} {detail}"
                before = (
                    f"The cached {self.files[0]} at {path} did not match the sha256 Keras expects "
                    "(incomplete, damaged or a different file), so Keras tried to download it again, "
                    "failed, and deleted it. "
                    if bad_cache
                    else f"{self.label} is not in the Keras cache and could not be downloaded. "
                )
                raise DatasetUnavailable(
                    f"{before}Download failed: {reason}. To use it offline, {self.where()}. "
                    f"Or {self.offline_alternative}."
                ) from exc
            where = path if len(self.files) == 1 else self.cache_dir()
            raise DatasetError(
                f"Keras could not read {self.label} from {where}: {text.rstrip('.')}. The cached file is "
                "damaged or not the original; delete it and load again with internet access, or "
                f"{self.where()}."
            ) from exc
        return x_tr, y_tr, x_te, y_te

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        x_line, prep, classes = self.script_inputs(ctx.config.data)
        source = code(
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
            label=self.label.removesuffix(" (Keras)"),
            load=f"keras.datasets.{self.name}.load_data({self.script_load_args})",
            x_line=textwrap.indent(x_line, "    "),
            prep=textwrap.indent(prep, "    "),
            classes=textwrap.indent(classes, "    ").lstrip(),
        )
        return [DATA_TUPLE, Piece(source)]


@dataclass(frozen=True)
class KerasSequences(KerasSet):
    """IMDB: reviews as word ids (Keras' own index), padded to ``maxlen``."""

    script_load_args: str = "num_words=NUM_WORDS"
    default_pad: ClassVar[Pad] = "pre"  # keras.utils.pad_sequences' own, as the tutorial calls it

    def load_kwargs(self, cfg: DataConfig) -> dict[str, int]:
        return {"num_words": cfg.num_words}

    def inputs(self, x_tr, x_te, cfg: DataConfig):
        import keras

        x_all = np.concatenate([np.asarray(x_tr, dtype=object), np.asarray(x_te, dtype=object)])
        truncating, padding = pad_way(cfg, self.default_pad)

        def prep(rows: np.ndarray) -> np.ndarray:
            return keras.utils.pad_sequences(
                list(x_all[rows]), maxlen=cfg.maxlen, truncating=truncating, padding=padding
            ).astype(np.int32)

        what = f"{cfg.num_words:,}-word vocabulary, length {cfg.maxlen}"
        if (truncating, padding) != ("pre", "pre"):
            what += pad_note(truncating, padding)
        return prep, (cfg.maxlen,), cfg.num_words, ["negative", "positive"], what

    def script_inputs(self, cfg: DataConfig) -> tuple[str, str, str]:
        if cfg.truncating is None and cfg.padding is None:  # pad_sequences' own way: pre, pre
            prep = code("""
                def prep(rows):
                    return keras.utils.pad_sequences(list(x[rows]), maxlen=MAXLEN).astype(np.int32)
            """)
        else:
            prep = code("""
                def prep(rows):
                    padded = keras.utils.pad_sequences(
                        list(x[rows]), maxlen=MAXLEN, truncating=TRUNCATING, padding=PADDING
                    )
                    return padded.astype(np.int32)
            """)
        x_line = "x = np.concatenate([np.asarray(x_tr, dtype=object), np.asarray(x_te, dtype=object)])"
        return x_line, prep, '["negative", "positive"]'


@dataclass(frozen=True)
class KerasImages(KerasSet):
    """MNIST-like: 28x28 grayscale images scaled to 0..1, with a channel axis."""

    class_names: tuple[str, ...] = ()  # empty: the digits 0..9

    def classes(self) -> list[str]:
        return list(self.class_names) or [str(i) for i in range(self.n_classes)]

    def inputs(self, x_tr, x_te, cfg: DataConfig):
        del cfg
        x_all = np.concatenate([x_tr, x_te])
        h, w = x_all.shape[1:3]

        def prep(rows: np.ndarray) -> np.ndarray:
            return (x_all[rows].astype(np.float32) / 255.0).reshape(len(rows), h, w, 1)

        return prep, (h, w, 1), None, self.classes(), f"{h}x{w} images"

    def script_inputs(self, cfg: DataConfig) -> tuple[str, str, str]:
        del cfg
        prep = code("""
            def prep(rows):
                images = x[rows].astype(np.float32) / 255.0
                return images.reshape(len(rows), *x.shape[1:3], 1)
        """)
        if self.class_names:
            classes = "[\n" + "\n".join(f"    {lit(c)}," for c in self.class_names) + "\n]"
        else:
            classes = f"[str(i) for i in range({self.n_classes})]"
        return "x = np.concatenate([x_tr, x_te])", prep, classes


IMDB = KerasSequences(
    "imdb",
    "IMDB reviews (Keras)",
    "The seed's data: 50,000 movie reviews, positive or negative. Downloaded once (17 MB).",
    "keras",
    "binary",
    "sequence",
    False,
    files=("imdb.npz",),
    sha256="69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    n_train=25000,
    n_test=25000,
    n_classes=2,
    offline_alternative="use the offline text_sentiment set, or upload the 50,000-review IMDB CSV as "
    "text_csv (text column 'review', target 'sentiment')",
)
MNIST = KerasImages(
    "mnist",
    "MNIST (Keras)",
    "70,000 handwritten 28x28 digits. Downloaded once (11 MB).",
    "keras",
    "multiclass",
    "image",
    False,
    fixed_shape=(28, 28, 1),
    files=("mnist.npz",),
    sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    n_train=60000,
    n_test=10000,
    n_classes=10,
    offline_alternative="use digits_images (scikit-learn's 8x8 digits, no download needed)",
)
FASHION_MNIST = KerasImages(
    "fashion_mnist",
    "Fashion-MNIST (Keras)",
    "70,000 28x28 clothing images in 10 classes. Downloaded once (30 MB).",
    "keras",
    "multiclass",
    "image",
    False,
    fixed_shape=(28, 28, 1),
    cache_subdir=os.path.join("datasets", "fashion-mnist"),
    files=(
        "train-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
    ),
    n_train=60000,
    n_test=10000,
    n_classes=10,
    offline_alternative="use digits_images (scikit-learn's 8x8 digits, no download needed)",
    class_names=(
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
    ),
)
