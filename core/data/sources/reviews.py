"""Generated movie reviews (offline): the tutorial's Conv1D on text without a download.

The generator below is the one definition: the app calls it, and the exported script carries its
source verbatim (``script_pieces`` copies it through ``ast``), so the two cannot drift apart. It is
kept in ``ruff format`` style at the script's 88 columns (hence ``fmt: off`` around it).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.codegen import Piece, ScriptContext, code
from core.config import DataConfig
from core.data.contract import GENERATOR_SEED, Dataset, DatasetInfo, DatasetSpec, Setting, Uploads
from core.data.split import DATA_TUPLE, SPLIT
from core.data.text import pad_way, text_dataset, text_piece

SIZE = 2000  # reviews when data.max_samples is not set (it sets the generated size)

# fmt: off
WORDS = {
    "positive": """
        good great excellent wonderful brilliant superb enjoyable delightful moving
        charming fantastic memorable gripping beautiful clever funny touching fresh
        stunning lovely
    """.split(),
    "negative": """
        bad awful terrible boring dull weak poor predictable tedious clumsy forgettable
        lifeless annoying disappointing messy bland painful silly flat pointless
    """.split(),
    "noun": """
        movie film plot story acting cast script ending soundtrack direction dialogue
        pacing camera performance humor lead villain finale music editing
    """.split(),
    "adverb": """
        very really quite truly rather incredibly pretty so
    """.split(),
    "day": """
        Monday Friday Saturday Sunday weekend evening
    """.split(),
    "who": """
        friends sister brother parents kids partner roommate
    """.split(),
    "place": """
        cinema festival theater drive-in
    """.split(),
}
FILLER = (
    "I watched it on a {day} with my {who}.",
    "It runs about {n} minutes.",
    "The {noun} reminded me of an older film.",
    "I had read the book before.",
    "We saw it at the {place}.",
    "My {who} picked it.",
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

# fmt: on


def _generator_source() -> str:
    """WORDS, FILLER and generate_reviews, as written above."""
    source = Path(__file__).read_text(encoding="utf-8")
    names = {"WORDS", "FILLER", "generate_reviews"}
    segments = []
    for node in ast.parse(source).body:
        targets = getattr(node, "targets", None) or [node]
        if any(getattr(t, "id", getattr(t, "name", None)) in names for t in targets):
            segments.append(ast.get_source_segment(source, node))
    return "\n".join(segments[:2]) + "\n\n\n" + segments[2]


@dataclass(frozen=True)
class GeneratedReviews(DatasetSpec):
    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        del uploads_dir
        return DatasetInfo(
            self.task, self.input_kind, 2, cfg.max_samples or SIZE, input_shape=self.shape_for(cfg)
        )

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        del uploads_dir
        texts, y = generate_reviews(cfg.max_samples or SIZE)
        return text_dataset(
            texts, y, "binary", ["negative", "positive"], cfg, validation_split, seed, "generated reviews"
        )

    def script_settings(self, ctx: ScriptContext) -> list[Setting]:
        return [("GENERATOR_SEED", GENERATOR_SEED, "the synthetic set is one fixed set")]

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        source = code(
            '''
            # Word lists and filler sentences of the generated reviews.
            <<generator>>


            def load_data() -> Data:
                """Generated movie reviews (positive/negative), tokenized like IMDB."""
                texts, y = generate_reviews(MAX_SAMPLES or <<size>>)
                return vectorized(texts, y, TASK, ["negative", "positive"])
            ''',
            generator=_generator_source(),
            size=str(SIZE),
        )
        own = pad_way(ctx.config.data, self.default_pad) == ("post", "post")
        return [DATA_TUPLE, SPLIT, text_piece(own_padding=own), Piece(source)]


TEXT_SENTIMENT = GeneratedReviews(
    "text_sentiment",
    "Generated reviews",
    "Synthetic movie reviews (positive/negative), tokenized like IMDB; the Conv1D demo offline.",
    "synthetic",
    "binary",
    "sequence",
    True,
)
