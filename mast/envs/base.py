"""Environment protocol and the facts every other component needs about an environment.

Algorithms never look at env names: they get an `EnvSpec` and a `VecEnv` that returns stacked
arrays for `n_envs` environments per call (DESIGN §6: one jitted, vmapped call per step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    """Shapes and limits of one multi-agent task (SMAC conventions)."""

    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    episode_limit: int  # environment steps before truncation

    @property
    def agent_input_dim(self) -> int:
        """PyMARL agent input: observation + one-hot last action + one-hot agent id."""
        return self.obs_dim + self.n_actions + self.n_agents


@dataclass
class StepOutput:
    """Stacked arrays for N environments after one step (or after reset).

    obs [N, n_agents, obs_dim], state [N, state_dim], avail [N, n_agents, n_actions] (bool),
    reward [N] (SMAC scale), terminated [N] (bool: battle ended, no bootstrap),
    truncated [N] (bool: episode limit reached), won [N] (bool).
    """

    obs: np.ndarray
    state: np.ndarray
    avail: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    won: np.ndarray


class VecEnv(Protocol):
    spec: EnvSpec
    n_envs: int

    def reset(self) -> StepOutput: ...

    def step(self, actions: np.ndarray) -> StepOutput:
        """actions [N, n_agents] int. Environments that are done keep returning done until reset."""
        ...
