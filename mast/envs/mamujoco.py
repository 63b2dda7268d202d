"""Multi-Agent MuJoCo (gymnasium-robotics `mamujoco_v1`) as a `VecEnv` with continuous actions.

`n_envs` PettingZoo parallel environments are stepped in lock-step from Python (MuJoCo steps
are ≈0.5 ms; no JAX here) and return the same stacked arrays as SMAX: observations zero-padded
to the largest agent's, `avail` = each agent's real action dims, the shared reward, `state()`.
No auto-reset: a finished environment is frozen (zero reward, repeated observation) until
`reset()`, which keeps episodes aligned the way PyMARL's parallel runner does.

Episode ends: the scenario's time limit (1000 steps, or `env.episode_limit` if smaller) is a
truncation — targets bootstrap through it; only a real termination (Humanoid falling) stops the
bootstrap. MuJoCo is imported lazily; without it construction fails with the install command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from functools import cache

import numpy as np

from mast.envs.base import ContinuousActions, EnvSpec, StepOutput
from mast.envs.mamujoco_maps import EPISODE_LIMIT, check_scenario
from mast.registry import ENVS

INSTALL_HELP = ("env=mamujoco needs Multi-Agent MuJoCo: pip install gymnasium-robotics==1.4.2 "
                "mujoco==4.0.0 (both are dependencies of this package: pip install -e .)")


@contextlib.contextmanager
def _asset_lock() -> Iterator[None]:
    """Many-segment robots are built by writing an XML asset under gymnasium-robotics' package
    folder, loading it and deleting it, at a path that depends only on the segment count: two
    processes of a sweep doing that at once can delete each other's file. One host-wide lock."""
    path = os.path.join(tempfile.gettempdir(), "mast-mamujoco-asset.lock")
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _parallel_env(scenario: str, agent_conf: str, agent_obsk: int):
    problem = check_scenario(scenario, agent_conf)
    if problem:
        raise ValueError(problem)
    try:
        from gymnasium_robotics import mamujoco_v1
    except ImportError as e:
        raise RuntimeError(f"{INSTALL_HELP} (import failed: {e})") from None
    with _asset_lock():
        return mamujoco_v1.parallel_env(scenario, agent_conf, agent_obsk=agent_obsk)


def _spec_of(env, episode_limit: int) -> EnvSpec:
    agents = env.possible_agents
    boxes = [env.action_space(a) for a in agents]
    bound = lambda xs: tuple(round(float(x), 6) for x in xs)  # noqa: E731  (float32 → 0.4)
    dims = tuple(int(b.shape[0]) for b in boxes)
    actions = ContinuousActions(dims, tuple(bound(b.low) for b in boxes),
                                tuple(bound(b.high) for b in boxes))
    obs_dim = max(int(env.observation_space(a).shape[0]) for a in agents)
    return EnvSpec(n_agents=len(agents), obs_dim=obs_dim, state_dim=int(env.state().shape[0]),
                   n_actions=actions.max_dim, episode_limit=episode_limit, continuous=actions)


@cache
def mamujoco_spec(scenario: str, agent_conf: str, agent_obsk: int = 0,
                  episode_limit: int | None = None) -> EnvSpec:
    """Shapes of one scenario (builds one environment, once per process)."""
    env = _parallel_env(scenario, agent_conf, agent_obsk)
    env.reset(seed=0)
    spec = _spec_of(env, min(episode_limit or EPISODE_LIMIT, EPISODE_LIMIT))
    env.close()
    return spec


@ENVS.register("mamujoco")
class MaMuJoCoVecEnv:
    """`n_envs` Multi-Agent MuJoCo environments stepped together; see the module docstring."""

    def __init__(self, scenario: str, agent_conf: str, n_envs: int, seed: int,
                 agent_obsk: int = 0, episode_limit: int | None = None, reward_scale: float = 1.0):
        self.envs = [_parallel_env(scenario, agent_conf, agent_obsk) for _ in range(n_envs)]
        self.envs[0].reset(seed=seed)
        self.spec = _spec_of(self.envs[0], min(episode_limit or EPISODE_LIMIT, EPISODE_LIMIT))
        self.n_envs, self.seed, self.reward_scale = n_envs, seed, reward_scale
        self.agents = self.envs[0].possible_agents
        self.resets = 0  # reset counter: episode seeds derive from (seed, resets, env index)
        self.done = np.zeros(n_envs, bool)
        self.t = 0
        self._obs = np.zeros((n_envs, self.spec.n_agents, self.spec.obs_dim), np.float32)
        self._state = np.zeros((n_envs, self.spec.state_dim), np.float32)
        self._avail = np.broadcast_to(self.spec.continuous.dim_mask(), self._obs.shape[:2]
                                      + (self.spec.n_actions,))

    @classmethod
    def from_config(cls, env_cfg, n_envs: int, seed: int) -> MaMuJoCoVecEnv:
        return cls(env_cfg.scenario, env_cfg.agent_conf, n_envs, seed, env_cfg.agent_obsk,
                   env_cfg.episode_limit, env_cfg.reward_scale)

    def _record(self, i: int, obs: dict) -> None:
        for j, a in enumerate(self.agents):
            o = obs[a]
            self._obs[i, j, : len(o)] = o
        self._state[i] = self.envs[i].state()

    def _output(self, reward, term, trunc) -> StepOutput:
        return StepOutput(self._obs.copy(), self._state.copy(), self._avail.copy(), reward, term,
                          trunc, np.zeros(self.n_envs, bool))

    def reset(self) -> StepOutput:
        base = (self.seed * 1_000_003 + self.resets * self.n_envs) % 2**31
        for i, env in enumerate(self.envs):
            obs, _ = env.reset(seed=(base + i) % 2**31)
            self._record(i, obs)
        self.resets += 1
        self.done[:] = False
        self.t = 0
        z = np.zeros(self.n_envs, bool)
        return self._output(np.zeros(self.n_envs, np.float32), z, z.copy())

    def step(self, actions: np.ndarray) -> StepOutput:
        """actions [N, n_agents, max_dim] in env units; each agent's padded dims are dropped."""
        n = self.n_envs
        rew, term, trunc = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        self.t += 1
        dims = self.spec.continuous.dims
        for i, env in enumerate(self.envs):
            if self.done[i]:
                continue
            local = {a: np.asarray(actions[i, j, : dims[j]], np.float64)
                     for j, a in enumerate(self.agents)}
            obs, r, te, tr, _ = env.step(local)
            a0 = self.agents[0]
            rew[i] = float(r[a0]) * self.reward_scale
            term[i] = bool(te[a0])
            trunc[i] = not term[i] and (bool(tr[a0]) or self.t >= self.spec.episode_limit)
            self._record(i, obs)
        self.done |= term | trunc
        return self._output(rew, term, trunc)

    def get_rng_state(self):
        return np.array([self.seed, self.resets], np.int64)

    def set_rng_state(self, key) -> None:
        self.seed, self.resets = int(key[0]), int(key[1])

    def close(self) -> None:
        for env in self.envs:
            env.close()
