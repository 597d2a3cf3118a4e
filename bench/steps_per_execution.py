"""What "Batches per step" buys: steps_per_execution "auto" against 1, process CPU time per epoch.

Usage: python bench/steps_per_execution.py [--rounds 5] [--epochs 6]
(writes bench/out/steps_per_execution.json)

Both arms train as the engine does (``EpochShuffledBatches`` + ``ShuffleEachEpoch``, validation every
epoch, the same seed); "auto" is settled as the engine settles it (``batch_groups.measure_batch_seconds``
then ``choose``, then ``set_group``). Rounds interleave the arms (A/B, then B/A, ...) on the same machine;
the first epoch of each fit (tracing) is left out. Per round the ratio is median epoch CPU time auto /
median epoch CPU time 1; the median and range of those pair-wise ratios are printed. CPU time is the
process's (``time.process_time``: every thread, so TensorFlow's intra-op threads count). It also checks
that both arms logged the same history bit for bit. The app's own per-batch callbacks (the live view)
are not in either arm: with them, grouping saves a little more (their work is per group, too).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from core import models  # noqa: E402
from core.config import DataConfig, FitConfig, ModelConfig  # noqa: E402
from core.data import datasets  # noqa: E402
from core.engine import batch_groups  # noqa: E402
from core.engine.epoch_order import EpochShuffledBatches, ShuffleEachEpoch  # noqa: E402

CASES = {
    "digits MLP": (DataConfig(name="digits"), ModelConfig(name="mlp", dropout=0.2), 32),
    "seed Conv1D, 2,000 reviews": (
        DataConfig(name="text_sentiment", max_samples=2000),
        ModelConfig(name="seed_conv1d"),
        32,
    ),
}


class EpochTimes(keras.callbacks.Callback):
    """CPU and wall seconds of each epoch (training and validation)."""

    def __init__(self):
        super().__init__()
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._cpu, self._wall = time.process_time(), time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.cpu.append(time.process_time() - self._cpu)
        self.wall.append(time.perf_counter() - self._wall)


def one_fit(ds, mcfg, batch: int, epochs: int, auto: bool) -> dict:
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = models.build(ds, mcfg, FitConfig(batch_size=batch))
    k, batch_s = 1, None
    if auto:
        batch_s = batch_groups.measure_batch_seconds(model, ds.x_train, ds.y_train, batch)
        k = batch_groups.choose(batch_s, -(-len(ds.x_train) // batch))
        batch_groups.set_group(model, k)
    batches = EpochShuffledBatches(ds.x_train, ds.y_train, batch, 0)
    timer = EpochTimes()
    history = model.fit(
        batches,
        epochs=epochs,
        validation_data=(ds.x_val, ds.y_val),
        verbose=0,
        shuffle=False,
        callbacks=[ShuffleEachEpoch(batches), timer],
    )
    return {
        "cpu": timer.cpu[1:],
        "wall": timer.wall[1:],
        "k": k,
        "batch_ms": None if batch_s is None else batch_s * 1000,
        "history": history.history,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    out = {}
    for name, (dcfg, mcfg, batch) in CASES.items():
        ds = datasets.load(dcfg, validation_split=0.2, seed=0)
        ratios, wall_ratios, one_cpu, auto_cpu, ks, batch_ms = [], [], [], [], [], []
        identical = True
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            fits = {auto: one_fit(ds, mcfg, batch, args.epochs, auto) for auto in order}
            one, auto = fits[False], fits[True]
            ratios.append(statistics.median(auto["cpu"]) / statistics.median(one["cpu"]))
            wall_ratios.append(statistics.median(auto["wall"]) / statistics.median(one["wall"]))
            one_cpu += one["cpu"]
            auto_cpu += auto["cpu"]
            ks.append(auto["k"])
            batch_ms.append(auto["batch_ms"])
            identical = identical and one["history"] == auto["history"]
        out[name] = {
            "epoch_cpu_s_k1_median": statistics.median(one_cpu),
            "epoch_cpu_s_auto_median": statistics.median(auto_cpu),
            "cpu_ratio_median": statistics.median(ratios),
            "cpu_ratio_range": [min(ratios), max(ratios)],
            "wall_ratio_median": statistics.median(wall_ratios),
            "wall_ratio_range": [min(wall_ratios), max(wall_ratios)],
            "auto_k": ks,
            "auto_batch_ms": batch_ms,
            "histories_identical": identical,
        }
        res = out[name]
        print(
            f"{name}: epoch CPU {res['epoch_cpu_s_k1_median'] * 1000:.0f} ms with k=1, "
            f"{res['epoch_cpu_s_auto_median'] * 1000:.0f} ms with auto (k {min(ks)}-{max(ks)}, batch "
            f"{min(batch_ms):.1f}-{max(batch_ms):.1f} ms); CPU ratio auto/1 median "
            f"{res['cpu_ratio_median']:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); wall ratio median "
            f"{res['wall_ratio_median']:.3f} (range {min(wall_ratios):.3f}-{max(wall_ratios):.3f}); "
            f"histories identical: {identical}",
            flush=True,
        )
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / "steps_per_execution.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
