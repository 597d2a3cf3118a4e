"""User text is text: names, file names, column names and labels shown exactly as typed, never rendered.

Streamlit renders Markdown (CommonMark + GFM, with its own directives) in ``st.markdown``, ``st.caption``,
``st.info`` / ``success`` / ``warning`` / ``error``, ``st.toast``, ``st.progress(text=)``, and in widget,
tab, expander and metric labels. A run named ``![x](http://host/p.png)`` made every viewer's browser
fetch that URL. What Streamlit 1.67 does with each kind of text, checked in Chromium
(``tests/e2e/test_user_input.py``): raw ``![x](url)`` becomes an ``<img>`` (the fetch), ``**b**`` bold,
``:red[x]`` red, ``$x^2$`` KaTeX, ``:smile:`` an emoji, ``:material/home:`` an icon; ``<img …>`` is shown as
text (HTML is off). With every ASCII punctuation character backslash-escaped (CommonMark renders an escaped
punctuation character literally) each of those is shown as typed, emoji and icon shortcodes included:
the directives, math and emoji are parsed from the source, where the backslash stops them. One thing
survives escaping: GFM's literal autolinks (``http://…``, ``www.…``, ``a@b.c``) are found in the parsed
text, so an escaped URL still became a link (no fetch, but not plain text either). A WORD JOINER
(U+2060, invisible, zero width) after a URL scheme's ``:``, after ``@`` and after ``www`` stops that.

Plotly renders a subset of HTML in trace names, titles, annotations and hover text (``<a href>``, ``<b>``,
``<br>``, ``<img>`` is not in it); ``plotly_text`` escapes it as HTML entities, which Plotly decodes for
display. Plotly also substitutes ``%{…}`` in hover templates: user text never goes into a template.
"""

from __future__ import annotations

import html
import re
import string

import streamlit as st

_PUNCTUATION = frozenset(string.punctuation)
_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(www)(?=\\\.)")
# Only where GFM could find a literal autolink (a URL scheme, www., an e-mail address): any other colon
# stays as typed, with no invisible character to trip a copy-paste or a search.
_SCHEME = re.compile(r"(?i)\b(https?|ftp|mailto|xmpp)\\:")


def md(text: object) -> str:
    """``text`` for any place Streamlit renders Markdown: it is shown exactly as given."""
    s = str(text)
    out = "".join("\\" + c if c in _PUNCTUATION else c for c in s)
    out = _SCHEME.sub(r"\1\\:" + _JOINER, out).replace("\\@", "\\@" + _JOINER)
    out = _AUTOLINK.sub(r"\1" + _JOINER, out)
    return out.replace("\n", "  \n")  # a line break stays a line break, never a paragraph or a heading


def plotly_text(text: object) -> str:
    """``text`` for a Plotly trace name, title or annotation: no tags, no links."""
    return html.escape(str(text), quote=True)


def plain(text: object) -> None:
    """A line of user text on its own (``st.text``: never Markdown)."""
    st.text(str(text))


def message(kind: str, text: object, **kwargs) -> None:
    """``st.error`` / ``warning`` / ``info`` / ``success`` (or ``toast``) of a message that may quote
    user text (a run's failure message, a CSV problem naming a column): the whole of it is escaped."""
    boxes = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}
    boxes.get(kind, st.toast)(md(text), **kwargs)
