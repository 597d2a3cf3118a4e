"""The engine against a hand-written ``model.fit``: process CPU per epoch, side by side.

Usage: python bench/engine_overhead.py [--rounds 5] [--epochs 10]   (writes bench/out/engine_overhead.json)

Per round, interleaved, the same model, data and seed:
  bare      ``model.fit(x, y, shuffle=True)`` with Keras' EarlyStopping + ModelCheckpoint(save_best_only)
  pydataset bare fit on the engine's former data path (``EpochShuffledBatches``, a PyDataset)
  pipeline  bare fit on its data path now (``epoch_batches``: tf.data on TensorFlow)
  engine    ``core.engine.fit_one.execute``: the app's run, with every callback it adds
Each epoch's CPU time (``time.process_time``: every thread of this process) is taken from a callback
first in the list to one last in the list, so every other callback's work is inside; the first epoch
of each fit (tracing) is left out. Ratios are taken pair by pair within a round (variant / bare) and
reported as median and range over the rounds.
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
from core.config import (  # noqa: E402
    CheckpointConfig,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    ModelConfig,
    RunConfig,
)
from core.data import datasets  # noqa: E402
from core.engine import fit_one  # noqa: E402
from core.engine.epoch_order import EpochShuffledBatches, ShuffleEachEpoch, epoch_batches  # noqa: E402
from core.store.runs import Run, RunStore, new_run_id  # noqa: E402

CASES = {
    "digits MLP": (DataConfig(name="digits"), ModelConfig(name="mlp"), 32),
    "seed Conv1D, 2,000 reviews": (
        DataConfig(name="text_sentiment", max_samples=2000),
        ModelConfig(name="seed_conv1d"),
        32,
    ),
}
VARIANTS = ("bare", "pydataset", "pipeline", "engine")


class EpochCpu:
    """Two callbacks: one starts the clock before every other callback, one stops it after them."""

    def __init__(self):
        self.times: list[float] = []
        clock = self

        class Start(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock.t0 = time.process_time()

        class End(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                clock.times.append(time.process_time() - clock.t0)

        self.start, self.end = Start(), End()


def _keras_callbacks(folder: str, epochs: int) -> list:
    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs),
        keras.callbacks.ModelCheckpoint(
            os.path.join(folder, "best.keras"), monitor="val_loss", save_best_only=True
        ),
    ]


def bare_fit(ds, mcfg, batch: int, epochs: int, data_path: str) -> list[float]:
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = models.build(ds, mcfg, FitConfig(batch_size=batch))
    clock = EpochCpu()
    folder = tempfile.mkdtemp()
    val = (ds.x_val, ds.y_val)
    extra = _keras_callbacks(folder, epochs)
    if data_path == "bare":
        model.fit(
            ds.x_train,
            ds.y_train,
            batch_size=batch,
            shuffle=True,
            epochs=epochs,
            validation_data=val,
            verbose=0,
            callbacks=[clock.start, *extra, clock.end],
        )
    else:
        if data_path == "pydataset":
            data = EpochShuffledBatches(ds.x_train, ds.y_train, batch, 0)
            shuffler = ShuffleEachEpoch(data)
        else:
            data, shuffler = epoch_batches(ds.x_train, ds.y_train, batch, 0)
        model.fit(
            data,
            shuffle=False,
            epochs=epochs,
            validation_data=val,
            verbose=0,
            callbacks=[clock.start, shuffler, *extra, clock.end],
        )
    return clock.times[1:]


def engine_fit(dcfg, mcfg, batch: int, epochs: int, store: RunStore) -> list[float]:
    cfg = RunConfig(
        name="bench",
        data=dcfg,
        model=mcfg,
        fit=FitConfig(batch_size=batch, max_epochs=epochs, seed=0),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", patience=epochs),
        checkpoint=CheckpointConfig(monitor="val_loss", save_best_only=True),
    )
    run_id = new_run_id()
    created = time.time()
    store.create(run_id, cfg, created)
    run = Run(run_id, cfg, store, created_at=created)
    clock = EpochCpu()
    fit = keras.Model.fit

    def timed_fit(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[clock.start, *(callbacks or []), clock.end], **kwargs)

    keras.Model.fit = timed_fit
    try:
        fit_one.execute(run)
    finally:
        keras.Model.fit = fit
    snap = run.snapshot()
    assert snap.status == "finished", snap.message
    assert len(clock.times) == epochs, (len(clock.times), snap.message)
    return clock.times[1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    store = RunStore(tempfile.mkdtemp())
    out = {"backend": keras.backend.backend(), "rounds": args.rounds, "epochs": args.epochs}
    for name in args.cases:
        dcfg, mcfg, batch = CASES[name]
        ds = datasets.load(dcfg, validation_split=0.2, seed=0)
        per_variant: dict[str, list[float]] = {v: [] for v in VARIANTS}
        ratios: dict[str, list[float]] = {v: [] for v in VARIANTS[1:]}
        for r in range(args.rounds):
            order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))  # neither always goes first
            medians = {}
            for v in order:
                if v == "engine":
                    times = engine_fit(dcfg, mcfg, batch, args.epochs, store)
                else:
                    times = bare_fit(ds, mcfg, batch, args.epochs, v)
                per_variant[v] += times
                medians[v] = statistics.median(times)
            for v in ratios:
                ratios[v].append(medians[v] / medians["bare"])
            print(
                f"  {name} round {r + 1}: " + ", ".join(f"{v} {medians[v] * 1000:.1f} ms" for v in VARIANTS),
                flush=True,
            )
        out[name] = {
            "epoch_cpu_ms_median": {v: statistics.median(t) * 1000 for v, t in per_variant.items()},
            "ratio_to_bare": {
                v: {"median": statistics.median(x), "min": min(x), "max": max(x)} for v, x in ratios.items()
            },
        }
        print(
            f"{name} ({keras.backend.backend()}): CPU per epoch, bare fit "
            f"{out[name]['epoch_cpu_ms_median']['bare']:.1f} ms; ratio to bare: "
            + "; ".join(
                f"{v} {statistics.median(x):.3f} ({min(x):.3f}-{max(x):.3f})" for v, x in ratios.items()
            ),
            flush=True,
        )
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / f"engine_overhead_{keras.backend.backend()}.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
