"""Two stores on one runs folder in one process (the server's own and a page's, a notebook's two fits),
while another process opens and closes the same folder (a worker, ``python -m core``, a user's script).

Opening a store used to read the index's first bytes with a plain ``open()``. Closing that file
descriptor drops every POSIX lock this process holds on the index (``close()`` releases all of a
process's fcntl locks on a file, whichever descriptor took them), so SQLite in another process saw no
other user at its close, checkpointed and deleted the write-ahead log, and this process went on
committing into the deleted log: its writes were invisible to every other process, and lost at its end
(seen in the browser tests: a rename the server made was not in the index the test process read).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.presets import quick_digits
from core.store.runs import RunStore, new_run_id

ROOT = Path(__file__).resolve().parents[2]


def _in_another_process(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", f"from core.store.runs import RunStore\n{code}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def _deleted_index_files(root: Path) -> list[str]:
    """The files of root's index this process holds open although they were deleted."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root / "runs.sqlite")) and target.endswith("(deleted)"):
            held.append(target)
    return held


def test_a_second_store_in_a_process_keeps_its_writes_visible_to_other_processes(tmp_path):
    root = tmp_path / "runs"
    first = RunStore(root)
    run_id = new_run_id()
    first.create(run_id, quick_digits(), time.time())
    second = RunStore(root)  # opening checks the index: it must not drop the first one's locks
    assert second.load(run_id).config.name == quick_digits().name

    # Another process opens the folder, writes, and closes its last connection.
    _in_another_process(f"RunStore({str(root)!r}).rename({run_id!r}, 'renamed elsewhere')")
    assert _deleted_index_files(root) == []  # the write-ahead log this process uses is still the folder's
    assert first.load(run_id).config.name == "renamed elsewhere"

    # This process writes: another process sees it.
    first.rename(run_id, "renamed here")
    seen = _in_another_process(f"print(RunStore({str(root)!r}).load({run_id!r}).config.name)")
    assert seen == "renamed here"
