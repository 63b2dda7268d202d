"""Glue between a learner and the sparse engine (`mast.sparse`): owns the mask set, decides when
the topology evolves, and keeps masked weights at zero in the online and target networks."""

from __future__ import annotations

import torch
from torch import nn

from mast.sparse import MaskSet, TopologySchedule, TopologyUpdater

GROW_RULE = {"set": "random", "rigl": "gradient"}


class SparsityController:
    def __init__(self, nets: nn.Module, method, sparsity: float, t_max: int, seed: int):
        self.gen = torch.Generator().manual_seed(seed + 7919)
        self.masks = MaskSet.random(nets, sparsity, distribution=method.distribution,
                                    exempt=tuple(method.exempt), generator=self.gen)
        self.masks.apply_(nets)
        grow = GROW_RULE.get(method.topology)
        self.updater = TopologyUpdater(grow=grow) if grow else None
        self.schedule = TopologySchedule(update_interval_updates=method.update_interval_episodes,
                                         init_drop_fraction=method.init_drop_fraction,
                                         end_t_env=int(method.end_fraction * t_max))
        self.last_update_stats: dict = {}

    def before_step(self, nets: nn.Module, optimizer: torch.optim.Optimizer, n_updates: int,
                    t_env: int) -> None:
        """Called after backward: evolve the topology with the dense gradient when due, then mask
        the gradients so the optimiser never moves a pruned weight."""
        if self.updater is not None and n_updates > 0 and self.schedule.should_update(n_updates, t_env):
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
