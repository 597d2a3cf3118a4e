"""A run's tags and free-text note: what the user wants to find it by later, in ``notes.json`` of its
folder (the folder is the truth: the index never holds them, so an index rebuild cannot lose them).

The user's text is checked by one rule (``problems``) and stored exactly as given, or refused with the
field named; nothing is trimmed, split away or dropped. The file is untrusted when read back (it may be
damaged or crafted): it is read with a size limit and checked by the same rule, and a file that fails
is reported, never half-used.

>>> problems(["baseline", "lr 1e-3"], "first try")
[]
>>> problems(["a,b"], "")
['tags[0]: a tag cannot hold a comma (commas separate tags); got "a,b"']
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

FILE = "notes.json"
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_NOTE_CHARS = 5_000
MAX_BYTES = 64 * 1024  # a note of 5,000 characters is at most about 20 KB of UTF-8, escaped in JSON
_NOT_IN_TEXT = ("Cc", "Cf", "Zl", "Zp")  # control, format (direction overrides), line breaks


@dataclass(frozen=True)
class RunNotes:
    tags: tuple[str, ...] = ()
    note: str = ""

    def matches(self, query: str) -> bool:
        """A case-insensitive search: in a tag or in the note."""
        q = query.casefold()
        return any(q in t.casefold() for t in self.tags) or q in self.note.casefold()


def _shown(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def problems(tags: list[str] | tuple[str, ...], note: str) -> list[str]:
    """Why these tags and note cannot be stored, each message naming its field; [] when they can."""
    out = []
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        return ["tags: must be a list of texts"]
    if len(tags) > MAX_TAGS:
        out.append(f"tags: at most {MAX_TAGS} tags; got {len(tags)}")
    for i, tag in enumerate(tags[:MAX_TAGS]):
        where = f"tags[{i}]"
        if not tag.strip():
            out.append(f"{where}: a tag cannot be empty or blank (two commas in a row?)")
        elif tag != tag.strip():
            out.append(f"{where}: a tag cannot begin or end with a space; got {_shown(tag)}")
        elif len(tag) > MAX_TAG_CHARS:
            out.append(f"{where}: at most {MAX_TAG_CHARS} characters; got {len(tag)}")
        elif "," in tag:
            out.append(f"{where}: a tag cannot hold a comma (commas separate tags); got {_shown(tag)}")
        elif any(unicodedata.category(c) in _NOT_IN_TEXT or unicodedata.category(c) == "Cs" for c in tag):
            out.append(f"{where}: one line of printable characters only; got {_shown(tag)}")
        elif tag in tags[:i]:
            out.append(f"{where}: {_shown(tag)} is there twice")
    if not isinstance(note, str):
        return [*out, "note: must be text"]
    if len(note) > MAX_NOTE_CHARS:
        out.append(f"note: at most {MAX_NOTE_CHARS:,} characters; got {len(note):,}")
    bad = [c for c in note if c not in "\n\t" and unicodedata.category(c) in (*_NOT_IN_TEXT, "Cs")]
    if bad:
        out.append(f"note: only printable characters, new lines and tabs; it holds {_shown(bad[0])}")
    return out


def tags_from_text(text: str) -> list[str]:
    """The tags a comma-separated text names, each exactly as typed between the commas but for the
    spaces around it ("a, b" is a and b); an empty text is no tags. ``problems`` judges the result."""
    if not text.strip():
        return []
    return [part.strip() if part.strip() else part for part in text.split(",")]


def read(run_dir: str | os.PathLike) -> RunNotes:
    """The run's notes (none when it has no file); ValueError with the reason for a file that is not
    ours (too large, not JSON, or failing the rule)."""
    path = Path(run_dir) / FILE
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return RunNotes()
    import stat

    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{FILE} is not a regular file")
    if info.st_size > MAX_BYTES:
        raise ValueError(f"{FILE} is {info.st_size:,} bytes; at most {MAX_BYTES:,}")
    with open(path, "rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{FILE} is not JSON text ({exc})") from None
    if not isinstance(data, dict) or set(data) != {"tags", "note"}:
        raise ValueError(f"{FILE} must hold exactly tags and note")
    found = problems(data["tags"], data["note"])
    if found:
        raise ValueError(f"{FILE}: {found[0]}")
    return RunNotes(tuple(data["tags"]), data["note"])


def write(run_dir: str | os.PathLike, notes: RunNotes) -> None:
    """Checked, then written to a temporary file, synced and renamed: never a torn file."""
    found = problems(list(notes.tags), notes.note)
    if found:
        raise ValueError(found[0])
    path = Path(run_dir) / FILE
    partial = path.with_name(f".{FILE}.partial")
    data = json.dumps({"tags": list(notes.tags), "note": notes.note}, ensure_ascii=False).encode("utf-8")
    try:
        with open(partial, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
