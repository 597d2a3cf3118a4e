"""The curve forecast (core/stopping/curve_forecast.py): what it says about curves whose future is
known, that it is repeatable, direction-symmetric, and that the exported script can carry it as is."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from core.stopping import curve_forecast as cf


def _noisy(clean: np.ndarray, sd: float, seed: int) -> list[float]:
    return (clean + sd * np.random.default_rng(seed).standard_normal(clean.size)).tolist()


def test_a_falling_curve_is_likely_to_improve_and_a_rising_one_is_not():
    x = np.arange(1, 31)
    falling = _noisy(0.3 + 1.0 / np.sqrt(x), 0.002, 0)
    rising = _noisy(0.3 + 0.5 / x + 0.01 * x, 0.002, 1)  # past its best at epoch 7, climbing since
    assert cf.chance_of_improvement(falling, "min", 10, 0.0) > 0.9
    assert cf.chance_of_improvement(rising, "min", 10, 0.0) < 0.05


def test_the_band_holds_about_as_much_of_a_known_future_as_it_says():
    """On noisy power-law curves, the 10-90% band of the next 10 epochs holds 60-95% of them."""
    inside = total = 0
    for seed in range(20):
        x = np.arange(1, 51)
        curve = _noisy(0.2 + 0.8 * x**-0.7, 0.01, seed)
        future, draws = cf.forecast_samples(curve[:40], "min", 10)
        low, high = np.quantile(draws, [0.1, 0.9], axis=1)
        actual = np.array(curve[40:])
        inside += int(((actual >= low) & (actual <= high)).sum())
        total += actual.size
        assert future.tolist() == list(range(41, 51))
    assert 0.6 <= inside / total <= 0.95, inside / total


def test_the_same_curve_always_gives_the_same_forecast():
    curve = _noisy(0.3 + 1.0 / np.arange(1, 41), 0.01, 3)
    a = cf.forecast_samples(curve, "min", 7)[1]
    b = cf.forecast_samples(list(curve), "min", 7)[1]
    assert np.array_equal(a, b)


def test_a_higher_is_better_curve_is_the_mirror_of_its_negation():
    acc = _noisy(0.9 - 0.5 / np.arange(1, 31), 0.01, 4)
    up = cf.forecast_samples(acc, "max", 5)[1]
    down = cf.forecast_samples([-v for v in acc], "min", 5)[1]
    assert np.array_equal(up, -down)
    assert cf.chance_of_improvement(acc, "max", 5, 0.01) == cf.chance_of_improvement(
        [-v for v in acc], "min", 5, 0.01
    )


def test_a_larger_min_delta_never_raises_the_chance():
    curve = _noisy(0.3 + 1.0 / np.arange(1, 31), 0.01, 5)
    chances = [cf.chance_of_improvement(curve, "min", 10, d) for d in (0.0, 0.001, 0.01, 0.05, 1.0)]
    assert chances == sorted(chances, reverse=True)
    assert chances[-1] == 0.0


def test_missing_and_non_finite_values_are_left_out_and_too_few_give_no_forecast():
    assert cf.forecast_samples([1.0, None, 0.8, math.nan, 0.7, math.inf, 0.65, 0.6], "min", 3) is None
    values = [1.0, None, 0.8, math.nan, 0.7, math.inf, 0.65, 0.6, 0.58, 0.57]
    future, draws = cf.forecast_samples(values, "min", 3)
    assert future.tolist() == [11, 12, 13]  # counted from the last epoch, logged or not
    assert np.isfinite(draws).all()
    assert cf.chance_of_improvement(values, "min", 3, 0.0) is not None


def test_values_further_apart_than_a_float_holds_give_no_forecast_rather_than_nan():
    assert cf.forecast_samples([1e308, -1e308] * 6, "min", 3) is None
    assert cf.chance_of_improvement([1e308, -1e308] * 6, "min", 3, 0.0) is None
    assert cf.chance_of_improvement([1e300 * (1 + 1 / x) for x in range(1, 13)], "min", 3, 0.0) is not None


def test_a_constant_curve_has_a_forecast():
    future, draws = cf.forecast_samples([0.5] * 12, "min", 4)
    assert np.isfinite(draws).all()
    assert cf.chance_of_improvement([0.5] * 12, "min", 4, 0.0) <= 0.5


@pytest.mark.parametrize("epochs", [250, 5000])
def test_a_long_curve_is_thinned_to_a_bounded_fit(epochs):
    curve = _noisy(0.3 + 1.0 / np.sqrt(np.arange(1, epochs + 1)), 0.01, 6)
    future, draws = cf.forecast_samples(curve, "min", 5)
    assert future.tolist() == list(range(epochs + 1, epochs + 6))
    # The band stays near where the curve is: about 0.3 + 1/sqrt(epochs).
    median = np.median(draws, axis=1)
    assert np.all(np.abs(median - (0.3 + 1 / math.sqrt(epochs))) < 0.05)


def test_the_module_imports_only_numpy_and_math_so_the_script_can_carry_it():
    tree = ast.parse(Path(cf.__file__).read_text())
    imported = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"math", "numpy"}
