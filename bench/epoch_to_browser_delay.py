"""Delay from an epoch's end to its point in the browser's loss chart, on a real server.

Starts ``streamlit run`` (as the browser tests do) and Debian's chromium, opens the Train page, turns
EarlyStopping off, trains 25 digits epochs and polls both ends every ~50 ms.

An epoch's end: the mtime of history.jsonl when a poll sees it grow (the line is appended and fsynced
at each epoch end, before the page can know of the epoch). Its point in the browser: the browser
clock when a poll of the loss chart sees the validation trace grow. When one poll sees several new
lines, the earlier ones get the later mtime, so their delay is under-estimated; they are flagged.
(It was a test that asserted nothing on the times; measurements live here, run by hand.)

Usage: python bench/epoch_to_browser_delay.py    (writes bench/out/epoch_to_browser_delay.json)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, new_context, set_number  # noqa: E402
from tests.e2e.test_train_page import (  # noqa: E402
    _POINTS_JS,
    RUN_TIMEOUT,
    early_stopping_off,
    open_train,
    run_log,
    start_run,
    wait_summary,
)


def measure(server: StreamlitServer, page) -> dict:
    """Trains 25 digits epochs from the Train page; the delays, written to bench/out."""
    epochs = 25
    poll = 0.05
    open_train(page, server.url + "/Train")
    early_stopping_off(page)
    set_number(page, "Max epochs", epochs)
    run_id = start_run(page)
    history = server.runs_dir / run_id / "history.jsonl"

    file_at: dict[int, float] = {}
    lines_together: dict[int, int] = {}
    shown_at: dict[int, float] = {}
    n_file = n_shown = 0
    size = -1
    deadline = time.monotonic() + RUN_TIMEOUT / 1000
    while time.monotonic() < deadline and (n_file < epochs or n_shown < epochs):
        tick = time.monotonic()
        try:
            st = history.stat()
        except FileNotFoundError:
            st = None
        if st is not None and st.st_size != size:
            size = st.st_size
            n = history.read_bytes().count(b"\n")
            for e in range(n_file + 1, n + 1):
                file_at[e] = st.st_mtime_ns / 1e9
                lines_together[e] = n - n_file
            n_file = max(n_file, n)
        points, now_ms = page.evaluate(_POINTS_JS, "validation")
        if points > n_shown:
            for e in range(n_shown + 1, points + 1):
                shown_at[e] = now_ms / 1000
            n_shown = points
        time.sleep(max(0.0, poll - (time.monotonic() - tick)))

    from ui.live_view import TICK_SECONDS

    rows = [
        {
            "epoch": e,
            "written_at": round(file_at[e], 4),
            "shown_at": round(shown_at[e], 4),
            "delay_s": round(shown_at[e] - file_at[e], 4),
            "lines_seen_together": lines_together[e],
        }
        for e in sorted(set(file_at) & set(shown_at))
    ]
    delays = [r["delay_s"] for r in rows]
    exact = [r["delay_s"] for r in rows if r["lines_seen_together"] == 1]  # mtime is that epoch's own
    result = {
        "what": "delay from an epoch's end (history.jsonl appended) to its point in the browser's loss chart",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "server_cmd": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(server.cmd)),
        "run": {"dataset": "digits", "model": "mlp", "epochs": epochs, "early_stopping": False},
        "fragment_tick_s": TICK_SECONDS,
        "poll_interval_s": poll,
        "epochs_written": n_file,
        "epochs_shown": n_shown,
        "epochs_measured": len(rows),
        "median_s": round(statistics.median(delays), 4) if delays else None,
        "mean_s": round(statistics.fmean(delays), 4) if delays else None,
        "median_exact_s": round(statistics.median(exact), 4) if exact else None,
        "epochs_exact": len(exact),
        "min_s": min(delays, default=None),
        "max_s": max(delays, default=None),
        "per_epoch": rows,
    }
    out = ROOT / "bench" / "out" / "epoch_to_browser_delay.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nepoch -> browser delay over {len(rows)} epochs: median {result['median_s']} s, "
        f"mean {result['mean_s']} s, min {result['min_s']} s, max {result['max_s']} s; median over the "
        f"{len(exact)} epochs seen alone {result['median_exact_s']} s ({out})"
    )
    print("per epoch (s):", ", ".join(f"{r['epoch']}:{r['delay_s']:.3f}" for r in rows))
    if (n_file, n_shown) != (epochs, epochs):
        sys.exit(f"{n_file} epochs written, {n_shown} shown\n" + run_log(server, run_id))
    wait_summary(page, server, run_id)
    return result


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="epoch-to-browser-"))
    server = StreamlitServer(base / "runs", base / "server.log").start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            measure(server, new_context(browser).new_page())
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
