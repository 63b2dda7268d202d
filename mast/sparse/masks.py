"""What is sparse: one boolean mask per sparsified parameter, keyed by `named_parameters()` name.

Sparsified = every weight tensor with dim ≥ 2 (Linear [out, in], GRU `weight_ih`/`weight_hh` with
all three gates, stacked per-agent [n_agents, out, in]) that is not a bias and not exempt. Biases
stay dense, including stacked per-agent biases [n_agents, out]. Because the online and target
networks share parameter names, one MaskSet applies to both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from mast.sparse.distribution import layer_active_counts


def is_sparsifiable(name: str, param: torch.Tensor) -> bool:
    """Weight matrices only: dim ≥ 2 and not a (possibly stacked) bias."""
    return param.dim() >= 2 and not name.rsplit(".", 1)[-1].startswith("bias")


def sparsifiable_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in module.named_parameters() if is_sparsifiable(n, p)}


class MaskSet:
    """Masks (True = active connection) plus the operations that keep weights consistent."""

    def __init__(self, masks: Mapping[str, torch.Tensor]):
        for name, m in masks.items():
            if m.dtype != torch.bool:
                raise TypeError(f"mask {name!r} must be bool, got {m.dtype}")
        self.masks: dict[str, torch.Tensor] = dict(masks)

    @classmethod
    def random(cls, module: nn.Module, sparsity: float, distribution: str = "uniform",
               exempt: Iterable[str] = (), generator: torch.Generator | None = None) -> MaskSet:
        """Uniformly random masks with the exact per-layer active counts of `distribution`.
        A stacked per-agent tensor is drawn as one layer, so agents get unequal densities."""
        params = dict(module.named_parameters())
        counts = layer_active_counts(sparsifiable_shapes(module), sparsity, distribution, exempt)
        masks = {}
        for name, count in counts.items():
            p = params[name]
            flat = torch.zeros(p.numel(), dtype=torch.bool)
            flat[torch.randperm(p.numel(), generator=generator)[:count]] = True
            masks[name] = flat.view(p.shape).to(p.device)
        return cls(masks)

    def _pairs(self, module: nn.Module) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        params = dict(module.named_parameters())
        missing = [n for n in self.masks if n not in params]
        if missing:
            raise KeyError(f"masked parameters absent from module: {missing}")
        return ((params[n], m) for n, m in self.masks.items())

    @torch.no_grad()
    def apply_(self, module: nn.Module) -> None:
        """Zero pruned weights in place (online or target copy: names match)."""
        for p, m in self._pairs(module):
            p.masked_fill_(~m, 0.0)

    @torch.no_grad()
    def mask_grads_(self, module: nn.Module) -> None:
        """Zero gradients of pruned weights so the optimiser step cannot revive them (with
        decoupled weight decay or momentum they could still move: call `apply_` after the step)."""
        for p, m in self._pairs(module):
            if p.grad is not None:
                p.grad.masked_fill_(~m, 0.0)

    def active_count(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks.values()))

    def density(self) -> float:
        """Overall density over the sparsified tensors (exempt tensors and biases excluded)."""
        total = sum(m.numel() for m in self.masks.values())
        return self.active_count() / total if total else 1.0

    def layer_densities(self) -> dict[str, float]:
        return {n: m.float().mean().item() for n, m in self.masks.items()}

    def per_agent_densities(self, name: str) -> list[float]:
        """Density of each agent's slice of a stacked [n_agents, out, in] mask (paper Fig. 12)."""
        m = self.masks[name]
        if m.dim() < 3:
            raise ValueError(f"{name!r} has shape {tuple(m.shape)}, not a stacked per-agent tensor")
        return m.flatten(1).float().mean(1).tolist()

    def change_fraction(self, other: MaskSet) -> float:
        """Fraction of active connections that differ between two mask sets: |A △ B| / (|A|+|B|),
        which with equal active counts is the fraction of connections swapped
        (`sparse/mask_change`)."""
        if self.masks.keys() != other.masks.keys():
            raise KeyError("mask sets cover different parameters")
        diff = sum(int((a ^ other.masks[n].to(a.device)).sum()) for n, a in self.masks.items())
        active = self.active_count() + other.active_count()
        return diff / active if active else 0.0

    def clone(self) -> MaskSet:
        return MaskSet({n: m.clone() for n, m in self.masks.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors only, so checkpoints load with `torch.load(weights_only=True)`."""
        return {n: m.detach().cpu().clone() for n, m in self.masks.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if state.keys() != self.masks.keys():
            raise KeyError(f"mask names differ: saved {sorted(state)} vs {sorted(self.masks)}")
        for n, m in self.masks.items():
            if tuple(state[n].shape) != tuple(m.shape):
                raise ValueError(f"mask {n!r}: saved shape {tuple(state[n].shape)}, "
                                 f"expected {tuple(m.shape)}")
            m.copy_(state[n].to(device=m.device, dtype=torch.bool))  # in place, as the updater

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Bool arrays keyed by layer name, for `np.savez_compressed` snapshots."""
        return {n: m.detach().cpu().numpy().astype(bool) for n, m in self.masks.items()}

    def to(self, device: torch.device | str) -> MaskSet:
        self.masks = {n: m.to(device) for n, m in self.masks.items()}
        return self
