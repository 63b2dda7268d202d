"""Statistics over seeds: mean/std, interquartile mean (IQM) and percentile-bootstrap CIs."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from mast.envs import mamujoco_maps

STATS = ("mean", "iqm")
N_BOOT = 2000


def iqm(x: Sequence[float], axis: int = -1) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end).

    Uses ``scipy.stats.trim_mean(x, 0.25)``, which cuts ``int(0.25 * n)`` values from each end
    (so for n < 4 this is the plain mean).
    """
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        return math.nan
    return stats.trim_mean(a, 0.25, axis=axis)


def point(x: Sequence[float], stat: str = "mean") -> float:
    a = np.asarray(x, dtype=float)
    a = a[~np.isnan(a)]
    if a.size == 0:
        return math.nan
    if stat == "mean":
        return float(a.mean())
    if stat == "iqm":
        return float(iqm(a))
    raise ValueError(f"unknown statistic {stat!r}; allowed: {', '.join(STATS)}")


def std(x: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1); NaN for fewer than two values."""
    a = np.asarray(x, dtype=float)
    a = a[~np.isnan(a)]
    return float(a.std(ddof=1)) if a.size > 1 else math.nan


def _resample_stat(a: np.ndarray, stat: str, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    samples = a[idx]
    return samples.mean(axis=1) if stat == "mean" else iqm(samples, axis=1)


def bootstrap(
    groups: Sequence[Sequence[float]],
    stat: str = "iqm",
    combine: Callable[..., np.ndarray] | None = None,
    n_boot: int = N_BOOT,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``combine(stat(g1*), stat(g2*), ...)``.

    Each group (e.g. the seeds of a method and the seeds of its dense baseline) is resampled
    independently with replacement ``n_boot`` times; ``combine`` defaults to the identity of a
    single group.  Deterministic for a given ``seed``.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups]
    arrays = [a[~np.isnan(a)] for a in arrays]
    if any(a.size == 0 for a in arrays):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    reps = [_resample_stat(a, stat, n_boot, rng) for a in arrays]
    if combine is None:
        if len(reps) != 1:
            raise ValueError("combine is required for more than one group")
        vals = reps[0]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = combine(*reps)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(vals, [tail, 100.0 - tail])
    return float(lo), float(hi)


def normalized(
    values: Sequence[float], dense: Sequence[float], stat: str = "mean", ci: bool = False,
    n_boot: int = N_BOOT, seed: int = 0, baseline: float = 0.0, bar: float | None = None,
) -> tuple[float, float, float]:
    """100 * (stat(values) − baseline) / (stat(dense) − baseline), with an optional bootstrap CI
    (NaN bounds otherwise). `baseline` is a random policy's score: 0 for win rates, the random
    return for return-based rows (`random_score`), whose returns may be negative. NaN when dense
    does not beat the baseline, or `bar` where given (`learning_bar`): a percentage of a
    non-positive or negligible improvement means nothing (a method further below random than
    dense would read several hundred percent)."""
    num, den = point(values, stat), point(dense, stat)
    if math.isnan(num) or math.isnan(den) or den <= (baseline if bar is None else bar):
        return math.nan, math.nan, math.nan
    val = 100.0 * (num - baseline) / (den - baseline)
    if not ci:
        return val, math.nan, math.nan
    lo, hi = bootstrap([values, dense], stat,
                       lambda a, b: 100.0 * (a - baseline) / (b - baseline), n_boot, seed=seed)
    return val, lo, hi


def random_score(map_name: str) -> float:
    """A random policy's score on a map: 0 (win rate) unless a return-based map lists one."""
    return mamujoco_maps.RANDOM_RETURNS.get(map_name, 0.0)


def learning_bar(map_name: str) -> float:
    """The score a dense baseline must beat to be a denominator: 0 on win-rate maps, a random
    policy's mean + LEARNING_BAR_SIGMAS of its per-episode std on return-based ones."""
    std = mamujoco_maps.RANDOM_RETURN_STDS.get(map_name, 0.0)
    return random_score(map_name) + mamujoco_maps.LEARNING_BAR_SIGMAS * std


def percent_scale(map_name: str) -> float:
    """100 for win rates (shown in %), 1 for return-based maps (shown in return units)."""
    return 1.0 if mamujoco_maps.is_map(map_name) else 100.0


def raw(values: Sequence[float], stat: str = "mean", ci: bool = False, n_boot: int = N_BOOT,
        seed: int = 0) -> tuple[float, float, float]:
    """100 * stat(values) with a CI (``ci``) or NaN bounds."""
    val = point(values, stat)
    if math.isnan(val):
        return math.nan, math.nan, math.nan
    if not ci:
        return 100.0 * val, math.nan, math.nan
    lo, hi = bootstrap([values], stat, n_boot=n_boot, seed=seed)
    return 100.0 * val, 100.0 * lo, 100.0 * hi
