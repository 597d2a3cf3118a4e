"""Server CPU per open tab against history length: the live view of a run another process trains.

Starts a real ``streamlit run`` server (as the browser tests do). This process plays the other
process (a ``python -m core train`` run, or a user's script with ``eslab.LabCallback``): it creates
runs whose history already holds 100, 10,000 and 100,000 epochs and keeps each one growing by 10
epochs a second (a line in ``history.jsonl`` and one in ``log.txt`` each). One chromium tab follows
each run's live view (a 0.5 s tick) in turn, and the server process's CPU time (user + system, from
/proc) is summed over a window. Rounds interleave the lengths (100, 10k, 100k, 100, ...), so the
machine's load drifts over all of them alike; medians and the spread are printed, as the share of
one core the server spends on the tab.

With ``--baseline DIR`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/base <commit>``)
a second server runs that checkout's app on its own copy of the runs, and each tab is measured on both
servers back to back (the order alternating by round): the ratios new / baseline are taken pair by pair.

Usage: python bench/live_view_server_cpu.py [--rounds 3] [--window 15] [--baseline DIR]
       (writes bench/out/live_view_server_cpu.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from core.presets import quick_digits  # noqa: E402
from core.store.runs import RUNNING, EpochRecord, Run, RunStore, new_run_id  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, wait_connected  # noqa: E402

LENGTHS = (100, 10_000, 100_000)
EPOCHS_PER_SECOND = 10


def _record(epoch: int) -> EpochRecord:
    loss = 1.0 / epoch
    return EpochRecord(
        epoch=epoch,
        logs={"loss": loss, "accuracy": 1 - loss, "val_loss": loss + 0.1, "val_accuracy": 0.9 - loss},
        seconds=0.1,
        saved=epoch % 97 == 0,
        es_wait=0,
        es_best_epoch=epoch,
    )


def _live_run(store: RunStore, epochs: int) -> Run:
    """A run "trained by this process", its history already ``epochs`` long (written as Run writes it)."""
    cfg = quick_digits()
    cfg.name = f"{epochs:,} epochs"
    cfg.fit.max_epochs = 1_000_000
    cfg.early_stopping.enabled = False
    rid = new_run_id()
    store.create(rid, cfg, time.time())
    d = store.run_dir(rid)
    with open(d / "history.jsonl", "w") as fh:
        fh.writelines(_record(e).to_json() + "\n" for e in range(1, epochs + 1))
    with open(d / "log.txt", "w") as fh:
        fh.writelines(f"Epoch {e}: val_loss improved\n" for e in range(1, epochs + 1))
    run = Run(rid, cfg, store)
    run.set_status(RUNNING)
    run._history = [_record(e) for e in range(1, epochs + 1)]  # noqa: SLF001 - the writer's own state
    return run


def _grow(runs: list[Run], stop: threading.Event) -> None:
    while not stop.wait(1 / EPOCHS_PER_SECOND):
        for run in runs:
            n = run.snapshot().epoch + 1
            run.add_epoch(_record(n))
            run.log(f"Epoch {n}: val_loss improved")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(page, url: str, pid: int, window: float, wait_text: str | None) -> float:
    page.goto(url)
    wait_connected(page)
    if wait_text:
        page.get_by_text(wait_text).first.wait_for(timeout=60_000)
        page.wait_for_timeout(3000)  # past the first load (which parses the whole history)
    else:
        page.wait_for_timeout(2000)
    before = _cpu_seconds(pid)
    page.wait_for_timeout(window * 1000)
    return (_cpu_seconds(pid) - before) / window


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per tab")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier commit to compare with")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="live-cpu-"))
    labels = ["this"] + (["baseline"] if args.baseline else [])
    servers = {"this": StreamlitServer(base / "runs", base / "server.log").start()}
    if args.baseline:
        servers["baseline"] = StreamlitServer(
            base / "runs-baseline", base / "server-baseline.log", cwd=args.baseline.resolve()
        ).start()
    runs = {
        label: {n: _live_run(RunStore(server.runs_dir), n) for n in LENGTHS}
        for label, server in servers.items()
    }
    stop = threading.Event()
    every_run = [run for by_length in runs.values() for run in by_length.values()]
    grower = threading.Thread(target=_grow, args=(every_run, stop), daemon=True)
    grower.start()
    shares = {label: {n: [] for n in LENGTHS} for label in labels}
    idle: dict[str, list[float]] = {label: [] for label in labels}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for r in range(args.rounds):
                order = labels if r % 2 == 0 else labels[::-1]
                for label in order:  # a page that does not tick: the server's floor
                    server = servers[label]
                    idle[label].append(
                        _measure(page, f"{server.url}/Runs", server.proc.pid, args.window, None)
                    )
                for n in LENGTHS:
                    for label in order:
                        server = servers[label]
                        url = f"{server.url}/Train?run={runs[label][n].id}"
                        share = _measure(page, url, server.proc.pid, args.window, f"{n:,} epochs")
                        shares[label][n].append(share)
                        print(f"round {r + 1}, {label}, {n:,} epochs: {share:.2%} of a core", flush=True)
            browser.close()
    finally:
        stop.set()
        grower.join()
        for server in servers.values():
            server.stop()

    def spread(values: list[float]) -> dict:
        return {
            "median_core_share": round(statistics.median(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }

    out = {
        "what": "server process CPU (user+system) per second while one tab follows a live run of another "
        f"process growing {EPOCHS_PER_SECOND} epochs/s; the idle row is a tab on the Runs page",
        "window_s": args.window,
        "rounds": args.rounds,
    }
    for label in labels:
        out[label] = {
            "idle": spread(idle[label]),
            **{f"{n} epochs": spread(v) for n, v in shares[label].items()},
        }
    if args.baseline:
        out["ratio this / baseline"] = {
            f"{n} epochs": spread([a / b for a, b in zip(shares["this"][n], shares["baseline"][n]) if b > 0])
            for n in LENGTHS
        }
    dest = ROOT / "bench" / "out"
    dest.mkdir(exist_ok=True)
    (dest / "live_view_server_cpu.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
