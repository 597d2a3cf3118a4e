"""Text: the seed's tokenization (a vocabulary of ``num_words``, texts padded to ``maxlen``),
fitted on the training texts only, and the same steps as the exported script's source text.

TensorFlow is imported only when a text set is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from core.codegen import Piece, code
from core.config import DataConfig, Pad
from core.data.contract import Dataset, DatasetError
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
    part: np.ndarray | None = None,
) -> Dataset:
    """Split first (``part``: the part each row names, if the data names them), then build the
    vocabulary from the training texts alone."""
    parts = split_for(cfg, y, task, validation_split, seed, part)
    clean = np.array([BR.sub(" ", t) for t in texts], dtype=object)
    truncating, padding = pad_way(cfg)
    vectorize = fit_vectorizer(clean[parts.train], cfg.num_words, cfg.maxlen, truncating, padding)
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
        what=f"{cfg.num_words:,}-word vocabulary, length {cfg.maxlen}"
        + ("" if (truncating, padding) == ("post", "post") else pad_note(truncating, padding)),
    )


def pad_way(cfg: DataConfig, default: Pad = "post") -> tuple[Pad, Pad]:
    """(truncating, padding) as the run applies them: the config's, else the data's own way
    (``default``: post for texts, as TextVectorization cuts and pads; pre for Keras' imdb)."""
    return cfg.truncating or default, cfg.padding or default


def pad_note(truncating: str, padding: str) -> str:
    """How the texts were cut and padded, for a dataset's description."""
    kept = "last" if truncating == "pre" else "first"
    where = "front" if padding == "pre" else "end"
    return f", the {kept} tokens kept, padded at the {where}"


def fit_vectorizer(
    train_texts: np.ndarray, num_words: int, maxlen: int, truncating: Pad = "post", padding: Pad = "post"
) -> Callable[[np.ndarray], np.ndarray]:
    """TextVectorization adapted on the training texts; ids 0 = padding, 1 = out of vocabulary.

    post/post is TextVectorization's own cut to ``maxlen`` (the first tokens, zeros at the end).
    Any other way tokenizes whole texts and hands the ids to ``keras.utils.pad_sequences``, as the
    tutorial pads Keras' imdb (pre/pre: the last ``maxlen`` tokens, zeros at the front)."""
    import keras

    own = truncating == "post" and padding == "post"
    layer = keras.layers.TextVectorization(
        max_tokens=num_words,
        output_sequence_length=maxlen if own else None,
        standardize="lower_and_strip_punctuation",
    )
    layer.adapt(train_texts.astype(str), batch_size=1024)
    if len(layer.get_vocabulary()) <= 2:  # only padding and [UNK]: TensorFlow fails on the first lookup
        raise DatasetError(
            f"None of the {len(train_texts):,} training texts holds a word (once lower-cased and stripped "
            "of punctuation): there is no vocabulary to learn from. Pick the column of texts."
        )

    def vectorize(texts: np.ndarray) -> np.ndarray:
        out = np.zeros((len(texts), maxlen), dtype=np.int32)
        for start in range(0, len(texts), 4096):  # bounded peak memory on 50,000 reviews
            chunk = texts[start : start + 4096].astype(str)
            ids = np.asarray(layer(chunk))
            if not own:  # ids are >= 1; the zeros after them only pad the chunk to its longest
                rows = [row[: np.count_nonzero(row)] for row in ids]
                ids = keras.utils.pad_sequences(rows, maxlen=maxlen, truncating=truncating, padding=padding)
            out[start : start + len(chunk)] = ids
        return out

    return vectorize


_TEXT = '''
    BR = re.compile(r"<br\\s*/?>", re.IGNORECASE)  # IMDB-style line breaks


    def vectorized(texts, y, task, classes<<part_arg>>) -> Data:
        """The seed's tokenization, after the split: the vocabulary (NUM_WORDS ids, 0 for
        padding and 1 for unknown words) comes from the training texts alone."""
        <<split>>
        clean = np.array([BR.sub(" ", t) for t in texts], dtype=object)
        vectorizer = layers.TextVectorization(
            max_tokens=NUM_WORDS,
            output_sequence_length=<<length>>,
            standardize="lower_and_strip_punctuation",
        )
        vectorizer.adapt(clean[train].astype(str), batch_size=1024)

        def prep(rows):
            out = np.zeros((len(rows), MAXLEN), dtype=np.int32)
            for start in range(0, len(rows), 4096):  # bounded memory for big sets
                chunk = clean[rows[start : start + 4096]].astype(str)
    <<ids>>
            return out

        return to_data(prep, y, train, val, test, task, classes)
'''
_OWN_IDS = "            out[start : start + len(chunk)] = np.asarray(vectorizer(chunk))"
# Whole texts, then keras.utils.pad_sequences (ids are >= 1: the zeros after them only pad the
# chunk to its longest text).
_PADDED_IDS = """\
            ids = np.asarray(vectorizer(chunk))
            ids = [row[: np.count_nonzero(row)] for row in ids]  # no chunk padding
            out[start : start + len(chunk)] = keras.utils.pad_sequences(
                ids, maxlen=MAXLEN, truncating=TRUNCATING, padding=PADDING
            )"""


def text_piece(*, given_split: bool = False, own_padding: bool = True) -> Piece:
    """``vectorized`` of the exported script: split as the run did (at random, or the parts the
    data names), cut and padded as the run did (TextVectorization's own way, or pad_sequences)."""
    source = code(
        _TEXT,
        part_arg=", part" if given_split else "",
        split=(
            "train, val, test = split_given(y, part, classify=True)"
            if given_split
            else "train, val, test = split_indices(y, classify=True)"
        ),
        length="MAXLEN" if own_padding else "None",
        ids=_OWN_IDS if own_padding else _PADDED_IDS,
    )
    return Piece(source, ("import re",))


TEXT = text_piece()  # a random split, TextVectorization's own cut and padding
