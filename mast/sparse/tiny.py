"""Tiny baseline: a dense network whose hidden widths are shrunk by one factor c so that its
parameter count matches the sparse model's (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from mast.sparse.distribution import layer_active_counts
from mast.sparse.masks import is_sparsifiable, sparsifiable_shapes


def target_param_count(module: nn.Module, sparsity: float, exempt: Iterable[str] = ()) -> int:
    """Parameters a sparse model of this sparsity holds: active weights + every dense tensor
    (biases, exempt weights). The total is the same for uniform and ERK (exact budgets)."""
    active = layer_active_counts(sparsifiable_shapes(module), sparsity, "uniform", exempt)
    dense = sum(p.numel() for n, p in module.named_parameters()
                if not is_sparsifiable(n, p) or n not in active)
    return sum(active.values()) + dense


def solve_width_scale(count_params: Callable[[float], int], target_params: int, lo: float = 0.01,
                      hi: float = 1.0, tol: float = 1e-6) -> float:
    """Width scale c in [lo, hi] whose parameter count is closest to `target_params`, by
    bisection; `count_params` must be non-decreasing in c (the caller builds widths
    max(1, round(c·w)) and counts). Integer widths make the count a step function whose steps
    can exceed 5% on small nets, so the bracketing step above the budget is taken when it is
    closer; on a tie the largest c within budget wins. Outside [lo, hi] the nearer end is
    returned."""
    if count_params(hi) <= target_params:
        return hi
    if count_params(lo) > target_params:
        return lo
    while hi - lo > tol:  # invariant: count(lo) ≤ target < count(hi)
        mid = (lo + hi) / 2
        if count_params(mid) <= target_params:
            lo = mid
        else:
            hi = mid
    below, above = count_params(lo), count_params(hi)
    return hi if above - target_params < target_params - below else lo
