"""Server memory over 20 runs in a row: RSS after each run of one process-wide Trainer.

Usage: python bench/memory_runs.py [--runs 20]    (writes bench/out/memory_runs.json)
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

from core.presets import quick_digits  # noqa: E402
from core.runs import RunStore  # noqa: E402
from core.training import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    proc = psutil.Process()
    trainer = Trainer(RunStore(Path(tempfile.mkdtemp()) / "runs"))
    rss = []
    for i in range(args.runs):
        cfg = quick_digits()
        cfg.fit.max_epochs = 10
        cfg.early_stopping.enabled = False
        cfg.fit.seed = i
        snap = trainer.wait(trainer.start(cfg).id, timeout=300)
        assert snap.status == "finished", snap.message
        rss.append(proc.memory_info().rss / 2**20)
        print(f"run {i + 1:2d}: RSS {rss[-1]:.1f} MB", flush=True)
    growth = (rss[-1] - rss[1]) / (len(rss) - 2)  # from the 2nd run: the 1st pays for imports and tracing
    out = {"runs": args.runs, "rss_mb": rss, "growth_mb_per_run_after_first": growth}
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / "memory_runs.json").write_text(json.dumps(out, indent=2))
    print(f"RSS after run 1: {rss[0]:.0f} MB, after run {args.runs}: {rss[-1]:.0f} MB; {growth:.2f} MB/run")


if __name__ == "__main__":
    main()
