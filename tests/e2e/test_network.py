"""The server as ``make run`` starts it: bound to 127.0.0.1, and nothing of it talks to the outside.

Only the project's ``.streamlit/config.toml`` decides the address and the usage statistics here (no
command-line overrides, unlike the other browser tests). Every socket of the server and of its
training worker is sampled from start-up through a page load and a finished run.
"""

from __future__ import annotations

import ipaddress
import threading
import time

import psutil
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import StreamlitServer, set_number, wait_connected

pytestmark = pytest.mark.e2e


def _sockets(root: psutil.Process, pids: set[int]) -> set[tuple]:
    found = set()
    for proc in [root, *root.children(recursive=True)]:
        pids.add(proc.pid)
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            found.add((proc.pid, c.status, c.laddr.ip if c.laddr else None, c.raddr.ip if c.raddr else None))
    return found


def test_the_server_binds_loopback_and_never_connects_outside(tmp_path, page: Page):
    srv = StreamlitServer(tmp_path / "runs", tmp_path / "server.log", config_only=True).launch()
    seen: set[tuple] = set()
    pids: set[int] = set()
    done = threading.Event()

    def sample() -> None:
        proc = psutil.Process(srv.proc.pid)
        while not done.is_set():
            try:
                seen.update(_sockets(proc, pids))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        srv.wait_healthy()
        page.goto(f"{srv.url}/Train")
        wait_connected(page)
        set_number(page, "Max epochs", 3)
        page.get_by_role("button", name="Start training").click()
        expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=180_000)
    finally:
        done.set()
        sampler.join(timeout=10)
        srv.stop()

    assert any(status == psutil.CONN_LISTEN for _, status, _, _ in seen), "the sampler saw no socket at all"
    assert len(pids) >= 2, "the training worker was never sampled"
    outside = [
        s
        for s in seen
        if (s[2] and not ipaddress.ip_address(s[2]).is_loopback)
        or (s[3] and not ipaddress.ip_address(s[3]).is_loopback)
    ]
    assert outside == [], f"sockets beyond 127.0.0.1: {outside}"
