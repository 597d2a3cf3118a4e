"""What the training process uses, per epoch: recorded by a real run, read back from its history,
refused when a crafted history holds something else, and charted."""

from __future__ import annotations

import json

import pytest

from core.charts.figures import usage_spec
from core.store.runs import FINISHED, EpochRecord, RunStore
from tests.engine.test_training import digits_config


def test_a_run_records_its_process_cpu_and_memory_each_epoch(trainer):
    snap = trainer.wait(trainer.start(digits_config(max_epochs=3)).id, timeout=300)
    assert snap.status == FINISHED, snap.message
    assert len(snap.history) == 3
    for r in snap.history:
        assert r.cpu_seconds is not None and r.cpu_seconds > 0
        assert r.rss_mb is not None and 50 < r.rss_mb < 100_000  # TensorFlow alone is over 50 MiB
        assert r.gpu_mb is None  # no GPU here
    again = RunStore(trainer.store.root).load(snap.id)  # as written to history.jsonl
    assert [(r.cpu_seconds, r.rss_mb) for r in again.history] == [
        (round(r.cpu_seconds, 4), round(r.rss_mb, 4)) for r in snap.history
    ]
    spec = usage_spec(again)
    names = [t["name"] for t in spec["data"]]
    assert names == ["CPU (% of a core)", "memory (MiB)"]


def test_a_run_recorded_without_them_has_no_usage_chart():
    from tests.charts.test_charts import make_snap, u_history

    assert usage_spec(make_snap(u_history(5))) is None


@pytest.mark.parametrize("bad", [-1.0, "5", True, float("inf")])
def test_a_crafted_history_line_with_other_usage_is_refused(bad):
    line = {"epoch": 1, "logs": {"loss": 0.5}, "seconds": 1.0, "saved": False, "es_wait": None,
            "es_best_epoch": None, "rss_mb": bad}  # fmt: skip
    with pytest.raises(ValueError, match="rss_mb"):
        EpochRecord.from_json(json.dumps(line))


def test_a_history_line_written_before_the_usage_fields_still_reads():
    line = (
        '{"epoch": 2, "logs": {"loss": 0.5}, "seconds": 1.5, "saved": true, "es_wait": 0, "es_best_epoch": 2}'
    )
    record = EpochRecord.from_json(line)
    assert (record.cpu_seconds, record.rss_mb, record.gpu_mb) == (None, None, None)
