"""FACMAC's deterministic continuous actor μ_i(o_i) (the discrete actor is PyMARL's RNN agent).

Why an MLP: FACMAC's Multi-Agent MuJoCo actor is feed-forward (two hidden layers of 400) and the
critic sees one action per forward pass, so the actor only has to emit that action. Output is
tanh-squashed into [-1, 1] (normalised units; the learner maps them to the env's bounds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mast.modules.agents import AgentLinear


class MLPActor(nn.Module):
    """μ_i(o_i): input = obs ⊕ one-hot agent id; fc1 → ReLU → fc2 → ReLU → fc3 → tanh.
    Shared weights (agent id in the input) or stacked per agent (`share_params=False`)."""

    def __init__(self, obs_dim: int, action_dim: int, n_agents: int, hidden: int = 400,
                 share_params: bool = True):
        super().__init__()
        groups = None if share_params else n_agents
        self.fc1 = AgentLinear(obs_dim + n_agents, hidden, groups)
        self.fc2 = AgentLinear(hidden, hidden, groups)
        self.fc3 = AgentLinear(hidden, action_dim, groups)
        self.n_agents = n_agents

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [..., n, obs] → actions [..., n, U] in [-1, 1] (padded dims are the caller's)."""
        n = self.n_agents
        ids = torch.eye(n, dtype=obs.dtype, device=obs.device).expand(*obs.shape[:-2], n, n)
        x = F.relu(self.fc1(torch.cat([obs, ids], dim=-1)))
        x = F.relu(self.fc2(x))
        return torch.tanh(self.fc3(x))
