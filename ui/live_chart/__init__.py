"""A Plotly chart that updates in place (no remount, no flicker, zoom kept) for the live view.

Streamlit 1.67 gives ``st.plotly_chart`` a new identity whenever the figure changes (the spec is
hashed into the element id even with a ``key``), so each tick of the live view remounted the
chart: it flickered and lost the user's zoom. A keyed custom component keeps its iframe across
reruns; the page inside applies each new figure with ``Plotly.react``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit.components.v1 as components

_HERE = Path(__file__).parent


def _private_folder() -> Path:
    """A folder only this process owns: ``mkdtemp`` creates it with mode 0700 under a random name.

    (It used to be a fixed ``/tmp/eslab-live-chart-<version>``: another local user could create that
    first and serve their own ``index.html`` / ``plotly.min.js`` into every viewer's page.)
    """
    folder = Path(tempfile.mkdtemp(prefix=f"eslab-live-chart-{plotly.__version__}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def _component():
    # The iframe loads plotly.js from the component's folder: the copy shipped inside the plotly
    # package, so it works offline. Written once per process, into a folder of its own.
    folder = _private_folder()
    (folder / "plotly.min.js").write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    shutil.copyfile(_HERE / "index.html", folder / "index.html")
    return components.declare_component("live_chart", path=str(folder))


def component_folder() -> Path:
    """Where the component's files are served from (for the tests)."""
    return Path(_component().abspath)


def live_charts(figs: list[go.Figure | dict[str, Any]], *, key: str, show: str | None = None) -> None:
    """Figures or their plain dicts (``core.charts.figures.loss_spec``: no validation on every tick),
    side by side in one frame, one under the other on a narrow screen.

    One frame for all of them: each frame loads plotly.js (3.6 MB); with one frame instead of two a
    Train page load took 7% less of the renderer's main thread (bench/RESULTS.md, "Suite time").

    ``show``: a token (the run's id); the first time the frame gets a new one, it scrolls the page
    to bring itself into view (index.html says why), and never again for that token."""
    spec = "[" + ",".join(pio.to_json(fig, validate=False) for fig in figs) + "]"
    _component()(spec=spec, show=show, key=key, default=None)
