"""Every dataset, by name: one line per plugin. The UI, validation, the engine and the exporter
find datasets here and nowhere else; tests/test_every_plugin.py tests each one it lists."""

from __future__ import annotations

from core.data.contract import DatasetSpec
from core.data.sources.diabetes import DIABETES
from core.data.sources.keras_sets import FASHION_MNIST, IMDB, MNIST
from core.data.sources.overfit import OVERFIT
from core.data.sources.reviews import TEXT_SENTIMENT
from core.data.sources.sklearn_sets import BREAST_CANCER, DIGITS, DIGITS_IMAGES, WINE
from core.data.sources.uploaded_csv import CSV, TEXT_CSV
from core.data.sources.uploaded_images import IMAGES
from core.data.sources.uploaded_npz import NPZ, NPZ_IMAGES

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DIGITS,
        DIGITS_IMAGES,
        BREAST_CANCER,
        WINE,
        DIABETES,
        OVERFIT,
        TEXT_SENTIMENT,
        CSV,
        TEXT_CSV,
        NPZ,
        NPZ_IMAGES,
        IMAGES,
        IMDB,
        MNIST,
        FASHION_MNIST,
    )
}
