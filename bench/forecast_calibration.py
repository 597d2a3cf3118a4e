"""How well the curve forecast (core/stopping/curve_forecast.py) knows what comes next, on recorded full
curves, and what its stopping rule saves against EarlyStopping's patience.

Reads every full curve (``core.analysis.rule_benchmark.full_curves``: trained to the end, val_loss on
10 epochs or more) in ``bench/out/full_curves`` (made by bench/full_curves.py) or ``--runs-dir``:

* **Band coverage**: cut each curve after epoch t (t = 10, 13, 16, ... while 10 epochs follow),
  forecast the next 10 epochs from the epochs so far, and count how often the 80% band held the
  value that was recorded (ideal: 80%), per lead (1 to 10 epochs ahead) and overall.
* **Chance calibration**: at the same cuts, the forecast chance that one of the next 10 epochs beats
  the best so far against whether one did, in bins (ideal: the observed share equals the mean
  forecast), and the Brier score against always forecasting the base rate.
* **Stopping**: the forecast rule (horizon 10; below 1, 5, 10, 20 %) and EarlyStopping patience
  (5, 10, 20) replayed on each curve: the mean share of the epochs trained and the val_loss given up
  (the best epoch so far at the stop against the curve's best, relative), as the Rule benchmark
  page reckons it.
* **Cost**: process CPU time of one forecast (fit and 512 samples) at 20, 100, 200 and 2,000 epochs
  (horizon 10) and at horizons 100 and 1,000 (100 epochs), median over 15 interleaved rounds, min-max.

Run by hand: ``.venv/bin/python bench/forecast_calibration.py``. Writes
bench/out/forecast_calibration.json and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.analysis import rule_benchmark  # noqa: E402
from core.stopping import curve_forecast  # noqa: E402
from core.stopping.rules.registry import RULES  # noqa: E402
from core.stopping.rules.rule import Curves  # noqa: E402
from core.store.runs import RunStore  # noqa: E402

HORIZON = 10
FIRST_CUT = 10
CUT_STEP = 3
BAND = (0.1, 0.9)
BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0001)


def cuts(n: int) -> range:
    return range(FIRST_CUT, n - HORIZON + 1, CUT_STEP)


def calibration(curves) -> dict:
    inside = np.zeros(HORIZON)
    counted = np.zeros(HORIZON)
    chances, outcomes = [], []
    for curve in curves:
        val = curve.val
        for t in cuts(len(val)):
            future, draws = curve_forecast.forecast_samples(val[:t], "min", HORIZON)
            low, high = np.quantile(draws, BAND, axis=1)
            actual = np.array([math.nan if v is None else v for v in val[t : t + HORIZON]], dtype=float)
            ok = np.isfinite(actual)
            inside += ((actual >= low) & (actual <= high) & ok).astype(float)
            counted += ok
            chances.append(curve_forecast.share_beating_best(draws, val[:t], "min", 0.0))
            best = min(v for v in val[:t] if v is not None)
            outcomes.append(float(np.nanmin(actual) < best))
    chances_a, outcomes_a = np.array(chances), np.array(outcomes)
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        sel = (chances_a >= lo) & (chances_a < hi)
        if sel.any():
            bins.append(
                {
                    "bin": f"{lo:.1f}-{min(hi, 1.0):.1f}",
                    "forecasts": int(sel.sum()),
                    "mean chance": float(chances_a[sel].mean()),
                    "improved": float(outcomes_a[sel].mean()),
                }
            )
    base = outcomes_a.mean()
    return {
        "cuts": len(chances),
        "coverage by lead": (inside / counted).round(3).tolist(),
        "coverage": float(inside.sum() / counted.sum()),
        "bins": bins,
        "brier": float(((chances_a - outcomes_a) ** 2).mean()),
        "brier of the base rate": float(((base - outcomes_a) ** 2).mean()),
        "base rate": float(base),
    }


def stopping(curves) -> list[dict]:
    settings = [("forecast", {"horizon": HORIZON, "min_delta": 0.0, "chance": c, "min_epochs": 10})
                for c in (1.0, 5.0, 10.0, 20.0)]  # fmt: skip
    settings += [
        ("early_stopping", {"patience": p, "min_delta": 0.0, "start_from_epoch": 0}) for p in (5, 10, 20)
    ]
    rows = []
    for name, params in settings:
        rule = RULES[name]
        shares, given = [], []
        for curve in curves:
            r = rule.replay(Curves(val=curve.val, train=curve.train, mode="min"), params)
            kept = min(range(r.epochs_run), key=lambda i: (curve.val[i] is None, curve.val[i] or 0.0, i))
            shares.append(r.epochs_run / len(curve.val))
            given.append((curve.val[kept] - curve.best) / curve.best)
        rows.append(
            {
                "rule": rule.short_title(params),
                "epochs trained (share)": statistics.mean(shares),
                "val_loss given up (relative)": statistics.mean(given),
                "median given up": statistics.median(given),
                "worst given up": max(given),
            }
        )
    return rows


def cost() -> list[dict]:
    rng = np.random.default_rng(0)
    cases = [(20, 10), (100, 10), (200, 10), (2000, 10), (100, 100), (100, 1000)]  # (epochs, horizon)
    curves = {}
    for n in sorted({n for n, _ in cases}):
        t = np.arange(1, n + 1)
        curves[n] = (0.3 + 1 / np.sqrt(t) + 0.01 * rng.standard_normal(n)).tolist()
    times: dict[tuple[int, int], list[float]] = {case: [] for case in cases}
    for _ in range(15):
        for n, horizon in cases:
            start = time.process_time()
            curve_forecast.chance_of_improvement(curves[n], "min", horizon, 0.0)
            times[n, horizon].append((time.process_time() - start) * 1000)
    return [
        {"epochs": n, "horizon": h, "median ms": statistics.median(v), "min ms": min(v), "max ms": max(v)}
        for (n, h), v in times.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "bench" / "out" / "full_curves")
    args = parser.parse_args()
    store = RunStore(args.runs_dir)
    curves = rule_benchmark.full_curves(store.load(run_id) for run_id in store.ids())
    print(f"{len(curves)} full curves: {', '.join(c.name for c in curves)}")
    out = {
        "curves": len(curves),
        "calibration": calibration(curves),
        "stopping": stopping(curves),
        "cost": cost(),
    }
    cal = out["calibration"]
    print(f"\nBand coverage (80% band, {cal['cuts']} cuts x {HORIZON} epochs): {cal['coverage']:.1%}")
    print("  by lead 1..10:", " ".join(f"{c:.0%}" for c in cal["coverage by lead"]))
    print(f"\nChance calibration (base rate {cal['base rate']:.1%}):")
    for b in cal["bins"]:
        chance, improved = b["mean chance"], b["improved"]
        print(f"  {b['bin']}: {b['forecasts']:4d} forecasts, chance {chance:.1%}, improved {improved:.1%}")
    print(f"  Brier {cal['brier']:.3f} (the base rate alone: {cal['brier of the base rate']:.3f})")
    print("\nStopping (mean over curves):")
    for r in out["stopping"]:
        share, given = r["epochs trained (share)"], r["val_loss given up (relative)"]
        print(
            f"  {r['rule']:<26} epochs {share:.1%}  given up {given:.2%}"
            f" (median {r['median given up']:.2%}, worst {r['worst given up']:.1%})"
        )
    print("\nCost of one forecast (process CPU):")
    for r in out["cost"]:
        print(
            f"  {r['epochs']:>5} epochs, horizon {r['horizon']:>4}: {r['median ms']:.2f} ms"
            f" ({r['min ms']:.2f}-{r['max ms']:.2f})"
        )
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "forecast_calibration.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
