"""The runnable examples in docstrings run, and say what they show (a drifted example fails here)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "core.codegen",
    "core.data.contract",
    "core.models.contract",
    "core.charts.buckets",
    "core.data.checked_cache",
    "core.models.keras_file",
    "core.stopping.rules.rule",
    "core.store.tail",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
