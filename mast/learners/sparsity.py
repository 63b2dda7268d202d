"""Glue between a learner and the sparse engine (`mast.sparse`): owns the mask set, decides when
the topology evolves, and keeps masked weights at zero in the online and target networks."""

from __future__ import annotations

import torch
from torch import nn

from mast.sparse import MaskSet, TopologySchedule, TopologyUpdater, layer_active_counts
from mast.sparse.masks import sparsifiable_shapes

GROW_RULE = {"set": "random", "rigl": "gradient"}


def initial_masks(nets: nn.Module, method, sparsity: float, gen: torch.Generator
                  ) -> tuple[MaskSet, tuple[str, ...]]:
    """Masks at t=0 and the layers whose per-agent slices keep their counts: a ticket
    (`method.mask_from`, exact copy of the source's final masks), manual per-unit-type densities
    (`method.unit_density`), or random masks of the configured distribution."""
    exempt = tuple(method.exempt)
    if method.mask_from not in (None, "", "random"):
        from mast.sparse.tickets import load_ticket

        shapes = sparsifiable_shapes(nets)
        kept = layer_active_counts(shapes, sparsity, method.distribution, exempt)
        arrays = load_ticket(method.mask_from, {k: shapes[k] for k in kept}, sparsity)
        device = next(nets.parameters()).device
        return MaskSet({k: torch.from_numpy(v).to(device) for k, v in arrays.items()}), ()
    if method.unit_density is not None:
        return _unit_density_masks(nets, method, sparsity, gen)
    return MaskSet.random(nets, sparsity, distribution=method.distribution, exempt=exempt,
                          generator=gen), ()


def _unit_density_masks(nets: nn.Module, method, sparsity: float, gen: torch.Generator
                        ) -> tuple[MaskSet, tuple[str, ...]]:
    from mast.sparse import unit_density as ud

    env = method._get_root().env  # the controller gets cfg.method; unit types come from the map
    types = ud.unit_types(env.name, env.map)
    dens = ud.agent_densities(dict(method.unit_density), types, sparsity)
    shapes = sparsifiable_shapes(nets)
    counts = layer_active_counts(shapes, sparsity, method.distribution, tuple(method.exempt))
    stacked = [k for k in ud.stacked_agent_layers(shapes, len(types)) if k in counts]
    others = {k: c for k, c in counts.items() if k not in stacked}
    masks = ud.random_masks({k: shapes[k] for k in counts}, dens, others, gen)
    device = next(nets.parameters()).device
    return MaskSet({k: v.to(device) for k, v in masks.items()}), tuple(stacked)


class SparsityController:
    def __init__(self, nets: nn.Module, method, sparsity: float, t_max: int, seed: int):
        self.gen = torch.Generator().manual_seed(seed + 7919)
        self.masks, per_slice = initial_masks(nets, method, sparsity, self.gen)
        self.masks.apply_(nets)
        grow = GROW_RULE.get(method.topology)
        self.updater = TopologyUpdater(grow=grow, per_slice=per_slice) if grow else None
        self.schedule = TopologySchedule(update_interval_updates=method.update_interval_episodes,
                                         init_drop_fraction=method.init_drop_fraction,
                                         end_t_env=int(method.end_fraction * t_max))
        self.last_update_stats: dict = {}

    def topology_due(self, n_updates: int, t_env: int) -> bool:
        """Whether the update numbered `n_updates` (0-based) evolves the topology."""
        return (self.updater is not None and n_updates > 0
                and self.schedule.should_update(n_updates, t_env))

    def before_step(self, nets: nn.Module, optimizer: torch.optim.Optimizer, n_updates: int,
                    t_env: int) -> None:
        """Called after backward: evolve the topology with the dense gradient when due, then mask
        the gradients so the optimiser never moves a pruned weight."""
        if self.topology_due(n_updates, t_env):
            grads = {name: p.grad for name, p in nets.named_parameters()
                     if name in self.masks.masks and p.grad is not None}
            self.last_update_stats = self.updater.update(
                nets, self.masks, grads, optimizer, self.schedule.drop_fraction(t_env), self.gen)
        self.masks.mask_grads_(nets)

    def after_step(self, nets: nn.Module) -> None:
        self.masks.apply_(nets)

    def state_dict(self) -> dict:
        return {"masks": self.masks.state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, d: dict) -> None:
        self.masks.load_state_dict(d["masks"])
        self.gen.set_state(d["gen"])
