"""Typed schema of ``hydra/launcher=mast_ray`` (every key is ``hydra.launcher.<key>``)."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

LOCAL_ADDRESS = "local"


@dataclass
class MastRayLauncherConf:
    """Where the sweep runs and what each job reserves.

    ``address``: ``local`` starts a private Ray instance for this sweep and shuts it down after;
    ``auto``, ``host:port`` or ``ray://host:port`` join an existing cluster (left running).
    ``num_cpus``/``num_gpus`` are reserved per job (fractions allowed: ``num_gpus=0.25`` puts four
    jobs on one GPU). ``max_concurrent`` caps jobs in flight (``null``: as many as fit).
    ``runtime_env`` goes to ``ray.init``; ``init_kwargs`` too (with ``address=local``: size of the
    private instance, e.g. ``{num_cpus: 8, num_gpus: 1}``). ``log_to_driver`` streams every
    worker's output to this console; off by default, each job's log is in its own folder.
    ``validator``: dotted path of a function ``f(job_config)`` that raises on bad input; it runs
    on the driver for every job before Ray starts, so one bad job stops the sweep before any work.
    """

    _target_: str = "hydra_plugins.mast_ray_launcher.mast_ray_launcher.MastRayLauncher"
    address: str = LOCAL_ADDRESS
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_concurrent: int | None = None
    runtime_env: dict[str, Any] = field(default_factory=dict)
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    include_dashboard: bool = False
    log_to_driver: bool = False
    validator: str | None = None


ConfigStore.instance().store(group="hydra/launcher", name="mast_ray", node=MastRayLauncherConf)
