"""StarCraft II SMAC backend (oxwhirl's `smac` package + SC2 4.10), imported lazily.

Not installable on machines without StarCraft II; then constructing it fails with instructions
and the embedded SMAX backend (`env=smax`) is the drop-in alternative. Environments step one after
another in Python (SC2 is a separate process per environment), returning the same stacked arrays
as SMAX.
"""

from __future__ import annotations

import numpy as np

from mast.envs.base import EnvSpec, StepOutput
from mast.registry import ENVS

INSTALL_HELP = (
    "env=smac needs StarCraft II and oxwhirl's SMAC: "
    "pip install git+https://github.com/oxwhirl/smac.git (NOT PyPI's `smac`, an unrelated HPO "
    "tool), install SC2 4.10 and set SC2PATH (see the SMAC README). Meanwhile use env=smax, the "
    "embedded JAX re-implementation with the same maps.")


def _import_smac():
    try:
        from smac.env import StarCraft2Env
    except ImportError as e:
        raise RuntimeError(f"{INSTALL_HELP} (import failed: {e})") from None
    return StarCraft2Env


@ENVS.register("smac")
class SmacVecEnv:
    def __init__(self, map_name: str, n_envs: int, seed: int, episode_limit: int | None = None,
                 reward_scale: float = 1.0):
        cls = _import_smac()
        try:
            self.envs = [cls(map_name=map_name, seed=seed + i) for i in range(n_envs)]
        except Exception as e:  # SC2 binary missing or failing to start
            raise RuntimeError(f"{INSTALL_HELP} (StarCraft II failed to start: {e})") from None
        info = self.envs[0].get_env_info()
        self.n_envs, self.reward_scale = n_envs, reward_scale
        self.spec = EnvSpec(info["n_agents"], info["obs_shape"], info["state_shape"],
                            info["n_actions"], episode_limit or info["episode_limit"])
        self.done = np.zeros(n_envs, bool)

    def _observe(self):
        obs = np.stack([np.asarray(e.get_obs()) for e in self.envs]).astype(np.float32)
        state = np.stack([e.get_state() for e in self.envs]).astype(np.float32)
        avail = np.stack([np.asarray(e.get_avail_actions()) for e in self.envs]).astype(bool)
        return obs, state, avail

    @classmethod
    def from_config(cls, env_cfg, n_envs: int, seed: int):
        return cls(map_name=env_cfg.map, n_envs=n_envs, seed=seed,
                   episode_limit=env_cfg.episode_limit, reward_scale=env_cfg.reward_scale)

    def reset(self) -> StepOutput:
        for e in self.envs:
            e.reset()
        self.done[:] = False
        z = np.zeros(self.n_envs, bool)
        return StepOutput(*self._observe(), np.zeros(self.n_envs, np.float32), z, z.copy(), z.copy())

    def step(self, actions: np.ndarray) -> StepOutput:
        n = self.n_envs
        rew, term, trunc, won = np.zeros(n, np.float32), *(np.zeros(n, bool) for _ in range(3))
        for i, e in enumerate(self.envs):
            if self.done[i]:
                continue
            r, terminated, info = e.step(actions[i])
            rew[i] = r * self.reward_scale
            limit = bool(info.get("episode_limit", False))
            term[i], trunc[i] = terminated and not limit, limit
            won[i] = bool(info.get("battle_won", False))
        self.done |= term | trunc
        return StepOutput(*self._observe(), rew, term, trunc, won)

    def get_rng_state(self):
        return np.zeros(2, np.uint32)  # SC2 owns its randomness; resume is not bit-exact

    def set_rng_state(self, key) -> None:
        pass

    def close(self) -> None:
        for e in self.envs:
            e.close()
