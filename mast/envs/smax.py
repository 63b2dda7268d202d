"""SMAX (JaxMARL's JAX re-implementation of SMAC) as a vectorised `VecEnv`.

Why this shape: one SMAX step from Python costs ~9 ms whatever the batch size, so every step of
all `n_envs` environments is a single jitted, vmapped call that takes the action array and returns
stacked arrays. No auto-reset inside the step: finished environments are frozen (the runner masks
them) and `reset()` starts a new batch of episodes, which keeps episodes aligned in an
`EpisodeBatch` the way PyMARL's parallel runner does.
"""

from __future__ import annotations

import os
from functools import cache

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402

from mast.envs.base import EnvSpec, StepOutput  # noqa: E402
from mast.registry import ENVS  # noqa: E402

# SMAC episode limits (steps). Maps not listed fall back to DEFAULT_EPISODE_LIMIT.
SMAC_EPISODE_LIMITS = {
    "3m": 60, "8m": 120, "25m": 150, "2s3z": 120, "3s5z": 150, "5m_vs_6m": 70,
    "10m_vs_11m": 150, "27m_vs_30m": 180, "3s5z_vs_3s6z": 170, "3s_vs_5z": 250,
    "6h_vs_8z": 150, "2s_vs_1sc": 300, "MMM": 150,
}
DEFAULT_EPISODE_LIMIT = 150
# SMAX pays enemy-health fraction (≤ 1 per episode) plus a win bonus of 1; SMAC normalises its
# reward to at most 20 per episode, so ×10 puts SMAX returns on SMAC's scale.
SMAC_REWARD_SCALE = 10.0


def available_maps() -> list[str]:
    from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO

    return sorted(k for k in MAP_NAME_TO_SCENARIO if not k.startswith("smacv2"))


def _make_jax_env(map_name: str, episode_limit: int):
    from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario

    if map_name not in available_maps():
        raise ValueError(f"env.map={map_name!r} is not a SMAX map; allowed: {available_maps()}")
    return HeuristicEnemySMAX(scenario=map_name_to_scenario(map_name), max_steps=episode_limit)


def episode_limit_for(map_name: str) -> int:
    return SMAC_EPISODE_LIMITS.get(map_name, DEFAULT_EPISODE_LIMIT)


@cache
def smax_env_spec(map_name: str, episode_limit: int | None = None) -> EnvSpec:
    """Shapes of a SMAX map without stepping it (used by accounting and config validation)."""
    limit = episode_limit or episode_limit_for(map_name)
    env = _make_jax_env(map_name, limit)
    n_agents = env.num_allies
    return EnvSpec(
        n_agents=n_agents,
        obs_dim=int(env.obs_size),
        state_dim=int(env.state_size),
        n_actions=int(env.num_ally_actions),
        episode_limit=limit,
    )


@cache
def _compiled(map_name: str, episode_limit: int, n_envs: int, reward_scale: float):
    """Jitted (reset, step) over n_envs environments. Cached so tests share one compile, and
    on disk (`mast._jax`) so the next process does not compile at all."""
    import jax
    import jax.numpy as jnp

    from mast._jax import enable_compilation_cache

    enable_compilation_cache()

    env = _make_jax_env(map_name, episode_limit)
    agents = env.agents
    n_allies = env.num_allies
    map_w, map_h = float(env.map_width), float(env.map_height)
    # world state = [per-unit (health, x, y, cooldown, type one-hot) ..., teams, types].
    # Raw features are rescaled to [0, 1] like SMAC's state: positions come in map units (0..32),
    # the trailing unit types are indices 0..5, and SMAX's weapon cooldown keeps decreasing below
    # 0 between shots, an unbounded "seconds since last shot" counter (|x| > 10 within an
    # episode) that the QMIX hypernetworks amplify — it is divided by the unit type's cooldown
    # and clipped, as SMAX already does in the agents' observations.
    feat = len(env.own_features)
    n_units = env.num_allies + env.num_enemies  # (HeuristicEnemySMAX.num_agents = allies)
    type_cooldown = jnp.asarray(env.unit_type_weapon_cooldowns)

    def observe(state):
        obs_d = env.get_obs(state)
        obs = jnp.stack([obs_d[a] for a in agents])
        avail_d = env.get_avail_actions(state)
        avail = jnp.stack([avail_d[a] for a in agents]).astype(jnp.bool_)
        ws = env.get_world_state(state)
        units = ws[: n_units * feat].reshape(n_units, feat)
        units = units.at[:, 1].divide(map_w).at[:, 2].divide(map_h)
        cooldown = units[:, 3] / type_cooldown[state.state.unit_types]
        units = units.at[:, 3].set(jnp.clip(cooldown, 0.0, 1.0))
        teams, types = ws[n_units * feat:].reshape(2, n_units)  # types are raw indices 0..5
        ws = jnp.concatenate([units.reshape(-1), teams, types / (len(type_cooldown) - 1)])
        return obs, ws, avail

    def reset_one(key):
        _, state = env.reset(key)
        # reset builds some leaves from Python scalars (weak-typed); the step returns them
        # strongly typed, and that difference alone made jit compile the step a second time
        state = jax.tree.map(lambda x: jnp.asarray(x, x.dtype), state)
        obs, ws, avail = observe(state)
        return state, obs, ws, avail

    def step_one(key, state, actions, done):
        act = {a: actions[i] for i, a in enumerate(agents)}
        _, new_state, rewards, dones, _ = env.step_env(key, state, act)
        inner = new_state.state
        enemies_dead = ~jnp.any(inner.unit_alive[n_allies:])
        allies_dead = ~jnp.any(inner.unit_alive[:n_allies])
        terminated = enemies_dead | allies_dead
        finished = dones["__all__"]
        # frozen once done: keep old state so repeated calls are harmless
        state = jax.tree.map(lambda old, new: jnp.where(done, old, new), state, new_state)
        obs, ws, avail = observe(state)
        reward = jnp.where(done, 0.0, rewards[agents[0]] * reward_scale)
        won = enemies_dead & ~allies_dead & ~done  # both teams dead in one step: a draw (SMAC)
        return state, obs, ws, avail, reward, terminated & ~done, finished & ~terminated & ~done, won

    def split(key):  # the runner's key → (next key, one key per environment)
        key, sub = jax.random.split(key)
        return key, jax.random.split(sub, n_envs)

    @jax.jit
    def reset_v(key):
        key, keys = split(key)
        state, obs, ws, avail = jax.vmap(reset_one)(keys)
        return key, state, obs, ws, avail, jnp.zeros((n_envs,), dtype=bool)

    @jax.jit
    def step_v(key, state, actions, done):
        # key splitting and the done update live inside the one jitted call: as separate eager
        # JAX ops they cost as much as the vmapped step itself
        key, keys = split(key)
        state, obs, ws, avail, reward, term, trunc, won = jax.vmap(step_one)(keys, state,
                                                                             actions, done)
        return key, state, obs, ws, avail, reward, term, trunc, won, done | term | trunc

    return reset_v, step_v


@ENVS.register("smax")
class SmaxVecEnv:
    """N SMAX environments stepped together; see module docstring."""

    def __init__(self, map_name: str, n_envs: int, seed: int, episode_limit: int | None = None,
                 reward_scale: float = SMAC_REWARD_SCALE):
        import jax

        self.map_name = map_name
        self.n_envs = n_envs
        self.spec = smax_env_spec(map_name, episode_limit)
        self._reset, self._step = _compiled(map_name, self.spec.episode_limit, n_envs,
                                            float(reward_scale))
        self._key = jax.random.PRNGKey(seed)
        self._state = None
        self._done = None

    @classmethod
    def from_config(cls, env_cfg, n_envs: int, seed: int):
        return cls(map_name=env_cfg.map, n_envs=n_envs, seed=seed,
                   episode_limit=env_cfg.episode_limit, reward_scale=env_cfg.reward_scale)

    def reset(self) -> StepOutput:
        self._key, self._state, obs, ws, avail, self._done = self._reset(self._key)
        zeros = np.zeros(self.n_envs, dtype=bool)
        return StepOutput(np.array(obs), np.array(ws), np.array(avail),
                          np.zeros(self.n_envs, np.float32), zeros, zeros.copy(), zeros.copy())

    def step(self, actions: np.ndarray) -> StepOutput:
        out = self._step(self._key, self._state, actions.astype(np.int32), self._done)
        self._key, self._state, obs, ws, avail, reward, term, trunc, won, self._done = out
        return StepOutput(np.array(obs), np.array(ws), np.array(avail),
                          np.array(reward, dtype=np.float32), np.array(term),
                          np.array(trunc), np.array(won))

    @property
    def jax_state(self):
        """Batched JaxMARL state after the last reset/step (None before the first reset): what
        JaxMARL's visualiser draws (`mast.gif`)."""
        return self._state

    def jax_env(self):
        """A JaxMARL SMAX env of this map and episode limit, for its visualiser."""
        return _make_jax_env(self.map_name, self.spec.episode_limit)

    def get_rng_state(self):
        return np.asarray(self._key)

    def set_rng_state(self, key) -> None:
        import jax.numpy as jnp

        self._key = jnp.asarray(key)
