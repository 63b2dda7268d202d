"""Environment backends, registered in `mast.registry.ENVS`. Importing this package is cheap:
JAX/JaxMARL, SC2 and MuJoCo are imported only when an environment is built."""

from mast.envs import mamujoco, smac, smax  # noqa: F401  (register backends)


def make_env(cfg, n_envs: int, seed: int):
    """The configured backend (`env.name`), `n_envs` environments per call; each backend reads
    its own keys of `cfg.env` (`from_config`)."""
    from mast.registry import ENVS

    return ENVS.get(cfg.env.name).from_config(cfg.env, n_envs, seed)
