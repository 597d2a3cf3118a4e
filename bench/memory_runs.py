"""Server memory over 20 runs in a row, training in this process or in the recycled worker.

Usage: python bench/memory_runs.py [--runs 20] [--train-in thread|process|both]
(writes bench/out/memory_runs.json)

"thread": RSS of this process (the server) after each run, as before the worker existed.
"process": RSS of this process and of the worker process after each run; the worker is replaced
after ESLAB_WORKER_MAX_RUNS runs (default 10), so the total stays bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from core.engine import worker_process  # noqa: E402
from core.engine.queue import Trainer  # noqa: E402
from core.presets import quick_digits  # noqa: E402
from core.store.runs import RunStore  # noqa: E402


def measure(train_in: str, runs: int) -> dict:
    me = psutil.Process()
    trainer = Trainer(RunStore(Path(tempfile.mkdtemp()) / "runs"), train_in=train_in)
    server, worker = [], []
    for i in range(runs):
        cfg = quick_digits()
        cfg.fit.max_epochs = 10
        cfg.early_stopping.enabled = False
        cfg.fit.seed = i
        snap = trainer.wait(trainer.start(cfg).id, timeout=300)
        assert snap.status == "finished", snap.message
        server.append(me.memory_info().rss / 2**20)
        w = worker_process.shared_pool().workers().get("tensorflow") if train_in == "process" else None
        worker.append(psutil.Process(w.proc.pid).memory_info().rss / 2**20 if w and w.alive else 0.0)
        print(f"{train_in} run {i + 1:2d}: server {server[-1]:.1f} MB, worker {worker[-1]:.1f} MB")
    total = [s + w for s, w in zip(server, worker)]
    return {
        "server_rss_mb": server,
        "worker_rss_mb": worker,
        "total_mb": total,
        "max_total_mb": max(total),
        "growth_mb_per_run_after_first": (total[-1] - total[1]) / (runs - 2),
        "workers_started": worker_process.shared_pool().started if train_in == "process" else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--train-in", choices=("thread", "process", "both"), default="process")
    args = parser.parse_args()
    modes = ("process", "thread") if args.train_in == "both" else (args.train_in,)
    out = {"runs": args.runs, **{m: measure(m, args.runs) for m in modes}}
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / "memory_runs.json").write_text(json.dumps(out, indent=2))
    for m in modes:
        r = out[m]
        print(
            f"{m}: server {r['server_rss_mb'][0]:.0f} -> {r['server_rss_mb'][-1]:.0f} MB, "
            f"total max {r['max_total_mb']:.0f} MB, {r['growth_mb_per_run_after_first']:.2f} MB/run, "
            f"workers started {r['workers_started']}"
        )


if __name__ == "__main__":
    main()
