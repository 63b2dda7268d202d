"""What density each layer gets (DESIGN §4 "What is sparse").

Every layer receives an exact integer number of active weights, and the counts add up to
`round((1 - sparsity) · Σ numel)` over the non-exempt layers, so the measured sparsity equals the
configured one instead of drifting by per-layer rounding. Exempt layers (fnmatch patterns from
`method.exempt`) are left out of the result: they are dense and carry no mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatch

Shape = tuple[int, ...]
DISTRIBUTIONS = ("uniform", "erk")


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def split_exempt(names: Iterable[str], exempt: Iterable[str]) -> tuple[list[str], list[str]]:
    """(sparsified, exempt) names. A pattern that matches nothing is an error: a typo would
    otherwise silently leave a layer sparse that the config meant to keep dense."""
    names, patterns = list(names), list(exempt)
    for pat in patterns:
        if not any(fnmatch(n, pat) for n in names):
            raise ValueError(f"method.exempt pattern {pat!r} matches no sparsifiable parameter; "
                             f"candidates: {names}")
    hit = [n for n in names if any(fnmatch(n, p) for p in patterns)]
    return [n for n in names if n not in hit], hit


def _allocate(ideal: Mapping[str, float], caps: Mapping[str, int], total: int) -> dict[str, int]:
    """Integer counts ≤ caps summing to `total`, each the floor or ceil of its ideal share
    (largest-remainder rounding), so no layer is off by more than one weight."""
    counts = {k: min(caps[k], max(0, math.floor(v))) for k, v in ideal.items()}
    by_remainder = sorted(ideal, key=lambda k: ideal[k] - math.floor(ideal[k]), reverse=True)
    deficit = total - sum(counts.values())
    while deficit > 0:  # normally one pass; a loop guards against float error in `ideal`
        grew = False
        for k in by_remainder:
            if deficit and counts[k] < caps[k]:
                counts[k] += 1
                deficit -= 1
                grew = True
        if not grew:
            raise ValueError(f"cannot place {total} active weights in {sum(caps.values())}")
    for k in reversed(by_remainder):
        if deficit < 0 and counts[k] > 0:
            counts[k] -= 1
            deficit += 1
    return counts


def _uniform_ideal(shapes: Mapping[str, Shape], density: float) -> dict[str, float]:
    return {k: density * _numel(s) for k, s in shapes.items()}


def _erk_score(shape: Shape) -> float:
    """Erdős–Rényi score (fan_in + fan_out)/(fan_in · fan_out) of one weight matrix.
    Leading dims of a stacked [n_agents, out, in] tensor are a batch of independent matrices,
    so a stacked layer gets the density each agent's matrix would get as its own layer."""
    if len(shape) < 2:
        raise ValueError(f"ERK needs a weight matrix, got shape {shape}")
    out_dim, in_dim = shape[-2], shape[-1]
    return (out_dim + in_dim) / (out_dim * in_dim)


def _erk_ideal(shapes: Mapping[str, Shape], density: float) -> dict[str, float]:
    """Evci et al. (2020): density_l = ε·score_l, ε set so the active total matches; layers whose
    density would exceed 1 are made dense one at a time and ε is solved again."""
    numel = {k: _numel(s) for k, s in shapes.items()}
    score = {k: _erk_score(s) for k, s in shapes.items()}
    budget = density * sum(numel.values())
    dense: set[str] = set()
    while True:
        free = [k for k in shapes if k not in dense]
        if not free:
            break
        eps = (budget - sum(numel[k] for k in dense)) / sum(score[k] * numel[k] for k in free)
        worst = max(free, key=lambda k: score[k])
        if eps * score[worst] <= 1.0:
            break
        dense.add(worst)
    return {k: float(numel[k]) if k in dense else eps * score[k] * numel[k] for k in shapes}


_IDEAL: dict[str, Callable[[Mapping[str, Shape], float], dict[str, float]]] = {
    "uniform": _uniform_ideal,
    "erk": _erk_ideal,
}


def layer_active_counts(shapes: Mapping[str, Shape], sparsity: float, kind: str = "uniform",
                        exempt: Iterable[str] = ()) -> dict[str, int]:
    """Exact number of active weights per non-exempt layer; Σ = round((1-s)·Σ numel)."""
    if kind not in _IDEAL:
        raise ValueError(f"method.distribution must be one of {DISTRIBUTIONS}, got {kind!r}")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    names, _ = split_exempt(shapes, exempt)
    kept = {k: tuple(shapes[k]) for k in names}
    if not kept:
        return {}
    caps = {k: _numel(s) for k, s in kept.items()}
    total = round((1.0 - sparsity) * sum(caps.values()))
    return _allocate(_IDEAL[kind](kept, 1.0 - sparsity), caps, total)


def layer_densities(shapes: Mapping[str, Shape], sparsity: float, kind: str = "uniform",
                    exempt: Iterable[str] = ()) -> dict[str, float]:
    """Density per non-exempt layer (active count / numel, see `layer_active_counts`)."""
    counts = layer_active_counts(shapes, sparsity, kind, exempt)
    return {k: c / _numel(tuple(shapes[k])) for k, c in counts.items()}
