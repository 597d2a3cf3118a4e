"""What writing a run's summary.json costs (once per index write, about once an epoch; no fsync).

Run by hand: ``.venv/bin/python bench/summary_write_cost.py``. It was an assertion in the suite
(under 2 ms a write) until a loaded CI machine measured 2.7 ms: a measurement, so it lives here.
Prints the median and the spread over 7 rounds of 200 writes, in process CPU time and wall time.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.presets import PRESETS  # noqa: E402
from core.store.runs import RunStore, new_run_id  # noqa: E402


def main() -> None:
    store = RunStore(Path(tempfile.mkdtemp()) / "runs")
    run_id = new_run_id()
    store.create(run_id, PRESETS["quick_digits"].make(), time.time())
    cpu, wall = [], []
    with store._connect() as db:  # noqa: SLF001 - the private write is what is measured
        store._sync_summary(db, run_id)  # noqa: SLF001
        for _ in range(7):
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(200):
                store._sync_summary(db, run_id)  # noqa: SLF001
            cpu.append((time.process_time() - c0) / 200)
            wall.append((time.perf_counter() - w0) / 200)
    for name, xs in (("CPU", cpu), ("wall", wall)):
        print(
            f"summary.json write, {name}: median {statistics.median(xs) * 1e6:.0f} µs "
            f"(min {min(xs) * 1e6:.0f}, max {max(xs) * 1e6:.0f}) over 7 x 200 writes"
        )


if __name__ == "__main__":
    main()
