"""Source-text building blocks for the exported script, below every plugin.

A dataset or model plugin keeps the source its exported script uses beside its loader or
builder; this module is the small vocabulary they write it in, so that ``core/export`` only
composes the pieces. Every template is in ``ruff format`` style (line length 88).

>>> print(code('''
...     def f():
...         return <<value>>
... ''', value=lit("a")))
def f():
    return "a"
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

from core.config import RunConfig

MAX_LINE = 88  # ruff's default, which is what the user's ruff will apply


@dataclass(frozen=True)
class Piece:
    """Top-level code (one or more functions/classes) and the import lines it needs."""

    code: str
    imports: tuple[str, ...] = ()


def code(text: str, **values: str) -> str:
    """A dedented template with ``<<name>>`` placeholders filled in."""
    text = textwrap.dedent(text).strip("\n")
    for key, value in values.items():
        text = text.replace(f"<<{key}>>", value)
    if "<<" in text and ">>" in text[text.index("<<") :]:
        raise KeyError(f"Unfilled placeholder in template: {text[text.index('<<') :][:40]}")
    return text


def lit(value: object) -> str:
    """A Python literal the way ``ruff format`` writes it (double quotes unless that needs escapes)."""
    if isinstance(value, str):
        quote = "'" if value.count('"') > value.count("'") else '"'
        out = []
        for ch in value:
            if ch == "\\":
                out.append("\\\\")
            elif ch == quote:
                out.append("\\" + ch)
            elif ch.isprintable():
                out.append(ch)
            else:
                out.append(repr(ch)[1:-1])
        return quote + "".join(out) + quote
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:_}"  # 200_000
    if isinstance(value, tuple):
        return "(" + ", ".join(map(lit, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(map(lit, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in value.items()) + "}"
    return repr(value)


def module_source(path: Path) -> str:
    """A module's code from its first statement past the docstring and the imports to its end, as
    written: the exported script copies it, so that it runs the app's own code (one definition, no
    drift). Such a module keeps to 88 columns and imports nothing of this app."""
    source = path.read_text()
    tree = ast.parse(source)
    skipped = (ast.Import, ast.ImportFrom)
    body = [n for n in tree.body if not isinstance(n, skipped)]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    lines = source.splitlines()
    first = body[0].lineno - 1
    while first > 0 and lines[first - 1].startswith("#"):
        first -= 1  # the comment just above it belongs to it
    return "\n".join(lines[first:]).strip() + "\n"


def indent(text: str, prefix: str = "    ") -> str:
    return textwrap.indent(text, prefix)


@dataclass(frozen=True)
class ScriptContext:
    """What a plugin's export source may depend on: the run's config and the facts that follow
    from it, computed once by ``core/export`` (which owns composing the script)."""

    config: RunConfig
    task: str | None  # None: a CSV whose task the script infers as the app does
    input_kind: str  # "tabular" / "image" / "sequence"
    data_label: str  # the dataset's label, for docstrings
    input_shape: tuple[int, ...] | None  # per sample, when it does not depend on a file
    csv_path: str | None  # the CSV the script reads by default (CSV sets only)
    data_path: str | None = None  # any uploaded file the script reads by default (CSV, .npz, .zip)

    @property
    def has_val(self) -> bool:
        return self.config.fit.validation_split > 0

    @property
    def is_csv(self) -> bool:
        return self.csv_path is not None

    @property
    def reads_file(self) -> bool:
        """The script reads an uploaded file: a command-line argument, defaulting to ``data_path``."""
        return self.data_path is not None


def setting(name: str, value: object, comment: str = "") -> tuple[str, object, str]:
    """One row of the script's settings block: ``NAME = value  # comment``."""
    return (name, value, comment)
