"""JAX's persistent compilation cache for the SMAX step.

Why: XLA compiles SMAX's vmapped reset and step in 20–40 s on a CPU core, once per process and
per `n_envs` (train and test envs differ). Every sweep job, test and `make demo` paid that again;
with the on-disk cache a process after the first loads the executable in well under a second.
`MAST_JAX_CACHE` sets the folder (default `~/.cache/mast/jax`); `MAST_JAX_CACHE=0` turns it off.
A cache folder the user configured for JAX itself is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT = Path.home() / ".cache" / "mast" / "jax"


def enable_compilation_cache() -> Path | None:
    """Point JAX at the cache folder (idempotent); returns it, or None when turned off."""
    import jax

    setting = os.environ.get("MAST_JAX_CACHE", str(DEFAULT))
    if setting in ("", "0", "off", "false"):
        return None
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    path = Path(setting).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home on some clusters: compile as before
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return path
