"""How the topology evolves: one drop-and-grow routine; SET and RigL differ only in the grow score
(uniform random vs |dense gradient|), as in paper Alg. 1 and google-research/rigl."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from mast.sparse.masks import MaskSet

GROW_SCORES = ("gradient", "random")


def drop_and_grow(weight: torch.Tensor, mask: torch.Tensor, grow_score: torch.Tensor,
                  n_swap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the `n_swap` active weights of smallest |w|, grow the `n_swap` positions of largest
    `grow_score` among those inactive *before* the drop (so a dropped weight cannot come straight
    back and the two sets are disjoint). Active count unchanged. n_swap is clipped to what both
    sets can supply. All tensors share one shape; returns (new_mask, grown_mask)."""
    flat_mask = mask.reshape(-1)
    n_active = int(flat_mask.sum())
    n = max(0, min(int(n_swap), n_active, flat_mask.numel() - n_active))
    new_mask, grown = mask.clone(), torch.zeros_like(mask)
    if n == 0:
        return new_mask, grown
    inf = torch.tensor(float("inf"), device=weight.device, dtype=weight.dtype)
    magnitude = torch.where(flat_mask, weight.detach().reshape(-1).abs(), inf)
    drop_idx = torch.topk(magnitude, n, largest=False).indices
    score = grow_score.detach().reshape(-1).to(weight.device, torch.float32)
    score = torch.where(flat_mask, torch.tensor(float("-inf"), device=weight.device), score)
    grow_idx = torch.topk(score, n, largest=True).indices
    new_mask.view(-1)[drop_idx] = False
    new_mask.view(-1)[grow_idx] = True
    grown.view(-1)[grow_idx] = True
    return new_mask, grown


@torch.no_grad()
def reset_optimizer_state_(optimizer: torch.optim.Optimizer, param: torch.Tensor,
                           positions: torch.Tensor) -> int:
    """Zero every per-element state tensor of `param` (any tensor shaped like it: RMSprop
    square_avg/momentum_buffer/grad_avg, Adam exp_avg/exp_avg_sq/max_exp_avg_sq, SGD
    momentum_buffer, ...) at `positions`, so grown weights start with fresh statistics.
    Returns how many state tensors were reset."""
    n = 0
    for value in optimizer.state.get(param, {}).values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value.masked_fill_(positions, 0)
            n += 1
    return n


class TopologyUpdater:
    """Applies drop-and-grow to every masked layer with drop fraction ζ_t (SET or RigL)."""

    def __init__(self, grow: str, per_slice: tuple[str, ...] = ()):
        """`per_slice`: stacked layers whose leading-dim slices (agents) each keep their own
        active count (manual per-agent densities, `method.unit_density`)."""
        if grow not in GROW_SCORES:
            raise ValueError(f"grow must be one of {GROW_SCORES}, got {grow!r}")
        self.grow = grow
        self.per_slice = frozenset(per_slice)

    def _swap(self, name: str, p: torch.Tensor, mask: torch.Tensor, score: torch.Tensor,
              drop_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
        """drop_and_grow over the whole tensor, or slice by slice for `per_slice` layers."""
        if name not in self.per_slice:
            return drop_and_grow(p, mask, score, math.floor(drop_fraction * int(mask.sum())))
        pairs = [drop_and_grow(p[i], mask[i], score[i], math.floor(drop_fraction * int(mask[i].sum())))
                 for i in range(mask.shape[0])]
        return torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])

    def _score(self, name: str, weight: torch.Tensor, dense_grads: Mapping[str, torch.Tensor],
               generator: torch.Generator | None) -> torch.Tensor | None:
        if self.grow == "random":
            device = generator.device if generator is not None else "cpu"
            return torch.rand(weight.shape, generator=generator, device=device)
        grad = dense_grads.get(name)
        return None if grad is None else grad.abs()

    @torch.no_grad()
    def update(self, module: nn.Module, masks: MaskSet, dense_grads: Mapping[str, torch.Tensor],
               optimizer: torch.optim.Optimizer, drop_fraction: float,
               generator: torch.Generator | None = None) -> dict:
        """Swap k = floor(ζ·active) connections per layer, zero grown weights and their optimiser
        state, re-apply the masks. `dense_grads` must be the unmasked gradients (RigL).
        Layers without a gradient under RigL are skipped and listed in the stats."""
        params = dict(module.named_parameters())
        swapped: dict[str, int] = {}
        skipped: list[str] = []
        for name, mask in masks.masks.items():
            p = params[name]
            score = self._score(name, p, dense_grads, generator)
            if score is None:
                skipped.append(name)
                continue
            new_mask, grown = self._swap(name, p, mask, score, drop_fraction)
            assert not (grown & mask).any(), f"{name}: grown a connection that was active"
            assert int(new_mask.sum()) == int(mask.sum()), f"{name}: active count changed"
            p.masked_fill_(grown, 0.0)
            reset_optimizer_state_(optimizer, p, grown)
            p.masked_fill_(~new_mask, 0.0)
            mask.copy_(new_mask)  # in place: captured CUDA graphs read the mask's storage
            swapped[name] = int(grown.sum())
        return {"swapped": swapped, "total": sum(swapped.values()), "skipped": skipped,
                "drop_fraction": float(drop_fraction)}
