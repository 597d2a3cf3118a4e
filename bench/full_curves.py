"""Record full learning curves for the forecast's calibration (bench/forecast_calibration.py).

Trains each run below to its last epoch (EarlyStopping off: nothing cuts a curve short) with
``python -m core train`` into ``bench/out/full_curves/`` (or ``--runs-dir``), one after another,
skipping those already there. Different datasets, models, widths, dropout, optimizers and seeds, so
that the curves differ in shape: fast and slow falls, flat bottoms, overfitting rises, noisy ones.

Run by hand: ``.venv/bin/python bench/full_curves.py`` (about 10-20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "bench" / "out" / "full_curves"

# (name, dataset, model settings, fit settings)
RUNS: list[tuple[str, str, dict, dict]] = [
    ("digits-mlp64-s1", "digits", {"name": "mlp", "units": 64}, {"max_epochs": 80, "seed": 1}),
    (
        "digits-mlp128-d3-s2",
        "digits",
        {"name": "mlp", "units": 128, "dropout": 0.3},
        {"max_epochs": 80, "seed": 2},
    ),
    (
        "digits-mlp32-lr3-s3",
        "digits",
        {"name": "mlp", "units": 32},
        {"max_epochs": 80, "seed": 3, "learning_rate": 0.003},
    ),
    (
        "digits-mlp64-sgd-s4",
        "digits",
        {"name": "mlp", "units": 64},
        {"max_epochs": 80, "seed": 4, "optimizer": "sgd", "learning_rate": 0.01},
    ),
    (
        "digits-mlp256-lr10-s5",
        "digits",
        {"name": "mlp", "units": 256, "depth": 3},
        {"max_epochs": 60, "seed": 5, "learning_rate": 0.01},
    ),
    ("cancer-mlp64-s1", "breast_cancer", {"name": "mlp", "units": 64}, {"max_epochs": 120, "seed": 1}),
    (
        "cancer-mlp16-d2-s2",
        "breast_cancer",
        {"name": "mlp", "units": 16, "dropout": 0.2},
        {"max_epochs": 120, "seed": 2},
    ),
    (
        "cancer-mlp128-lr3-s3",
        "breast_cancer",
        {"name": "mlp", "units": 128},
        {"max_epochs": 120, "seed": 3, "learning_rate": 0.003},
    ),
    ("wine-mlp64-s1", "wine", {"name": "mlp", "units": 64}, {"max_epochs": 150, "seed": 1}),
    (
        "wine-mlp32-d3-s2",
        "wine",
        {"name": "mlp", "units": 32, "dropout": 0.3},
        {"max_epochs": 150, "seed": 2},
    ),
    (
        "wine-mlp128-sgd-s3",
        "wine",
        {"name": "mlp", "units": 128},
        {"max_epochs": 150, "seed": 3, "optimizer": "sgd", "learning_rate": 0.01},
    ),
    (
        "diabetes-mlp64-s1",
        "diabetes",
        {"name": "mlp", "units": 64},
        {"max_epochs": 150, "seed": 1, "learning_rate": 0.01},
    ),
    (
        "diabetes-mlp128-d2-s2",
        "diabetes",
        {"name": "mlp", "units": 128, "dropout": 0.2},
        {"max_epochs": 150, "seed": 2, "learning_rate": 0.01},
    ),
    (
        "diabetes-mlp32-s3",
        "diabetes",
        {"name": "mlp", "units": 32},
        {"max_epochs": 150, "seed": 3, "learning_rate": 0.003},
    ),
    ("overfit-mlp64-s1", "overfit", {"name": "mlp", "units": 64}, {"max_epochs": 100, "seed": 1}),
    ("overfit-mlp256-s2", "overfit", {"name": "mlp", "units": 256}, {"max_epochs": 100, "seed": 2}),
    (
        "overfit-mlp64-d3-s3",
        "overfit",
        {"name": "mlp", "units": 64, "dropout": 0.3},
        {"max_epochs": 100, "seed": 3},
    ),
    ("digitsimg-cnn16-s1", "digits_images", {"name": "cnn", "filters": 16}, {"max_epochs": 40, "seed": 1}),
    (
        "digitsimg-cnn32-d2-s2",
        "digits_images",
        {"name": "cnn", "filters": 32, "dropout": 0.2},
        {"max_epochs": 40, "seed": 2},
    ),
    ("text-conv1d-s1", "text_sentiment", {"name": "seed_conv1d"}, {"max_epochs": 30, "seed": 1}),
    ("text-conv1d-s2", "text_sentiment", {"name": "seed_conv1d"}, {"max_epochs": 30, "seed": 2}),
    ("text-lstm-s1", "text_sentiment", {"name": "lstm", "units": 32}, {"max_epochs": 25, "seed": 1}),
    ("text-lstm16-s3", "text_sentiment", {"name": "lstm", "units": 16}, {"max_epochs": 25, "seed": 3}),
    (
        "cancer-mlp64-sgd-s4",
        "breast_cancer",
        {"name": "mlp", "units": 64},
        {"max_epochs": 150, "seed": 4, "optimizer": "sgd", "learning_rate": 0.003},
    ),
]


def config(name: str, dataset: str, model: dict, fit: dict) -> dict:
    return {
        "name": name,
        "data": {"name": dataset},
        "model": model,
        "fit": fit,
        "early_stopping": {"enabled": False},
        "checkpoint": {"enabled": True},
    }


def recorded_names(runs_dir: Path) -> set[str]:
    names = set()
    for cfg in runs_dir.glob("*/config.json"):
        try:
            names.add(json.loads(cfg.read_text())["name"])
        except (OSError, ValueError, KeyError):
            pass
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--seed-offset",
        type=int,
        default=0,
        help="added to every seed (and to the names): another set of curves, e.g. to check the "
        "forecast on curves its settings were not chosen on",
    )
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    done = recorded_names(args.runs_dir)
    for name, dataset, model, fit in RUNS:
        if args.seed_offset:
            name, fit = f"{name}+{args.seed_offset}", {**fit, "seed": fit["seed"] + args.seed_offset}
        if name in done:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(config(name, dataset, model, fit), f)
        print(f"training {name}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "core", "train", f.name, "--runs-dir", str(args.runs_dir)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        Path(f.name).unlink()


if __name__ == "__main__":
    main()
