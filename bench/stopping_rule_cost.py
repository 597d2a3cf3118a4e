"""What a stopping rule costs a run per epoch: the live callback replays the rule on the curves so far
after each epoch, so its cost grows with the epoch count. Measured per rule at 100, 1,000 and 10,000
epochs of a noisy falling curve: process CPU time of one epoch-end replay, median over interleaved
rounds (min-max spread given). Pure Python; no model is trained.

Run by hand: ``.venv/bin/python bench/stopping_rule_cost.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.stopping.rules.registry import RULES  # noqa: E402
from core.stopping.rules.rule import Curves  # noqa: E402

SIZES = (100, 1_000, 10_000)
ROUNDS = 7


def curve(n: int) -> Curves:
    rng = np.random.default_rng(0)
    epochs = np.arange(1, n + 1)
    val = (1.0 / np.sqrt(epochs) + 0.3 + 0.01 * rng.standard_normal(n)).tolist()
    train = (1.0 / epochs + 0.01 * rng.random(n)).tolist()
    return Curves(val=val, train=train, mode="min", seconds=[0.05] * n)


def main() -> None:
    rules = [r for name, r in RULES.items() if name != "early_stopping"]
    # Settings that never fire on this curve, so each replay reads the whole of it (the worst case).
    never = {
        "prechelt_gl": {"alpha": 1000.0},
        "prechelt_pq": {"alpha": 1000.0, "k": 5},
        "prechelt_up": {"s": 50, "k": 100},
        "stopping_threshold": {"value": -1.0},
        "divergence_threshold": {"value": 1e12},
        "relative_min_delta": {"patience": 1_000_000, "fraction": 0.0},
        "check_finite": {},
        "time_budget": {"minutes": 1_000_000.0},
    }
    curves = {n: curve(n) for n in SIZES}
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(ROUNDS):  # interleaved: every rule and size once per round
        for rule in rules:
            params = never.get(rule.name, rule.defaults())
            for n in SIZES:
                c0 = time.process_time()
                reps = max(1, 20_000 // n)
                for _ in range(reps):
                    rule.replay(curves[n], params)
                times.setdefault((rule.name, n), []).append((time.process_time() - c0) / reps)
    print(f"{'rule':24}" + "".join(f"{n:>22,} epochs" for n in SIZES))
    for rule in rules:
        cells = []
        for n in SIZES:
            xs = times[(rule.name, n)]
            cells.append(f"{statistics.median(xs) * 1e3:8.3f} ms ({min(xs) * 1e3:.3f}-{max(xs) * 1e3:.3f})")
        print(f"{rule.name:24}" + "".join(f"{c:>29}" for c in cells))


if __name__ == "__main__":
    main()
