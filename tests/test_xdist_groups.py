"""``make test`` runs ``-n 2 --dist loadgroup``: the tests of an ``xdist_group`` go to one worker, so a
module fixture that trains runs or starts a process (tests/e2e/test_runs_pages.py,
tests/engine/test_backends.py, ...) runs once, not once per worker.

pytest-xdist does it by appending ``@<group>`` to each test's node id in the worker. pytest 9.2 moved
the node id to another attribute and xdist 3.8's suffix silently stopped taking effect: every group
was split over both workers and each of those module fixtures ran twice (seen: 21 s of recorded runs,
twice). This test fails when that happens again.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("grouping-check")


def test_a_grouped_test_carries_its_group_under_loadgroup(request):
    grouped = request.node.nodeid.endswith("@grouping-check")
    assert grouped == bool(request.config.getoption("loadgroup", False)), request.node.nodeid
