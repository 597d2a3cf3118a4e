"""JAX against TensorFlow per model: process CPU and wall time per epoch, bare fit and the app's engine.

Usage: python bench/backends.py [--rounds 3] [--epochs 8]   (writes bench/out/backends.json)

Keras' backend is fixed per process, so every fit runs in a fresh child process with
``KERAS_BACKEND`` set. Per model and way of fitting, each round runs a TensorFlow child and a JAX
child back to back (the order alternates between rounds), so slow drift of this shared machine hits
both. A child reports, per epoch after the first (the first traces and compiles), the process CPU
time (all threads) and the wall time between two epoch ends.

- bare: ``model.fit(x, y, shuffle=True, validation_data=...)`` with no callback but the timer;
- engine: ``core.engine.fit_one.execute`` on a real run (per-epoch seeded batches, EarlyStopping
  off, ModelCheckpoint on, the live callback, resume points), timed at each epoch the run records.

Reported: medians and ranges over rounds of the pair-wise ratios JAX / TensorFlow of each child's
median per-epoch CPU and wall, plus the medians themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CASES = ("digits MLP", "seed Conv1D, 2,000 reviews")
MODES = ("bare", "engine")
BACKENDS = ("tensorflow", "jax")


def _case(name: str):
    from core.config import DataConfig, ModelConfig

    if name == "digits MLP":
        return DataConfig(name="digits"), ModelConfig(name="mlp", dropout=0.2)
    return DataConfig(name="text_sentiment", max_samples=2000), ModelConfig(name="seed_conv1d")


def _child(case: str, mode: str, backend: str, epochs: int) -> dict:
    """One fit in this process (its Keras runs ``backend``); per-epoch (cpu, wall) after the first."""
    import keras

    assert keras.backend.backend() == backend
    from core.config import CheckpointConfig, EarlyStoppingConfig, FitConfig, RunConfig

    dcfg, mcfg = _case(case)
    marks: list[tuple[float, float]] = []

    def mark() -> None:
        marks.append((time.process_time(), time.perf_counter()))

    if mode == "bare":
        from core import models
        from core.data import datasets

        ds = datasets.load(dcfg, validation_split=0.2, seed=0)
        keras.utils.set_random_seed(0)
        model = models.build(ds, mcfg, FitConfig(batch_size=32))
        timer = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: mark())
        model.fit(
            ds.x_train,
            ds.y_train,
            batch_size=32,
            epochs=epochs,
            validation_data=(ds.x_val, ds.y_val),
            shuffle=True,
            verbose=0,
            callbacks=[timer],
        )
    else:
        from core.engine.fit_one import execute
        from core.store.runs import Run, RunStore, new_run_id

        class TimedRun(Run):
            def add_epoch(self, record, **changes):
                super().add_epoch(record, **changes)
                mark()

        cfg = RunConfig(
            name="bench",
            data=dcfg,
            model=mcfg,
            fit=FitConfig(max_epochs=epochs, seed=0, backend=backend),
            early_stopping=EarlyStoppingConfig(enabled=False),
            checkpoint=CheckpointConfig(monitor="val_loss", mode="min"),
        )
        store = RunStore(tempfile.mkdtemp())
        run_id = new_run_id()
        store.create(run_id, cfg, time.time())
        run = TimedRun(run_id, cfg, store, created_at=time.time())
        execute(run)
        assert run.snapshot().status == "finished", run.snapshot().message
    cpu = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
    wall = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall), "epochs": len(marks)}


def _spawn(case: str, mode: str, backend: str, epochs: int) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    args = [sys.executable, __file__, "--child", case, mode, backend, "--epochs", str(epochs)]
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("CHILD ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{case} {mode} {backend} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("CHILD "))


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "range": [min(values), max(values)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--child", nargs=3, metavar=("CASE", "MODE", "BACKEND"))
    args = parser.parse_args()
    if args.child:
        print("CHILD " + json.dumps(_child(*args.child, args.epochs)), flush=True)
        return
    out: dict = {}
    for case in CASES:
        for mode in MODES:
            rows: dict[str, list[dict]] = {b: [] for b in BACKENDS}
            for r in range(args.rounds):
                for backend in BACKENDS if r % 2 == 0 else BACKENDS[::-1]:
                    rows[backend].append(_spawn(case, mode, backend, args.epochs))
            tf, jx = rows["tensorflow"], rows["jax"]
            result = {
                "cpu_ratio": _spread([j["cpu"] / t["cpu"] for t, j in zip(tf, jx)]),
                "wall_ratio": _spread([j["wall"] / t["wall"] for t, j in zip(tf, jx)]),
                "tf_cpu_s": statistics.median(t["cpu"] for t in tf),
                "jax_cpu_s": statistics.median(j["cpu"] for j in jx),
                "tf_wall_s": statistics.median(t["wall"] for t in tf),
                "jax_wall_s": statistics.median(j["wall"] for j in jx),
            }
            out[f"{case} / {mode}"] = result
            c, w = result["cpu_ratio"], result["wall_ratio"]
            print(
                f"{case} / {mode}: CPU per epoch TF {result['tf_cpu_s'] * 1000:.0f} ms, "
                f"JAX {result['jax_cpu_s'] * 1000:.0f} ms, JAX/TF {c['median']:.2f} "
                f"({c['range'][0]:.2f}-{c['range'][1]:.2f}); wall TF {result['tf_wall_s'] * 1000:.0f} ms, "
                f"JAX {result['jax_wall_s'] * 1000:.0f} ms, JAX/TF {w['median']:.2f} "
                f"({w['range'][0]:.2f}-{w['range'][1]:.2f})",
                flush=True,
            )
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / "backends.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
