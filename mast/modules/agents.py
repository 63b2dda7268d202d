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


def _init_uniform(*tensors: torch.Tensor, fan_in: int) -> None:
    bound = 1.0 / math.sqrt(fan_in)  # torch's nn.Linear / nn.GRU default init
    for t in tensors:
        nn.init.uniform_(t, -bound, bound)


def grouped_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [..., G, in] with weight [out, in] (shared) or [G, out, in] (one per agent) → [..., G, out]."""
    if weight.dim() == 2:
        return F.linear(x, weight, bias)
    lead = x.shape[:-2]
    y = torch.einsum("bgi,goi->bgo", x.reshape(-1, *x.shape[-2:]), weight) + bias
    return y.reshape(*lead, *y.shape[-2:])


class AgentLinear(nn.Module):
    """Linear layer with weight [out, in] (shared) or [G, out, in] (one per agent group)."""

    def __init__(self, in_dim: int, out_dim: int, groups: int | None = None):
        super().__init__()
        lead = () if groups is None else (groups,)
        self.weight = nn.Parameter(torch.empty(*lead, out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(*lead, out_dim))
        _init_uniform(self.weight, self.bias, fan_in=in_dim)
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., G, in] (agent axis second-to-last) → [..., G, out]."""
        return grouped_linear(x, self.weight, self.bias)


class AgentGRU(nn.Module):
    """GRU cell with torch's parameter names and gate order (r, z, n), so masks are keyed
    `agent.rnn.weight_ih` / `weight_hh` (all three gates); optional per-agent stacked weights."""

    def __init__(self, in_dim: int, hidden: int, groups: int | None = None):
        super().__init__()
        lead = () if groups is None else (groups,)
        self.weight_ih = nn.Parameter(torch.empty(*lead, 3 * hidden, in_dim))
        self.weight_hh = nn.Parameter(torch.empty(*lead, 3 * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(*lead, 3 * hidden))
        self.bias_hh = nn.Parameter(torch.empty(*lead, 3 * hidden))
        _init_uniform(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, fan_in=hidden)
        self.hidden = hidden

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., G, in] → [..., G, 3h]; independent of h, so an unroll does it for all steps at once."""
        return grouped_linear(x, self.weight_ih, self.bias_ih)

    def cell(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step from precomputed input gates gi [B, G, 3h] and h [B, G, h] → h' [B, G, h]."""
        gh = grouped_linear(h, self.weight_hh, self.bias_hh)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (h - n)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.cell(self.input_gates(x), h)


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
        h = self.rnn(F.relu(self.fc1(inputs)), h)
        return self.fc2(h), h


def unroll(agent: RNNAgent, inputs: torch.Tensor) -> torch.Tensor:
    """Run the agent over an episode batch. inputs [B, T, n_agents, in] → q [B, T, n_agents, U].

    Same maths as calling `agent` step by step, but fc1, the GRU input gates and fc2 run once over
    all T steps; only the recurrent matmul stays in the Python loop (≈2x faster updates on CPU)."""
    gi = agent.rnn.input_gates(F.relu(agent.fc1(inputs)))  # [B, T, n, 3h]
    h = agent.initial_hidden(inputs.shape[0], inputs.device)
    hs = []
    for g in gi.unbind(1):  # unbind, not gi[:, k]: one backward node instead of T full-size ones
        h = agent.rnn.cell(g, h)
        hs.append(h)
    return agent.fc2(torch.stack(hs, dim=1))
