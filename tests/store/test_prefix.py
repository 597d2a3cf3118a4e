"""A Prefix is the tuple it replaces: the same items, lengths, slices and equality, unmoved by appends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.store.prefix import Prefix

indices = st.one_of(st.none(), st.integers(-12, 12))


@given(st.lists(st.integers(), max_size=10), st.data())
def test_a_prefix_reads_as_the_tuple_of_the_list_when_it_was_made(items, data):
    frozen = tuple(items)
    prefix = Prefix(items)
    items.extend(data.draw(st.lists(st.integers(), max_size=5)))  # the list grows afterwards
    assert len(prefix) == len(frozen) and list(prefix) == list(frozen) and bool(prefix) == bool(frozen)
    assert prefix == frozen and prefix == list(frozen) and hash(prefix) == hash(frozen)
    for i in range(-len(frozen) - 2, len(frozen) + 2):
        if -len(frozen) <= i < len(frozen):
            assert prefix[i] == frozen[i]
        else:
            with pytest.raises(IndexError):
                prefix[i]
    cut = slice(data.draw(indices), data.draw(indices), data.draw(st.sampled_from([None, 1, 2, -1, -3])))
    assert prefix[cut] == frozen[cut] and type(prefix[cut]) is tuple


def test_a_prefix_longer_than_its_list_is_refused():
    with pytest.raises(ValueError, match="prefix of 3 items of a list of 2"):
        Prefix([1, 2], 3)


def test_a_live_snapshot_keeps_its_history_while_the_run_goes_on(store):
    """What the live view holds: a snapshot's history does not grow with the run."""
    from core.presets import quick_digits
    from core.store.runs import EpochRecord, Run, new_run_id

    run_id = new_run_id()
    store.create(run_id, quick_digits(), 0.0)
    run = Run(run_id, quick_digits(), store)
    run.add_epoch(EpochRecord(epoch=1, logs={"loss": 1.0}, seconds=0.1))
    before = run.snapshot()
    run.add_epoch(EpochRecord(epoch=2, logs={"loss": 0.5}, seconds=0.1))
    run.log("epoch 2")
    after = run.snapshot()
    assert [r.epoch for r in before.history] == [1] and before.log_lines == ()
    assert [r.epoch for r in after.history] == [1, 2] and list(after.log_lines) == ["epoch 2"]
