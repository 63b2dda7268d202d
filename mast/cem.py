"""Cross-entropy method (CEM) for approximately greedy continuous actions (COMIX, FACMAC paper).

Per agent and independently (each agent maximises its own utility Q_i, which maximises a
monotonic mixer's Q_tot): sample K actions from a diagonal Gaussian in pre-tanh space (μ 0, σ 1),
squash with tanh into [-1, 1], score them, refit μ and σ to the top `elites`, repeat
`iterations` times; the greedy action is the best sample of the last iteration. Settings of
FACMAC's `cem_sampling`: K 64, elites 6, 2 iterations — K × iterations forward passes per agent
per step, which the accounting counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CEMResult:
    """best [..., n, U] (in [-1, 1], padded dims 0), best_value [..., n], and the last
    iteration's candidates [K, ..., n, U] with their values [K, ..., n] (the support over which
    COMIX applies its target operator)."""

    best: torch.Tensor
    best_value: torch.Tensor
    candidates: torch.Tensor
    values: torch.Tensor


def standard_normal(shape: tuple[int, ...], gen: torch.Generator | None,
                    device: torch.device) -> torch.Tensor:
    """Standard normal draws from `gen` (a cpu generator, moved to `device`) or, with None,
    from the device's default generator."""
    if gen is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=gen).to(device)


def cem_maximise(q_fn: Callable[[torch.Tensor], torch.Tensor], dim_mask: torch.Tensor,
                 samples: int, elites: int, iterations: int,
                 gen: torch.Generator | None = None) -> CEMResult:
    """Maximise q_fn per agent over actions in [-1, 1]^U.

    q_fn: actions [K, ..., n, U] → values [K, ..., n]; dim_mask [..., n, U] bool (real action
    dims; padded dims are held at 0). Returns a `CEMResult`. Random draws come from `gen`."""
    mask = dim_mask.to(torch.float32)
    mu = torch.zeros(dim_mask.shape, device=dim_mask.device)
    std = torch.ones_like(mu)
    for _ in range(iterations):
        raw = mu + std * standard_normal((samples, *mu.shape), gen, mu.device)  # [K, ..., n, U]
        cand = torch.tanh(raw) * mask
        values = q_fn(cand)  # [K, ..., n]
        top = values.topk(elites, dim=0).indices  # [E, ..., n]
        chosen = raw.gather(0, top.unsqueeze(-1).expand(*top.shape, raw.shape[-1]))
        mu, std = chosen.mean(0), chosen.std(0)
    best_value, idx = values.max(0)
    best = cand.gather(0, idx[None, ..., None].expand(1, *cand.shape[1:]))[0]
    return CEMResult(best, best_value, cand, values)
