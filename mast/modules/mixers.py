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
        """qs [..., n_agents], states [..., state_dim] → Q_tot [...]."""
        lead = qs.shape[:-1]
        s = states.reshape(-1, states.shape[-1])
        q = qs.reshape(-1, 1, self.n_agents)
        w1 = torch.abs(self.hyper_w1(s)).view(-1, self.n_agents, self.embed)
        b1 = self.hyper_b1(s).view(-1, 1, self.embed)
        hidden = F.elu(torch.bmm(q, w1) + b1)
        w_final = torch.abs(self.hyper_w_final(s)).view(-1, self.embed, 1)
        y = torch.bmm(hidden, w_final) + self.V(s).view(-1, 1, 1)
        return y.view(lead)


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
