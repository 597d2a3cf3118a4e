"""What eslab.LabCallback costs in a user's own fit (target: under 1%).

A user-style fit (numpy arrays, shuffle=True, Keras' EarlyStopping and ModelCheckpoint) on the digits
MLP and the tutorial's Conv1D (generated reviews), with and without LabCallback, interleaved A/B/A/B.
Two measures, as docs/keras-streamlit-facts.md ("Measuring") asks on shared, noisy machines:
  1. inside: seconds spent in LabCallback's per-epoch and per-batch hooks (the checkpoint copies
     included) / seconds of fit(), and apart the one-time cost of creating and closing the run;
  2. A/B: process CPU seconds per epoch (first epoch left out), median of each fit, ratio per pair.

Usage: python bench/lab_callback_overhead.py [--rounds 4] [--epochs 12]
Writes bench/out/lab_callback_overhead.json and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from core import models  # noqa: E402
from core.config import DataConfig, FitConfig, ModelConfig  # noqa: E402
from core.data import datasets  # noqa: E402
from core.recorded.lab_callback import LabCallback  # noqa: E402

HOOKS = ("on_train_begin", "on_epoch_begin", "on_train_batch_end", "on_epoch_end", "on_train_end")


class EpochCpu(keras.callbacks.Callback):
    """Process CPU seconds of each epoch."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.process_time() - self._t)


def timed(cb: LabCallback) -> dict[str, float]:
    """Wraps the callback's hooks to add up the wall time spent in each."""
    spent = dict.fromkeys(HOOKS, 0.0)
    for name in HOOKS:
        hook = getattr(cb, name)

        @functools.wraps(hook)
        def wrapper(*args, _hook=hook, _name=name, **kwargs):
            t = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - t

        setattr(cb, name, wrapper)
    return spent


def one_fit(case: dict, with_lab: bool, epochs: int, work: Path) -> dict:
    keras.utils.set_random_seed(0)
    ds = case["ds"]
    model = models.build(ds, case["model"], FitConfig(batch_size=32))
    cpu = EpochCpu()
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=1000),  # never stops: same epochs
        keras.callbacks.ModelCheckpoint(str(work / "best.keras"), monitor="val_loss", save_best_only=True),
        cpu,
    ]
    spent = dict.fromkeys(HOOKS, 0.0)
    if with_lab:
        lab = LabCallback(name="bench", runs_dir=work / "runs")
        spent = timed(lab)
        callbacks.append(lab)
    t = time.perf_counter()
    model.fit(
        ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), epochs=epochs, batch_size=32,
        shuffle=True, verbose=0, callbacks=callbacks,
    )  # fmt: skip
    wall = time.perf_counter() - t
    keras.backend.clear_session()
    once = spent["on_train_begin"] + spent["on_train_end"]
    return {
        "cpu_per_epoch": statistics.median(cpu.seconds[1:]),
        "wall": wall,
        "inside": sum(spent.values()) - once,  # per epoch and batch: what grows with the fit
        "once": once,  # creating and closing the run (model summary, folder, index row)
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()
    cases = {
        "digits MLP": {
            "ds": datasets.load(DataConfig(name="digits"), validation_split=0.2, seed=0),
            "model": ModelConfig(name="mlp"),
        },
        "tutorial Conv1D": {
            "ds": datasets.load(DataConfig(name="text_sentiment"), validation_split=0.2, seed=0),
            "model": ModelConfig(name="seed_conv1d"),
        },
    }
    out = {}
    for label, case in cases.items():
        ratios, shares, once = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            one_fit(case, True, 2, Path(tmp))  # warm-up
            for _ in range(args.rounds):
                a = one_fit(case, False, args.epochs, Path(tmp))
                b = one_fit(case, True, args.epochs, Path(tmp))
                ratios.append(b["cpu_per_epoch"] / a["cpu_per_epoch"])
                shares.append(b["inside"] / (b["wall"] - b["once"]))
                once.append(b["once"])
        out[label] = {
            "inside_share_median": statistics.median(shares),
            "inside_share_range": [min(shares), max(shares)],
            "once_ms_median": 1000 * statistics.median(once),
            "cpu_ratio_median": statistics.median(ratios),
            "cpu_ratio_range": [min(ratios), max(ratios)],
            "rounds": args.rounds,
            "epochs": args.epochs,
        }
        print(
            f"{label:16s} inside {100 * statistics.median(shares):.2f}% "
            f"({100 * min(shares):.2f}-{100 * max(shares):.2f}%) + {1000 * statistics.median(once):.0f} ms "
            "once, CPU per epoch with/without "
            f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})",
            flush=True,
        )
    target = Path(__file__).with_name("out")
    target.mkdir(exist_ok=True)
    (target / "lab_callback_overhead.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
