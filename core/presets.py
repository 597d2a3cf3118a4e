"""Ready-made configs: the seed tutorial, its offline twin, and quick offline demos."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    description: str
    make: Callable[[], RunConfig]


def quick_digits() -> RunConfig:
    """The offline default: trains in seconds on a laptop core."""
    return RunConfig(
        name="digits-mlp",
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=64, depth=2),
        fit=FitConfig(max_epochs=200, batch_size=32, learning_rate=3e-3),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=5),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
    )


def _seed_callbacks() -> tuple[EarlyStoppingConfig, CheckpointConfig]:
    # EarlyStopping(monitor='val_loss', patience=30, mode='min', min_delta=0.0001)
    # ModelCheckpoint(path, monitor='val_loss', save_best_only=True, mode='min')
    return (
        EarlyStoppingConfig(monitor="val_loss", mode="min", patience=30, min_delta=1e-4),
        CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True, format=".keras"),
    )


def seed_imdb() -> RunConfig:
    """The tutorial exactly: IMDB (5,000 words, 400 tokens), Conv1D, 80/20 validation, 200,000 epochs."""
    es, ck = _seed_callbacks()
    return RunConfig(
        name="seed-imdb-conv1d",
        # pad_sequences(x, maxlen=maxlen): the last 400 tokens kept, zeros at the front.
        data=DataConfig(name="imdb", num_words=5000, maxlen=400, truncating="pre", padding="pre"),
        model=ModelConfig(name="seed_conv1d"),
        fit=FitConfig(max_epochs=200_000, batch_size=32, validation_split=0.2),
        early_stopping=es,
        checkpoint=ck,
    )


def seed_offline() -> RunConfig:
    """The seed's model and callbacks on generated reviews, for machines that cannot download IMDB."""
    cfg = seed_imdb()
    cfg.name = "seed-conv1d-offline"
    cfg.data = DataConfig(name="text_sentiment", num_words=5000, maxlen=400, truncating="pre", padding="pre")
    return cfg


def overfit_demo() -> RunConfig:
    """A small noisy set a wide MLP overfits within a few epochs: early stopping at work."""
    return RunConfig(
        name="overfit-demo",
        data=DataConfig(name="overfit"),
        model=ModelConfig(name="mlp", units=128, depth=2),
        fit=FitConfig(max_epochs=500, batch_size=32),
        early_stopping=EarlyStoppingConfig(
            monitor="val_loss", mode="min", patience=10, restore_best_weights=True
        ),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "quick_digits", "Quick offline run", "Digits MLP, patience 5: trains in seconds.", quick_digits
        ),
        Preset(
            "seed_imdb",
            "The tutorial (IMDB Conv1D)",
            "Keras' IMDB Conv1D with patience 30, min_delta 1e-4, best model kept. Downloads IMDB (17 MB).",
            seed_imdb,
        ),
        Preset(
            "seed_offline",
            "The tutorial, offline",
            "The same model and callbacks on generated reviews: no download needed.",
            seed_offline,
        ),
        Preset(
            "overfit_demo",
            "Overfitting demo",
            "A wide MLP on a small noisy set: watch it stop.",
            overfit_demo,
        ),
    )
}
