"""The live chart's component files come from a folder this process owns, never a shared fixed path."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import plotly


def test_the_component_folder_is_private_and_an_attackers_folder_is_not_used(tmp_path, monkeypatch):
    from ui import live_chart

    # Another local user got there first: the old fixed path exists, with their page in it.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    old = tmp_path / f"eslab-live-chart-{plotly.__version__}"
    old.mkdir(mode=0o777)
    (old / "index.html").write_text("<script>steal()</script>")
    (old / "plotly.min.js").write_text("steal()")
    live_chart._component.cache_clear()
    try:
        folder = live_chart.component_folder()
        assert folder.resolve() != old.resolve()
        assert folder.parent == tmp_path
        info = folder.stat()
        assert info.st_uid == os.getuid()
        assert stat.S_IMODE(info.st_mode) == 0o700  # owner only
        assert (folder / "index.html").read_bytes() == (
            Path(live_chart.__file__).parent / "index.html"
        ).read_bytes()
        assert b"steal()" not in (folder / "plotly.min.js").read_bytes()[:1000]
        assert (old / "index.html").read_text() == "<script>steal()</script>"  # untouched, unused
    finally:
        live_chart._component.cache_clear()
