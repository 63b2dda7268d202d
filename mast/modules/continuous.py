"""Networks over continuous actions: COMIX's per-agent Q_i(o_i, a_i) MLP.

Why an MLP on (observation, action) rather than PyMARL's RNN with one output per action: with
continuous actions there is no finite output layer to read a max from, so the network scores one
action per forward pass and a sampler (CEM, `mast.cem`) searches for the greedy action. As in
FACMAC's COMIX for Multi-Agent MuJoCo, it has two hidden layers of 400 and no recurrence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mast.modules.agents import AgentLinear


class MLPQAgent(nn.Module):
    """Q_i(o_i, a_i): input = obs ⊕ one-hot agent id ⊕ action (normalised to [-1, 1], padded
    dims 0); fc1 → ReLU → fc2 → ReLU → fc3 (one output). Shared weights (agent id in the input)
    or one stacked network per agent (`share_params=False`), like `RNNAgent`."""

    def __init__(self, obs_dim: int, action_dim: int, n_agents: int, hidden: int = 400,
                 share_params: bool = True):
        super().__init__()
        groups = None if share_params else n_agents
        self.fc1 = AgentLinear(obs_dim + n_agents + action_dim, hidden, groups)
        self.fc2 = AgentLinear(hidden, hidden, groups)
        self.fc3 = AgentLinear(hidden, 1, groups)
        self.n_agents = n_agents

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs [..., n, obs], actions [..., n, U] (normalised) → q [..., n].

        Leading dims broadcast between the two (CEM passes K samples of actions for one obs)."""
        lead = torch.broadcast_shapes(obs.shape[:-2], actions.shape[:-2])
        n = self.n_agents
        ids = torch.eye(n, dtype=obs.dtype, device=obs.device).expand(*lead, n, n)
        x = torch.cat([obs.expand(*lead, *obs.shape[-2:]), ids,
                       actions.expand(*lead, *actions.shape[-2:])], dim=-1)
        x = F.relu(self.fc1(x), inplace=True)  # in place: CEM's activations are MBs; the
        x = F.relu(self.fc2(x), inplace=True)  # linear's backward needs its input, not output
        return self.fc3(x).squeeze(-1)
