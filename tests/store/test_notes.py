"""A run's tags and note: stored exactly as given or refused by field, read back from an untrusted
file with limits (damaged, crafted, oversized, not a regular file: reported, never half-used)."""

from __future__ import annotations

import json
import os

import pytest

from core.store import notes


def test_tags_and_a_note_round_trip_exactly(tmp_path):
    mine = notes.RunNotes(("baseline", "lr 1e-3", "é✓"), "first try\n\twith a tab; **not** markdown")
    notes.write(tmp_path, mine)
    assert notes.read(tmp_path) == mine
    assert not list(tmp_path.glob(".*partial"))  # the temporary file is gone
    assert notes.read(tmp_path / "nothing-here") == notes.RunNotes()


@pytest.mark.parametrize(
    ("text", "tags"),
    [("a, b", ["a", "b"]), ("", []), ("  ", []), ("a,,b", ["a", "", "b"]), ("a, ,b", ["a", " ", "b"])],
)
def test_tags_are_split_at_commas_and_nothing_between_them_is_dropped(text, tags):
    assert notes.tags_from_text(text) == tags


@pytest.mark.parametrize(
    ("tags", "note", "field"),
    [
        (["a", ""], "", "tags[1]: a tag cannot be empty"),
        (["a", " "], "", "tags[1]: a tag cannot be empty"),
        (["x" * 41], "", "tags[0]: at most 40 characters"),
        (["a\u202eb"], "", "tags[0]: one line of printable characters only"),
        (["a", "a"], "", 'tags[1]: "a" is there twice'),
        ([f"t{i}" for i in range(21)], "", "tags: at most 20 tags"),
        ([], "x" * 5_001, "note: at most 5,000 characters"),
        ([], "bell\x07", "note: only printable characters"),
    ],
)
def test_what_cannot_be_stored_is_refused_naming_the_field(tmp_path, tags, note, field):
    found = notes.problems(tags, note)
    assert found and found[0].startswith(field), found
    with pytest.raises(ValueError, match=field.split(":")[0].replace("[", r"\[").replace("]", r"\]")):
        notes.write(tmp_path, notes.RunNotes(tuple(tags), note))
    assert not (tmp_path / notes.FILE).exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not JSON"),
        (b'{"tags": [], "note": "", "extra": 1}', "exactly tags and note"),
        (b'{"tags": "a", "note": ""}', "tags: must be a list"),
        (json.dumps({"tags": ["a\u0000"], "note": ""}).encode(), r"tags\[0\]"),
        (b"x" * (notes.MAX_BYTES + 1), "bytes; at most"),
    ],
)
def test_a_damaged_or_crafted_file_is_reported_not_half_used(tmp_path, content, reason):
    (tmp_path / notes.FILE).write_bytes(content)
    with pytest.raises(ValueError, match=reason):
        notes.read(tmp_path)


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / notes.FILE)
    with pytest.raises(ValueError, match="not a regular file"):
        notes.read(tmp_path)


def test_search_finds_a_tag_or_the_note_in_any_case():
    mine = notes.RunNotes(("Baseline",), "tried a smaller LR")
    assert mine.matches("baseline") and mine.matches("smaller lr") and not mine.matches("dropout")
