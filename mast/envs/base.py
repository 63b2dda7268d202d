"""Environment protocol and the facts every other component needs about an environment.

Algorithms never look at env names: they get an `EnvSpec` and a `VecEnv` that returns stacked
arrays for `n_envs` environments per call (DESIGN §6: one jitted, vmapped call per step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class ContinuousActions:
    """Per-agent continuous action boxes. Agents may have different numbers of action dims; the
    action array is padded to the largest (`EnvSpec.n_actions`), and `StepOutput.avail` marks
    each agent's real dims (padded dims are False, ignored by the env, kept at 0 by policies).

    dims: action dims per agent; low / high: per agent, one bound per real dim."""

    dims: tuple[int, ...]
    low: tuple[tuple[float, ...], ...]
    high: tuple[tuple[float, ...], ...]

    @property
    def max_dim(self) -> int:
        return max(self.dims)

    def dim_mask(self) -> np.ndarray:
        """[n_agents, max_dim] bool: True on each agent's real action dims."""
        return np.arange(self.max_dim)[None, :] < np.asarray(self.dims)[:, None]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each [n_agents, max_dim] float32; padded dims have low = high = 0."""
        low = np.zeros((len(self.dims), self.max_dim), np.float32)
        high = np.zeros_like(low)
        for i, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)):
            low[i, : len(lo)], high[i, : len(hi)] = lo, hi
        return low, high


@dataclass(frozen=True)
class EnvSpec:
    """Shapes and limits of one multi-agent task (SMAC conventions).

    Action space: discrete (`continuous is None`): `n_actions` choices per agent, actions are
    ints [n_agents], `avail` masks unavailable choices. Continuous: actions are float vectors
    [n_agents, n_actions] in env units with `n_actions` = the largest agent's action dims and
    `avail` = the per-agent dim mask (`ContinuousActions`). Observations of agents with fewer
    features are zero-padded to `obs_dim`."""

    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    episode_limit: int  # environment steps before truncation
    continuous: ContinuousActions | None = None

    @property
    def action_kind(self) -> str:
        return "discrete" if self.continuous is None else "continuous"

    @property
    def agent_input_dim(self) -> int:
        """PyMARL agent input: observation + one-hot last action + one-hot agent id."""
        return self.obs_dim + self.n_actions + self.n_agents


@dataclass
class StepOutput:
    """Stacked arrays for N environments after one step (or after reset).

    obs [N, n_agents, obs_dim], state [N, state_dim], avail [N, n_agents, n_actions] (bool:
    available actions, or for continuous actions the agent's real action dims), reward [N] (SMAC scale), terminated [N] (bool: battle ended, no bootstrap),
    truncated [N] (bool: episode limit reached: bootstrap), won [N] (bool; False without a win
    condition).
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
        """actions [N, n_agents] int (discrete) or [N, n_agents, n_actions] float (continuous,
        env units, padded dims ignored). Environments that are done keep returning done until reset."""
        ...
