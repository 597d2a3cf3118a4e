"""A Plotly chart that updates in place (no remount, no flicker, zoom kept) for the live view.

Streamlit 1.67 gives ``st.plotly_chart`` a new identity whenever the figure changes (the spec is
hashed into the element id even with a ``key``), so each tick of the live view remounted the
chart: it flickered and lost the user's zoom. A keyed custom component keeps its iframe across
reruns; the page inside applies each new figure with ``Plotly.react``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit.components.v1 as components

_HERE = Path(__file__).parent


@functools.cache
def _component():
    # The iframe loads plotly.js from the component's folder: the copy shipped inside the plotly
    # package, so it works offline. Built once per process in a cache folder, not the source tree.
    folder = Path(tempfile.gettempdir()) / f"eslab-live-chart-{plotly.__version__}"
    folder.mkdir(exist_ok=True)
    js = folder / "plotly.min.js"
    if not js.exists():
        tmp = folder / "plotly.min.js.partial"
        tmp.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
        tmp.replace(js)
    page = folder / f"index.html.{os.getpid()}.partial"
    shutil.copyfile(_HERE / "index.html", page)
    page.replace(folder / "index.html")
    return components.declare_component("live_chart", path=str(folder))


def live_chart(fig: go.Figure, *, key: str) -> None:
    _component()(spec=pio.to_json(fig, validate=False), key=key, default=None)
