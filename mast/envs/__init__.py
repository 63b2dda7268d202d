"""Environment backends, registered in `mast.registry.ENVS`. Importing this package is cheap:
JAX/JaxMARL and SC2 are imported only when an environment is built."""

from mast.envs import smac, smax  # noqa: F401  (register backends)
