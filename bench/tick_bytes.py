"""Bytes the server sends the browser per live-view tick, once a run has 1,000+ epochs.

Starts a real ``streamlit run`` server (as the browser tests do), trains a digits run of tiny
epochs (one batch each) for up to 1,400 epochs, opens its live view in Debian's chromium and sums
the WebSocket frames the page receives in each 0.5 s tick window, after epoch 1,000.

Usage: python bench/tick_bytes.py    (writes bench/out/tick_bytes.json)
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

from core.presets import quick_digits  # noqa: E402
from core.store.runs import RunStore  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, wait_connected  # noqa: E402


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="tick-bytes-"))
    server = StreamlitServer(base / "runs", base / "server.log").start()
    try:
        page_url = f"{server.url}/Train"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            frames: list[tuple[float, int]] = []
            page.on(
                "websocket",
                lambda ws: ws.on("framereceived", lambda payload: frames.append((time.time(), len(payload)))),
            )
            page.goto(page_url)
            wait_connected(page)
            # Start the run from the page itself, with settings that make epochs tiny.
            cfg = quick_digits()
            cfg.name = "tick-bytes"
            cfg.data.max_samples = 300
            cfg.fit.batch_size = 256
            cfg.fit.max_epochs = 1400
            cfg.early_stopping.enabled = False
            cfg_path = base / "cfg.json"
            cfg_path.write_text(cfg.to_json())
            page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(cfg_path))
            wait_connected(page)
            page.get_by_role("button", name="Start training").click()
            page.wait_for_url("**run=*", timeout=60_000)
            run_id = page.url.split("run=")[1][:32]
            store = RunStore(server.runs_dir)
            while True:
                snap = store.load(run_id)
                if len(snap.history) >= 1000 or snap.status not in ("queued", "running"):
                    break
                time.sleep(0.5)
            page.wait_for_timeout(100)  # let Playwright deliver the frames queued so far
            frames.clear()
            start = time.time()
            page.wait_for_timeout(10_000)  # sync Playwright delivers events only while it waits
            epochs_at_end = len(store.load(run_id).history)
            window = [(t, n) for t, n in frames if t >= start]
            browser.close()
    finally:
        server.stop()

    ticks: dict[int, int] = {}
    for t, n in window:
        ticks[int((t - start) / 0.5)] = ticks.get(int((t - start) / 0.5), 0) + n
    per_tick = [ticks.get(i, 0) for i in range(20)]
    out = {
        "what": "WebSocket bytes received by the browser per 0.5 s tick while a run past 1,000 epochs trains",
        "epochs_at_start": 1000,
        "epochs_at_end": epochs_at_end,
        "ticks": len(per_tick),
        "median_bytes_per_tick": statistics.median(per_tick),
        "max_bytes_per_tick": max(per_tick),
        "frames": len(window),
        "per_tick": per_tick,
    }
    dest = ROOT / "bench" / "out"
    dest.mkdir(exist_ok=True)
    (dest / "tick_bytes.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "per_tick"}, indent=2))


if __name__ == "__main__":
    main()
