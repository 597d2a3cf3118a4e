"""What resumability costs: per-epoch shuffling (a PyDataset) plus resume points, against plain fit(x, y).

Usage: python bench/resume_overhead.py [--reps 5] [--epochs 8]   (writes bench/out/resume_overhead.json)

A: ``model.fit(x, y, shuffle=True)``, as the app trained before. B: what the app does now,
``EpochShuffledBatches`` + ``ShuffleEachEpoch`` + ``ResumePointKeeper`` (a resume point written
after every epoch the throttle allows). Interleaved A/B on the same machine; the first epoch of each
fit (tracing) is left out. Also reports a resume point's write time and size.
"""

from __future__ import annotations

import argparse
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
from core.engine import resume_point  # noqa: E402
from core.engine.epoch_order import EpochShuffledBatches, ShuffleEachEpoch  # noqa: E402
from core.engine.guarded_callbacks import EpochGate, ResumePointKeeper  # noqa: E402

CASES = {
    "digits MLP": (DataConfig(name="digits"), ModelConfig(name="mlp", dropout=0.2), 32),
    "seed Conv1D, 2,000 reviews": (
        DataConfig(name="text_sentiment", max_samples=2000),
        ModelConfig(name="seed_conv1d"),
        32,
    ),
}


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def one_fit(ds, mcfg, batch, epochs, resumable: bool) -> tuple[list[float], ResumePointKeeper | None]:
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = models.build(ds, mcfg, FitConfig(batch_size=batch))
    timer = EpochTimes()
    val = (ds.x_val, ds.y_val)
    if not resumable:
        model.fit(
            ds.x_train,
            ds.y_train,
            batch_size=batch,
            epochs=epochs,
            validation_data=val,
            verbose=0,
            callbacks=[timer],
        )
        return timer.times[1:], None
    batches = EpochShuffledBatches(ds.x_train, ds.y_train, batch, 0)
    keeper = ResumePointKeeper(
        tempfile.mkdtemp(), EpochGate(), early_stopping=None, checkpoint=None, summary=dict
    )
    model.fit(
        batches,
        epochs=epochs,
        validation_data=val,
        verbose=0,
        shuffle=False,
        callbacks=[ShuffleEachEpoch(batches), timer, keeper],
    )
    return timer.times[1:], keeper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    out = {}
    for name, (dcfg, mcfg, batch) in CASES.items():
        ds = datasets.load(dcfg, validation_split=0.2, seed=0)
        ratios, a_all, b_all, write_ms, size = [], [], [], [], 0
        for _ in range(args.reps):
            a, _ = one_fit(ds, mcfg, batch, args.epochs, resumable=False)
            b, keeper = one_fit(ds, mcfg, batch, args.epochs, resumable=True)
            ratios.append(statistics.median(b) / statistics.median(a))
            a_all += a
            b_all += b
            write_ms.append(keeper.throttle.cost * 1000)
            size = resume_point.path(keeper.run_dir).stat().st_size
        out[name] = {
            "epoch_s_plain_median": statistics.median(a_all),
            "epoch_s_resumable_median": statistics.median(b_all),
            "ratio_median": statistics.median(ratios),
            "ratio_range": [min(ratios), max(ratios)],
            "resume_point_write_ms_median": statistics.median(write_ms),
            "resume_point_bytes": size,
        }
        r = out[name]
        print(
            f"{name}: epoch {r['epoch_s_plain_median'] * 1000:.0f} ms plain, "
            f"{r['epoch_s_resumable_median'] * 1000:.0f} ms resumable; ratio median {r['ratio_median']:.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f}); "
            f"resume point {r['resume_point_write_ms_median']:.1f} ms, "
            f"{size / 1024:.0f} KB",
            flush=True,
        )
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / "resume_overhead.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
