"""Text: the seed's tokenization (a vocabulary of ``num_words``, texts padded to ``maxlen``),
fitted on the training texts only, and the same steps as the exported script's source text.

TensorFlow is imported only when a text set is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from core.codegen import Piece, code
from core.config import DataConfig
from core.data.contract import Dataset
from core.data.split import split_for, to_dataset

BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def text_dataset(
    texts: list[str],
    y: np.ndarray,
    task: str,
    classes: list[str],
    cfg: DataConfig,
    validation_split: float,
    seed: int,
    label: str,
) -> Dataset:
    """Split first, then build the vocabulary from the training texts alone."""
    parts = split_for(cfg, y, task, validation_split, seed)
    clean = np.array([BR.sub(" ", t) for t in texts], dtype=object)
    vectorize = fit_vectorizer(clean[parts.train], cfg.num_words, cfg.maxlen)
    return to_dataset(
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


def fit_vectorizer(
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


TEXT = Piece(
    code('''
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
