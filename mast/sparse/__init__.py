"""Sparse engine, split into what (masks, distribution), how (updaters) and when (schedule)."""

from mast.sparse.distribution import DISTRIBUTIONS, layer_active_counts, layer_densities
from mast.sparse.masks import MaskSet, is_sparsifiable, sparsifiable_shapes
from mast.sparse.schedule import TopologySchedule
from mast.sparse.tiny import solve_width_scale, target_param_count
from mast.sparse.updaters import TopologyUpdater, drop_and_grow, reset_optimizer_state_

__all__ = [
    "DISTRIBUTIONS",
    "MaskSet",
    "TopologySchedule",
    "TopologyUpdater",
    "drop_and_grow",
    "is_sparsifiable",
    "layer_active_counts",
    "layer_densities",
    "reset_optimizer_state_",
    "solve_width_scale",
    "sparsifiable_shapes",
    "target_param_count",
]
