"""Mixers: Q_tot = f_s(Q_1..Q_n). VDN sums; QMIX mixes monotonically with hypernetworks; the
WQMIX unrestricted mixer is a plain feed-forward net on [state, utilities]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mast.registry import MIXERS


@MIXERS.register("vdn")
class VDNMixer(nn.Module):
    def __init__(self, n_agents: int, state_dim: int, **_: int):
        super().__init__()

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """qs [..., n_agents], states [..., state_dim] → [...]."""
        return qs.sum(-1)


@MIXERS.register("qmix")
class QMixer(nn.Module):
    """PyMARL QMIX with 2-layer hypernetworks (state→64→embed·n, state→64→embed)."""

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_dim: int = 64):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed_dim
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hypernet_dim), nn.ReLU(),
                                      nn.Linear(hypernet_dim, embed_dim * n_agents))
        self.hyper_w_final = nn.Sequential(nn.Linear(state_dim, hypernet_dim), nn.ReLU(),
                                           nn.Linear(hypernet_dim, embed_dim))
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.V = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """qs [..., n_agents], states [..., state_dim] → Q_tot [...]; the leading dims broadcast,
        so K candidate joint actions of one state (qs [..., K, n], states [..., 1, S]) run the
        hypernetworks once. Weighted sums instead of PyMARL's bmm of 1×n by n×E matrices."""
        w1 = torch.abs(self.hyper_w1(states)).unflatten(-1, (self.n_agents, self.embed))
        hidden = F.elu((qs.unsqueeze(-1) * w1).sum(-2) + self.hyper_b1(states))  # [..., E]
        w_final = torch.abs(self.hyper_w_final(states))
        return (hidden * w_final).sum(-1) + self.V(states).squeeze(-1)


def mix_where(mixer: nn.Module, qs: torch.Tensor, states: torch.Tensor,
              valid: torch.Tensor) -> torch.Tensor:
    """mixer(qs, states) computed only at the valid (episode, step) pairs, 0 elsewhere.

    qs [B, T, ..., n], states [B, T, ..., S] (leading dims broadcast as the mixer allows),
    valid [B, T] bool → [B, T, ...]. Padded steps cost nothing and never reach the loss."""
    index = valid.reshape(-1).nonzero().squeeze(1)

    def pick(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(0, 1).index_select(0, index)

    out = mixer(pick(qs), pick(states))
    full = out.new_zeros(valid.numel(), *out.shape[1:]).index_copy(0, index, out)
    return full.view(*valid.shape, *out.shape[1:])


class CentralMixer(nn.Module):
    """WQMIX's unrestricted Q*: [state, n utilities] → 256 → 256 → 256 → 1, plus V(s): 256 → 1."""

    def __init__(self, n_agents: int, state_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim + n_agents, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1))
        self.V = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        x = torch.cat([states, qs], dim=-1)
        return (self.net(x) + self.V(states)).squeeze(-1)


def mixer_slopes(mixer: nn.Module, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """∂Q_tot/∂Q_i of `mixer` at qs [R, n] and states [R, S] → [R, n] (≥ 0 for QMIX's monotonic
    mixer, 1 for VDN): how many units of Q_tot one unit of agent i's utility is worth there."""
    with torch.enable_grad():
        q = qs.detach().requires_grad_(True)
        (k,) = torch.autograd.grad(mixer(q, states).sum(), q)
    return k
