"""Append-only files read as they grow: each read returns only the lines written since the last one.

A run's ``history.jsonl`` and ``log.txt`` only grow while it trains (a resume replaces
``history.jsonl`` whole, by rename). The live view of a run trained by another process reads them
twice a second; reading and parsing them whole cost 1 s a tick at 100,000 epochs. A ``LineTail``
remembers where it stopped and reads from there, so a tick costs the same at any length. It starts
over when the file is another one (its inode changed: a rename), shorter than what was read, or no
longer holds the bytes it ended with (rewritten in place).

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.txt"
>>> _ = path.write_text("one\\ntwo\\nthr")
>>> tail = LineTail(path, max_line_bytes=100)
>>> tail.read()
Update(restarted=True, lines=['one', 'two'], pending='thr')
>>> with path.open("a") as fh:
...     _ = fh.write("ee\\nfour\\n")
>>> tail.read()
Update(restarted=False, lines=['three', 'four'], pending=None)
"""

from __future__ import annotations

import errno
import os
import stat
from typing import NamedTuple

SIGNATURE_BYTES = 64  # the bytes before the read offset that must still be there for an append to be one
CHUNK = 1 << 20


class Update(NamedTuple):
    restarted: bool  # the lines are the file's from its start: drop what earlier reads gave
    lines: list[str]  # complete lines (ended by a newline) read now
    pending: str | None  # an unfinished last line (a write in flight, or a file that ends without "\n")


class LineTail:
    """Reads a text file's new lines; a line longer than ``max_line_bytes`` is skipped as damaged and
    never held whole. Not thread-safe: its owner locks. A file that is missing, unreadable or not a
    regular file (a named pipe, a device) reads as empty."""

    def __init__(self, path: str | os.PathLike, max_line_bytes: int):
        self.path = path
        self.max_line_bytes = max_line_bytes
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._signature = b""
        self._partial = b""  # the unfinished line after the offset
        self._skipping = False  # inside an oversized line: drop bytes until its newline

    def read(self) -> Update:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return self._restart_empty()
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            restarted = not self._continues(fd, info)
            if restarted:
                self._identity, self._offset, self._signature = (info.st_dev, info.st_ino), 0, b""
                self._partial, self._skipping = b"", False
            os.set_blocking(fd, True)
            lines = self._read_from(fd, info.st_size)
        except OSError:
            return self._restart_empty()
        finally:
            os.close(fd)
        pending = None
        if self._partial and not self._skipping:
            pending = _text(self._partial)
        return Update(restarted, lines, pending)

    def _restart_empty(self) -> Update:
        self._identity, self._offset, self._signature, self._partial, self._skipping = (
            None,
            0,
            b"",
            b"",
            False,
        )
        return Update(True, [], None)

    def _continues(self, fd: int, info: os.stat_result) -> bool:
        """Whether the file is the one read so far, grown (or not) by appends only."""
        if self._identity != (info.st_dev, info.st_ino) or info.st_size < self._offset:
            return False
        if not self._signature:
            return True
        n = len(self._signature)
        return os.pread(fd, n, self._offset - n) == self._signature

    def _read_from(self, fd: int, size: int) -> list[str]:
        lines: list[str] = []
        limit = self.max_line_bytes
        while self._offset < size:
            chunk = os.pread(fd, min(CHUNK, size - self._offset), self._offset)
            if not chunk:
                break
            self._offset += len(chunk)
            self._signature = (self._signature + chunk[-SIGNATURE_BYTES:])[-SIGNATURE_BYTES:]
            *complete, rest = (self._partial + chunk).split(b"\n")
            for raw in complete:
                if self._skipping:  # the end of an oversized line
                    self._skipping = False
                elif len(raw) > limit:
                    pass  # an oversized line, whole in this chunk
                else:
                    lines.append(_text(raw))
            self._partial = rest
            if len(self._partial) > limit:  # an oversized unfinished line: never held whole
                self._partial, self._skipping = b"", True
        return lines


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")
