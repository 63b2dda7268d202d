"""PyMARL's RNN agent (fc → GRU → fc), shared across agents or one network per agent.

Per-agent networks are stored as stacked weights `[n_agents, out, in]` and applied with one
batched matmul, so "10 agents" costs one kernel, and a sparse mask over the stacked tensor gives
the global per-layer budget of paper Fig. 12 for free.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AgentLinear(nn.Module):
    """Linear layer with weight [out, in] (shared) or [G, out, in] (one per agent group)."""

    def __init__(self, in_dim: int, out_dim: int, groups: int | None = None):
        super().__init__()
        shape = (out_dim, in_dim) if groups is None else (groups, out_dim, in_dim)
        bshape = (out_dim,) if groups is None else (groups, out_dim)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(bshape))
        bound = 1.0 / math.sqrt(in_dim)  # torch's nn.Linear default init
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, G, in] when grouped (agent axis second-to-last), else [..., in]."""
        if self.groups is None:
            return F.linear(x, self.weight, self.bias)
        return torch.einsum("bgi,goi->bgo", x, self.weight) + self.bias


class AgentGRU(nn.Module):
    """GRU cell (torch gate order r, z, n) with optional per-agent stacked weights."""

    def __init__(self, in_dim: int, hidden: int, groups: int | None = None):
        super().__init__()
        self.ih = AgentLinear(in_dim, 3 * hidden, groups)
        self.hh = AgentLinear(hidden, 3 * hidden, groups)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gi, gh = self.ih(x), self.hh(h)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


class RNNAgent(nn.Module):
    """Q_i(τ_i, ·): input = obs ⊕ one-hot last action ⊕ one-hot agent id."""

    def __init__(self, input_dim: int, n_actions: int, n_agents: int, hidden: int = 64,
                 share_params: bool = True):
        super().__init__()
        groups = None if share_params else n_agents
        self.fc1 = AgentLinear(input_dim, hidden, groups)
        self.rnn = AgentGRU(hidden, hidden, groups)
        self.fc2 = AgentLinear(hidden, n_actions, groups)
        self.hidden, self.n_agents = hidden, n_agents

    def initial_hidden(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, self.n_agents, self.hidden, device=device)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, n_agents, input_dim], h [B, n_agents, hidden] → (q [B, n_agents, U], h')."""
        x = F.relu(self.fc1(inputs))
        h = self.rnn(x, h)
        return self.fc2(h), h


def unroll(agent: RNNAgent, inputs: torch.Tensor) -> torch.Tensor:
    """Run the agent over an episode batch. inputs [B, T, n_agents, in] → q [B, T, n_agents, U]."""
    b, t = inputs.shape[:2]
    h = agent.initial_hidden(b, inputs.device)
    qs = []
    for k in range(t):
        q, h = agent(inputs[:, k], h)
        qs.append(q)
    return torch.stack(qs, dim=1)
