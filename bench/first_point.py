"""Quicker to the first point: server start -> home page, click -> first epoch, Stop -> final status.

Each repetition starts a real ``streamlit run app.py`` server (127.0.0.1, a free port, its own runs
folder; as the browser tests start theirs) and drives Debian's /usr/bin/chromium with Playwright:

1. server start -> home page drawn: from just before the server's ``Popen`` to the home page's
   "Recent runs" heading visible with the script idle (the page is loaded as soon as the port answers).
2. the worker warms up: the server's training process (``core.engine.worker_process``) is waited for
   until its CPU time stops growing (TensorFlow imported, idle); reported, not part of a target.
3. click -> first epoch on the chart: the Train page opened (default settings: the "Quick offline run",
   digits MLP), the clock read just before "Start training" is clicked, to the browser's clock when
   the loss chart first holds a validation point. Split with the runs folder's time stamps: the run's
   ``created_at`` (index) and the mtime of ``history.jsonl`` when its first line is there.
4. Stop -> final status: clicked right after the first point; to the run's header saying "stopped by
   user", and to the test metrics on the page ("Test accuracy").

Machine clock and browser clock are the same clock (one machine). Medians and min-max are printed and
written to bench/out/first_point.json.

Usage: python bench/first_point.py [--reps 5] [--label after]
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    VIEWPORT,
    StreamlitServer,
    run_id_of,
    wait_connected,
)
from tests.e2e.test_train_page import _POINTS_JS  # noqa: E402

TIMEOUT_MS = 120_000


def _wait_worker_idle(server_pid: int, timeout: float = 120.0) -> float:
    """The time (``time.time()``) from which the server's worker process used no CPU for 0.6 s."""
    start = time.monotonic()
    last, still_since, still_wall = -1.0, None, 0.0
    while time.monotonic() - start < timeout:
        workers = [
            p
            for p in psutil.Process(server_pid).children()
            if "core.engine.worker_process" in " ".join(p.cmdline())
        ]
        if workers:
            t = sum(workers[0].cpu_times()[:2])
            if t > 1.0 and t == last:
                if still_since is None:
                    still_since, still_wall = time.monotonic(), time.time()
                if time.monotonic() - still_since >= 0.6:
                    return still_wall
            else:
                still_since = None
            last = t
        time.sleep(0.1)
    raise TimeoutError("the worker did not go idle")


def _index_row(runs_dir: Path, run_id: str) -> dict:
    with sqlite3.connect(f"file:{runs_dir / 'runs.sqlite'}?mode=ro", uri=True, timeout=10) as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    return dict(row) if row else {}


def one_rep(browser, base: Path) -> dict:
    srv = StreamlitServer(base / "runs", base / "server.log")
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    out: dict = {}
    try:
        t0 = time.time()
        srv.launch()
        while True:  # the page is asked for as soon as the port answers
            try:
                page.goto(srv.url, timeout=TIMEOUT_MS)
                break
            except PlaywrightError:
                if srv.proc.poll() is not None or time.time() - t0 > 60:
                    raise
                time.sleep(0.05)
        page.get_by_role("heading", name="Recent runs").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_selector(IDLE, state="attached", timeout=TIMEOUT_MS)
        out["server_start_to_home_s"] = time.time() - t0
        out["server_start_to_worker_idle_s"] = _wait_worker_idle(srv.proc.pid) - t0
        page.goto(srv.url + "/Train")
        wait_connected(page)
        page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=TIMEOUT_MS)

        start_button = page.get_by_role("button", name="Start training")
        t_click = time.time()
        start_button.click()
        handle = page.wait_for_function(
            f"() => {{ const [n, now] = ({_POINTS_JS})('validation'); return n >= 1 ? now : false; }}",
            timeout=TIMEOUT_MS,
            polling=20,
        )
        shown = handle.json_value() / 1000
        out["click_to_first_epoch_s"] = shown - t_click
        run_id = run_id_of(page.url)
        history = srv.runs_dir / run_id / "history.jsonl"
        row = _index_row(srv.runs_dir, run_id)
        out["click_to_run_created_s"] = row["created_at"] - t_click
        out["click_to_run_started_s"] = row["started_at"] - t_click  # the worker set it running
        out["click_to_first_epoch_written_s"] = (
            history.stat().st_mtime - t_click if history.exists() else None
        )

        stop = page.get_by_role("button", name="Stop", exact=True)
        t_stop = time.time()
        stop.click()
        header = page.get_by_test_id("stMarkdownContainer").filter(
            has=page.locator("code", has_text=run_id[:8])
        )
        ended = header.filter(has_text=re.compile(r" · (stopped by user|finished) · "))
        ended.wait_for(timeout=TIMEOUT_MS)
        stopped = " · stopped by user · " in ended.inner_text()
        if stopped:  # else early stopping ended the run before the Stop reached it: not measured
            out["stop_to_stopped_status_s"] = time.time() - t_stop
        page.get_by_text("Test accuracy").first.wait_for(timeout=TIMEOUT_MS)
        if stopped:
            out["stop_to_test_metrics_s"] = time.time() - t_stop
        row = _index_row(srv.runs_dir, run_id)
        log = (srv.runs_dir / run_id / "log.txt").read_text()
        if m := re.search(r"^Epoch 1/\d+ - ([0-9.]+)s", log, re.M):
            out["first_epoch_inside_fit_s"] = float(m.group(1))  # Keras' own epoch time (tracing included)
        out["stop_reason"] = row["stop_reason"]
        out["epochs_run"] = row["epochs_run"]
    finally:
        context.close()
        srv.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    reps = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            for i in range(args.reps):
                with tempfile.TemporaryDirectory(prefix="eslab-first-point-") as tmp:
                    rep = one_rep(browser, Path(tmp))
                reps.append(rep)
                print(
                    f"rep {i + 1}: "
                    + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rep.items()
                    ),
                    flush=True,
                )
        finally:
            browser.close()
    summary = {}
    for key in dict.fromkeys(k for r in reps for k in r):
        values = [r[key] for r in reps if isinstance(r.get(key), float)]
        if values:
            summary[key] = {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }
    print(f"\n{args.label or 'result'} ({len(reps)} reps, load average {psutil.getloadavg()[0]:.1f}):")
    for key, s in summary.items():
        print(f"  {key:34s} median {s['median']:.3f} s  (min {s['min']:.3f}, max {s['max']:.3f})")
    result = {
        "what": "server start -> home page, click -> first epoch (warm worker), Stop -> final status",
        "label": args.label,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average": psutil.getloadavg(),
        "summary": summary,
        "reps": reps,
    }
    out = ROOT / "bench" / "out" / f"first_point{'-' + args.label if args.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
