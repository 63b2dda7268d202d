"""Environment backends, registered in `mast.registry.ENVS`. Importing this package is cheap:
JAX/JaxMARL and SC2 are imported only when an environment is built."""

from mast.envs import smac, smax  # noqa: F401  (register backends)


def make_env(cfg, n_envs: int, seed: int):
    """The configured backend (`env.name`) for `env.map`, `n_envs` environments per call."""
    from mast.registry import ENVS

    return ENVS.get(cfg.env.name)(n_envs=n_envs, seed=seed, map_name=cfg.env.map,
                                  episode_limit=cfg.env.episode_limit,
                                  reward_scale=cfg.env.reward_scale)
