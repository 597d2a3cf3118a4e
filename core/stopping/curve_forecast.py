"""Where a learning curve is going: an ensemble of parametric curve families fitted to the epochs so far.

As in Domhan, Springenberg and Hutter (IJCAI 2015), the curve is explained by a weighted ensemble of
families, each saturating the way learning curves do; unlike them, which modelled accuracy rising to a
plateau, some families here also carry a linear term, so that a validation loss turning back up
(overfitting) is a shape the ensemble knows. Each family has one shape parameter, taken on a grid, and
its other parameters enter linearly, so every fit is an exact least-squares solve (no optimizer to
converge or to fail, and the same answer on every call):

==================  ======================================
power               c + a * x**-b
power + linear      c + a * x**-b + d * x/s
exponential         c + a * exp(-b * x/s)
exp + linear        c + a * exp(-b * x/s) + d * x/s
hyperbolic          c + a / (1 + x/(b*s))
logarithmic         c + a * log(x)
log + linear        c + a * log(x) + d * x/s
==================  ======================================

``x`` is the 1-based epoch and ``s`` the last epoch fitted. The fit reads the latest half of the
values (at least ``MIN_FIT``): what comes next depends on where the curve is now, not on its first
plunge. Every (family, shape) pair is one member of the ensemble, weighted by how well it forecast
the latest quarter of those points when fitted without them (the family's prior split evenly over
its grid), and the weights are tempered by the residuals' autocorrelation (``_inflation``). The
forecast is a Monte Carlo sample of what the next epochs will *show*: a member drawn by weight, its
linear parameters drawn from their Gaussian posterior (widened by the same factor), and the noise its
residuals have. From those samples come the band (quantiles per future epoch) and the chance that
some epoch of the next ``horizon`` beats the best so far by more than ``min_delta``, which is how
EarlyStopping itself counts an improvement. How well this is calibrated, measured on 24 recorded
full curves, is in bench/RESULTS.md (bench/forecast_calibration.py).

Missing, NaN and infinite values are left out of the fit. Past ``MAX_POINTS`` values the oldest
fitted ones are thinned evenly (the latest ``MAX_POINTS // 2`` are all kept), so the cost of one
forecast is bounded. The random draws are seeded by the number of epochs, so the same curve always
gives the same forecast.

This module imports nothing but numpy and math: the exported script embeds it as it is, so that the
script's rule decides with the very same code as the app's.

>>> import math
>>> falling = [0.3 + 1.0 / x for x in range(1, 21)]       # still falling: improvement is likely
>>> chance_of_improvement(falling, "min", horizon=5, min_delta=0.0) > 0.9
True
>>> flat = [1.0, 0.5, 0.4, 0.38] + [0.37 + 0.001 * (i % 2) for i in range(30)]
>>> chance_of_improvement(flat, "min", horizon=3, min_delta=0.05)    # 0.05 below the best: hopeless
0.0
"""

import math

import numpy as np

MIN_POINTS = 6  # fewer finite values: no forecast (3 coefficients, a shape, the noise)
MAX_POINTS = 200  # more: the oldest are thinned, the cost of a fit stays bounded
SAMPLES = 512  # Monte Carlo draws per forecast
FIT_SHARE = 0.5  # the fit reads the latest half of the values (at least MIN_FIT)
MIN_FIT = 10
MAX_RHO = 0.95  # the residuals' lag-1 autocorrelation taken into account, at most

_GRID = 24  # shape values per family

# family -> (the grid of its shape b, or None; whether it has the linear term d * x/s)
FAMILIES = {
    "power": (np.geomspace(0.05, 4.0, _GRID), False),
    "power + linear": (np.geomspace(0.05, 4.0, _GRID), True),
    "exponential": (np.geomspace(0.1, 50.0, _GRID), False),
    "exp + linear": (np.geomspace(0.1, 50.0, _GRID), True),
    "hyperbolic": (np.geomspace(0.01, 10.0, _GRID), False),
    "logarithmic": (None, False),
    "log + linear": (None, True),
}


def _columns(family, x, s):
    """A family's design matrices at epochs ``x``: (grid, len(x), coefficients)."""
    grid, linear = FAMILIES[family]
    x = np.asarray(x, dtype=np.float64)
    if family.startswith("power"):
        shaped = x[None, :] ** -grid[:, None]
    elif family.startswith("exp"):
        shaped = np.exp(-grid[:, None] * (x[None, :] / s))
    elif family == "hyperbolic":
        shaped = 1.0 / (1.0 + x[None, :] / (grid[:, None] * s))
    else:
        shaped = np.log(x)[None, :]
    cols = [np.ones_like(shaped), shaped]
    if linear:
        cols.append(np.broadcast_to(x[None, :] / s, shaped.shape))
    return np.stack(cols, axis=-1)


def _points(values):
    """The (1-based epoch, value) pairs the fit reads: the latest finite values, the
    oldest of them thinned past MAX_POINTS."""
    x = [i + 1 for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    x = x[-max(MIN_FIT, math.ceil(FIT_SHARE * len(x))) :]
    y = [float(values[i - 1]) for i in x]
    if len(x) > MAX_POINTS:
        keep = MAX_POINTS // 2
        old = np.linspace(0, len(x) - keep - 1, MAX_POINTS - keep).round().astype(int)
        picked = sorted(set(old.tolist())) + list(range(len(x) - keep, len(x)))
        x, y = [x[i] for i in picked], [y[i] for i in picked]
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _members(x, u, s):
    """Every (family, shape) fit: log weight, pseudo-inverse, coefficients, noise.

    The weight is how well the member, fitted without the latest quarter of the points,
    forecast them: it is judged on what it is used for, extrapolation. (Weighted by
    the in-sample fit, the BIC, shapes that bend back up where the curve did not won:
    the 80% band held 55% of what followed, against 77%; bench/RESULTS.md.)
    """
    n = len(x)
    held = max(3, n // 4)
    out = []
    for family in FAMILIES:
        design = _columns(family, x, s)
        pinv = np.linalg.pinv(design)  # (grid, k, n)
        beta = pinv @ u  # (grid, k)
        resid = u[None, :] - np.einsum("gnk,gk->gn", design, beta)
        k = design.shape[-1]
        sigma = np.sqrt((resid**2).sum(axis=1) / (n - k))
        early = np.linalg.pinv(design[:, :-held, :]) @ u[:-held]
        guess = np.einsum("gnk,gk->gn", design[:, -held:, :], early)
        mse = np.maximum(((u[None, -held:] - guess) ** 2).mean(axis=1), 1e-12)
        for g in range(design.shape[0]):
            log_weight = -0.5 * held * math.log(mse[g]) - math.log(design.shape[0])
            out.append((log_weight, family, g, pinv[g], beta[g], sigma[g]))
    return out


def _inflation(members, log_w, x, u, s):
    """How much less the points tell than if they were independent: (1 + rho) /
    (1 - rho), rho the lag-1 autocorrelation of the leading member's residuals. The
    weights are tempered and the coefficients' spread widened by it (without it the
    80% band held 55-61% of what followed)."""
    _, family, g, _, beta, _ = members[int(log_w.argmax())]
    resid = u - _columns(family, x, s)[g] @ beta
    if len(resid) < 4 or resid[:-1].std() == 0 or resid[1:].std() == 0:
        return 1.0
    rho = float(np.corrcoef(resid[:-1], resid[1:])[0, 1])
    rho = min(max(rho, 0.0), MAX_RHO) if math.isfinite(rho) else 0.0
    return (1 + rho) / (1 - rho)


def forecast_samples(values, mode, horizon):
    """Samples of the next ``horizon`` epochs' values: (their 1-based epochs, an array
    (horizon, SAMPLES)), or None when fewer than MIN_POINTS values are finite (or they
    span more than a float holds).

    ``values``: one per epoch so far (None where none was logged); ``mode``: "min" or
    "max".
    """
    x, y = _points(values)
    if len(x) < MIN_POINTS:
        return None
    z = y if mode == "min" else -y
    low, span = float(z.min()), float(z.max() / 2 - z.min() / 2) * 2
    if not math.isfinite(span):
        return None  # values apart by more than a float can hold
    span = span if span > 0 else 1.0
    u = (z - low) / span
    s = float(x[-1])
    members = _members(x, u, s)
    log_w = np.array([m[0] for m in members])
    inflate = _inflation(members, log_w, x, u, s)
    weights = np.exp((log_w - log_w.max()) / inflate)
    weights /= weights.sum()
    rng = np.random.default_rng(len(values))
    picks = rng.choice(len(members), size=SAMPLES, p=weights)
    future = np.arange(len(values) + 1, len(values) + horizon + 1, dtype=np.float64)
    draws = np.empty((horizon, SAMPLES))
    designs = {}  # each family's future design matrices, made once
    start = 0
    for index, count in zip(*np.unique(picks, return_counts=True)):
        _, family, g, pinv, beta, sigma = members[index]
        if family not in designs:
            designs[family] = _columns(family, future, s)
        eigval, eigvec = np.linalg.eigh(pinv @ pinv.T)
        root = eigvec * np.sqrt(np.clip(eigval, 0.0, None)) * math.sqrt(inflate)
        coefs = beta[:, None] + sigma * (root @ rng.standard_normal((len(beta), count)))
        noise = sigma * rng.standard_normal((horizon, count))
        draws[:, start : start + count] = designs[family][g] @ coefs + noise
        start += count
    z_draws = draws * span + low
    return future, (z_draws if mode == "min" else -z_draws)


def chance_of_improvement(values, mode, horizon, min_delta):
    """The chance that one of the next ``horizon`` epochs beats the best so far by more
    than ``min_delta`` (as EarlyStopping counts an improvement), or None without a
    forecast."""
    forecast = forecast_samples(values, mode, horizon)
    if forecast is None:
        return None
    return share_beating_best(forecast[1], values, mode, min_delta)


def share_beating_best(draws, values, mode, min_delta):
    """The share of sampled futures (``draws``: one column each) in which some epoch
    beats the best of ``values`` by more than ``min_delta``."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if mode == "min":
        beaten = draws.min(axis=0) < min(finite) - abs(min_delta)
    else:
        beaten = draws.max(axis=0) > max(finite) + abs(min_delta)
    return float(beaten.mean())
