"""Networks over continuous actions: COMIX's per-agent Q_i(o_i, a_i) MLP, and the action box
(bounds, normalisation, exploration) that COMIX and continuous FACMAC share.

Why an MLP on (observation, action) rather than PyMARL's RNN with one output per action: with
continuous actions there is no finite output layer to read a max from, so the network scores one
action per forward pass and a sampler (CEM, `mast.cem`) searches for the greedy action. As in
FACMAC's COMIX for Multi-Agent MuJoCo, it has two hidden layers of 400 and no recurrence.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mast.cem import standard_normal
from mast.envs.base import EnvSpec
from mast.modules.agents import AgentLinear


def exploration_sigma(algo_cfg, t_env: int) -> float:
    """The exploration level of a continuous learner at t_env: the Gaussian σ `act_noise`
    (constant, as FACMAC), or ∞ for the first `start_steps` env steps — FACMAC's uniform random
    warm-up, which fills the replay with actions spread over the whole box, so a critic can
    learn how Q depends on the action before the policy narrows them."""
    return math.inf if t_env < algo_cfg.get("start_steps", 0) else float(algo_cfg.act_noise)


class ActionBox:
    """Per-agent action bounds [n, U] as tensors: env units ↔ normalised [-1, 1] (padded dims 0)."""

    def __init__(self, spec: EnvSpec, device: torch.device):
        low, high = (torch.as_tensor(x, device=device) for x in spec.continuous.bounds())
        self.dim_mask = torch.as_tensor(spec.continuous.dim_mask(), device=device)
        self.center = (high + low) / 2
        self.half = torch.where(self.dim_mask, (high - low) / 2, torch.ones_like(high))

    def normalise(self, actions: torch.Tensor) -> torch.Tensor:
        """[..., n, U] env units → [-1, 1] (padded dims 0)."""
        return (actions - self.center) / self.half * self.dim_mask

    def to_env_units(self, x: torch.Tensor) -> torch.Tensor:
        return (self.center + x * self.half) * self.dim_mask

    def uniform(self, n_envs: int, gen: torch.Generator) -> torch.Tensor:
        """[n_envs, n, U] uniform over the box, normalised (padded dims 0), drawn from `gen`."""
        x = torch.rand((n_envs, *self.dim_mask.shape), generator=gen) * 2 - 1
        return x.to(self.dim_mask.device) * self.dim_mask

    def explore(self, greedy: Callable[[], torch.Tensor], n_envs: int, sigma: float,
                gen: torch.Generator) -> torch.Tensor:
        """The acting rule both continuous learners share: uniform over the box while σ = ∞ (the
        warm-up; `greedy` is not called, so COMIX skips CEM), else greedy() + N(0, σ²) noise,
        clipped; [n_envs, n, U] env units on the cpu."""
        x = self.uniform(n_envs, gen) if math.isinf(sigma) else self.perturb(greedy(), sigma, gen)
        return self.to_env_units(x).cpu()

    def perturb(self, x: torch.Tensor, sigma: float, gen: torch.Generator | None,
                noise_clip: float | None = None) -> torch.Tensor:
        """x + N(0, σ²) noise from `gen` (None: the device's default generator), the noise
        clipped to ±`noise_clip` when given (TD3's target smoothing), the sum to the box
        (normalised units)."""
        if sigma <= 0:
            return x
        noise = sigma * standard_normal(x.shape, gen, x.device)
        if noise_clip is not None:
            noise = noise.clamp(-noise_clip, noise_clip)
        return (x + noise).clamp(-1, 1) * self.dim_mask


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
