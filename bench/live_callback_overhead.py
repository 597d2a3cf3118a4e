"""Time spent inside our LiveCallback as a share of training time (target: under 1%).

Two measures, as docs/keras-streamlit-facts.md ("Measuring") asks on shared, noisy machines:
  1. inside: seconds spent in every LiveCallback hook / seconds of fit(), in the same run;
  2. A/B: the median epoch time with and without the callback, runs interleaved A/B/A/B.

Usage: python bench/live_callback_overhead.py [--rounds 3] [--epochs 15]
Writes bench/out/live_callback_overhead.json and prints a table.
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

from core import metrics, models  # noqa: E402
from core.config import DataConfig, FitConfig, ModelConfig, RunConfig  # noqa: E402
from core.data import datasets  # noqa: E402
from core.engine.guarded_callbacks import EpochGate  # noqa: E402
from core.engine.live_callback import LiveCallback  # noqa: E402
from core.store.runs import Run, RunStore, new_run_id  # noqa: E402

HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_end",
    "on_test_batch_end",
    "on_epoch_end",
    "on_train_end",
)


class TimedLive(LiveCallback):
    """LiveCallback with a stopwatch around each hook."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inside = 0.0  # wall seconds in our hooks
        self.inside_cpu = 0.0  # CPU seconds of the training thread in our hooks
        for name in HOOKS:
            original = getattr(self, name)

            def timed(*a, _f=original, **k):
                t, c = time.perf_counter(), time.thread_time()
                try:
                    return _f(*a, **k)
                finally:
                    self.inside += time.perf_counter() - t
                    self.inside_cpu += time.thread_time() - c

            setattr(self, name, timed)


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t)

    def on_train_begin(self, logs=None):
        self.times = []


CASES = {
    "digits MLP": RunConfig(
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=64, depth=2),
        fit=FitConfig(batch_size=32),
    ),
    "seed Conv1D (2,000 generated reviews x 400 tokens)": RunConfig(
        data=DataConfig(name="text_sentiment", max_samples=2000, num_words=5000, maxlen=400),
        model=ModelConfig(name="seed_conv1d"),
        fit=FitConfig(batch_size=32),
    ),
}


def one_fit(cfg: RunConfig, ds, epochs: int, with_live: bool, store: RunStore) -> dict:
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.fit.seed)
    model = models.build(ds, cfg.model, cfg.fit)
    timer = EpochTimer()
    callbacks = [timer]
    live = None
    if with_live:
        run_id = new_run_id()
        store.create(run_id, cfg, time.time())
        live = TimedLive(Run(run_id, cfg, store), EpochGate(), main_metric=metrics.main_metric(ds.task))
        callbacks.append(live)
    t, c = time.perf_counter(), time.process_time()
    model.fit(
        ds.x_train,
        ds.y_train,
        validation_data=(ds.x_val, ds.y_val),
        epochs=epochs,
        batch_size=cfg.fit.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    total, total_cpu = time.perf_counter() - t, time.process_time() - c
    steady = timer.times[1:]  # the first epoch includes tracing
    return {
        "fit_seconds": total,
        "fit_cpu_seconds": total_cpu,
        "inside_cpu_seconds": live.inside_cpu if live else 0.0,
        "median_epoch": statistics.median(steady),
        "inside_seconds": live.inside if live else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--conv-epochs", type=int, default=4)
    args = parser.parse_args()
    out: dict = {"rounds": args.rounds, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs")
        for name, cfg in CASES.items():
            ds = datasets.load(cfg.data, validation_split=0.2, seed=cfg.fit.seed)
            epochs = args.conv_epochs if "Conv1D" in name else args.epochs
            with_live, without = [], []
            for _ in range(args.rounds):  # interleaved A/B
                with_live.append(one_fit(cfg, ds, epochs, True, store))
                without.append(one_fit(cfg, ds, epochs, False, store))
            inside_share = [r["inside_seconds"] / r["fit_seconds"] for r in with_live]
            cpu_share = [r["inside_cpu_seconds"] / r["fit_cpu_seconds"] for r in with_live]
            ratio = [a["median_epoch"] / b["median_epoch"] for a, b in zip(with_live, without)]
            steps = -(-len(ds.x_train) // cfg.fit.batch_size)
            out["cases"][name] = {
                "epochs": epochs,
                "batches_per_epoch": steps,
                "inside_share_median": statistics.median(inside_share),
                "inside_share_all": inside_share,
                "inside_cpu_share_median": statistics.median(cpu_share),
                "inside_us_per_batch_median": statistics.median(
                    r["inside_seconds"] / (epochs * steps) * 1e6 for r in with_live
                ),
                "epoch_time_ratio_with_over_without_median": statistics.median(ratio),
                "epoch_time_ratios": ratio,
                "median_epoch_seconds_with": statistics.median(r["median_epoch"] for r in with_live),
                "median_epoch_seconds_without": statistics.median(r["median_epoch"] for r in without),
            }
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / "live_callback_overhead.json").write_text(json.dumps(out, indent=2))
    for name, r in out["cases"].items():
        print(
            f"{name}: inside LiveCallback {r['inside_share_median'] * 100:.3f}% of fit wall time, "
            f"{r['inside_cpu_share_median'] * 100:.3f}% of fit CPU time "
            f"({r['inside_us_per_batch_median']:.1f} us/batch, {r['batches_per_epoch']} batches/epoch); "
            f"epoch time with/without {r['epoch_time_ratio_with_over_without_median']:.3f} "
            f"(ratios {', '.join(f'{x:.3f}' for x in r['epoch_time_ratios'])})"
        )


if __name__ == "__main__":
    main()
