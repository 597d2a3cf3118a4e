"""Time a full patience sweep on a long history (target: under 100 ms).

The sweep: patience 0..200 x 10 min_delta values = 2,010 EarlyStopping replays over a 10,000-epoch
noisy U-shaped val_loss curve (values rounded to float32, as Keras logs them), through the public
``core.sweeps.patience_sweep`` (list in, DataFrame out: conversion included). Median of 7 runs.
For scale it also times the plain per-setting replay over every patience of one min_delta,
extrapolates to the whole sweep, and checks the sweep's rows against it.

Usage: python bench/replay_sweep.py [--epochs 10000] [--runs 7]
Writes bench/out/replay_sweep.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.replay import patience_sweep, replay_early_stopping, suggest_knee  # noqa: E402

PATIENCES = list(range(201))
MIN_DELTAS = [0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
TARGET_MS = 100.0


def u_shaped_val_loss(epochs: int, seed: int = 0) -> list[float]:
    """Fast fall, long flat bottom, slow overfitting rise, multiplicative noise, float32 values."""
    rng = np.random.default_rng(seed)
    t = np.arange(epochs, dtype=np.float64)
    clean = 0.25 + 2.0 * np.exp(-t / 150.0) + 0.35 * (t / epochs) ** 2
    noisy = clean * (1.0 + 0.02 * rng.standard_normal(epochs)) + 0.002 * rng.standard_normal(epochs)
    return [float(v) for v in noisy.astype(np.float32)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    values = u_shaped_val_loss(args.epochs)
    kwargs = dict(mode="min", patiences=PATIENCES, min_deltas=MIN_DELTAS, restore_best_weights=True)
    patience_sweep(values, **kwargs)  # warm-up (imports, caches)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        frame = patience_sweep(values, **kwargs)
        times.append(time.perf_counter() - t0)
    median_ms = statistics.median(times) * 1000

    # The plain replay for one min_delta over every patience: exactness check and the naive cost.
    check_delta = MIN_DELTAS[3]
    t0 = time.perf_counter()
    es = dict(mode="min", min_delta=check_delta, restore_best_weights=True)
    plain = [replay_early_stopping(values, patience=p, **es) for p in PATIENCES]
    plain_s = time.perf_counter() - t0
    rows = frame[frame["min_delta"] == check_delta]
    for r, row in zip(plain, rows.itertuples()):
        got = (bool(row.stopped), int(row.epochs_run), int(row.best_epoch), int(row.final_weights_epoch))
        assert got == (r.stopped, r.epochs_run, r.best_epoch, r.final_weights_epoch), (row.patience, got, r)
    naive_ms = plain_s * 1000 * len(MIN_DELTAS)
    knee = suggest_knee(frame)

    result = {
        "epochs": args.epochs,
        "settings": len(frame),
        "runs": args.runs,
        "median_ms": round(median_ms, 2),
        "min_ms": round(min(times) * 1000, 2),
        "max_ms": round(max(times) * 1000, 2),
        "target_ms": TARGET_MS,
        "meets_target": median_ms < TARGET_MS,
        "plain_replay_ms_one_min_delta": round(plain_s * 1000, 1),
        "plain_replay_extrapolated_ms": round(naive_ms, 1),
        "stopped_share": round(float(frame["stopped"].mean()), 3),
        "knee": {
            "min_delta": float(knee["min_delta"]),
            "patience": int(knee["patience"]),
            "epochs_run": int(knee["epochs_run"]),
            "given_up": float(knee["given_up"]),
        },
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "replay_sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"patience sweep: {len(frame)} settings x {args.epochs} epochs: median {median_ms:.1f} ms "
        f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; {args.runs} runs; "
        f"target < {TARGET_MS:.0f} ms)"
    )
    print(
        f"plain replay (checked equal): {plain_s * 1000:.0f} ms for the {len(PATIENCES)} patiences of one "
        f"min_delta, ~{naive_ms / 1000:.1f} s for the whole sweep"
    )
    print(f"knee: {result['knee']}")


if __name__ == "__main__":
    main()
