"""Growing files read incrementally: every read must equal reading the whole file again.

The live view loads a run twice a second; ``RunStore.load`` parses only what was appended since its
last load. Whatever happens to the file between loads (appends cut mid-line, an oversized line, a
resume replacing the history by rename, a truncation, a rewrite in place), the result must be what
``read_lines`` / ``read_history`` give on the whole file.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from core.presets import quick_digits
from core.store.runs import EpochRecord, RunStore, new_run_id, read_history, read_lines
from core.store.tail import LineTail


def _record(epoch: int, saved: bool = False) -> str:
    return EpochRecord(
        epoch=epoch, logs={"loss": 1 / epoch, "val_loss": 2 / epoch}, seconds=0.1, saved=saved
    ).to_json()


def test_random_appends_cut_anywhere_read_as_the_whole_file(tmp_path):
    path = tmp_path / "log.txt"
    rng = random.Random(0)
    text = "".join(rng.choice(["a", "b", "é", "\r", " "]) * rng.randint(0, 30) + "\n" for _ in range(300))
    text += "x" * 250 + "\n" + "tail without newline"  # one oversized line (limit 200), then a torn end
    data = text.encode()
    tail = LineTail(path, max_line_bytes=200)
    seen: list[str] = []
    written = 0
    path.write_bytes(b"")
    while written < len(data):
        step = rng.randint(1, 97)
        with path.open("ab") as fh:
            fh.write(data[written : written + step])
        written += step
        update = tail.read()
        if update.restarted:
            seen = []
        seen.extend(update.lines)
        got = seen + ([update.pending] if update.pending is not None else [])
        assert got == read_lines(path, max_bytes=200)


def test_a_replaced_truncated_or_rewritten_file_is_read_again_from_its_start(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("one\ntwo\nthree\n")
    tail = LineTail(path, max_line_bytes=100)
    assert tail.read().lines == ["one", "two", "three"]
    # A resume replaces the file by rename (a new inode), here with a longer one.
    new = tmp_path / "new"
    new.write_text("one\ntwo\nTHREE\nfour\n")
    os.replace(new, path)
    update = tail.read()
    assert update.restarted and update.lines == ["one", "two", "THREE", "four"]
    # Truncated to less than was read.
    path.write_text("uno\n")
    update = tail.read()
    assert update.restarted and update.lines == ["uno"]
    # Rewritten in place (same inode), to a longer text: the bytes before the offset changed.
    with path.open("r+") as fh:
        fh.write("UNO\nmore\n")
    update = tail.read()
    assert update.restarted and update.lines == ["UNO", "more"]
    # A named pipe, or nothing: empty, never waited on.
    path.unlink()
    assert tail.read() == (True, [], None)
    os.mkfifo(path)
    assert tail.read() == (True, [], None)


def test_the_store_loads_a_growing_run_as_a_fresh_store_reads_it(tmp_path):
    """One store loads the run between writes (incrementally); a new store each time reads it whole."""
    root = tmp_path / "runs"
    store = RunStore(root)
    rid = new_run_id()
    store.create(rid, quick_digits(), time.time())
    d = store.run_dir(rid)
    rng = random.Random(1)
    lines = [_record(e, saved=rng.random() < 0.2) for e in range(1, 60)]
    lines[10] = "{torn"  # garbage, dropped
    lines[20] = _record(5)  # out of order, dropped
    blob = "".join(line + "\n" for line in lines).encode()
    written = 0
    while written < len(blob):
        step = rng.randint(1, 400)
        with (d / "history.jsonl").open("ab") as fh:
            fh.write(blob[written : written + step])
        with (d / "log.txt").open("a") as fh:
            fh.write(f"line {written}\n")
        written += step
        got, fresh = store.load(rid), RunStore(root).load(rid)
        assert got.history == fresh.history
        assert got.log_lines == fresh.log_lines
        assert got.checkpoint_epoch == fresh.checkpoint_epoch
    assert [r.epoch for r in got.history] == [r.epoch for r in read_history(d / "history.jsonl")]
    assert len(got.history) == 57
    # A resume rewrites the history (rename): the next load has exactly the new file.
    store.rewrite_history(rid, list(got.history[:7]))
    assert store.load(rid).history == got.history[:7]


@pytest.mark.parametrize("epochs", [100, 20_000])
def test_a_load_of_a_long_run_parses_only_what_was_appended(tmp_path, epochs, monkeypatch):
    """Not a timing: after the first load, a load with one new epoch parses one line."""
    store = RunStore(tmp_path / "runs")
    rid = new_run_id()
    store.create(rid, quick_digits(), time.time())
    path = store.run_dir(rid) / "history.jsonl"
    path.write_text("".join(_record(e) + "\n" for e in range(1, epochs + 1)))
    store.load(rid)
    parsed = []
    original = EpochRecord.from_json
    monkeypatch.setattr(EpochRecord, "from_json", lambda line: parsed.append(line) or original(line))
    with path.open("a") as fh:
        fh.write(_record(epochs + 1) + "\n")
    snap = store.load(rid)
    assert len(parsed) == 1 and snap.epoch == epochs + 1
