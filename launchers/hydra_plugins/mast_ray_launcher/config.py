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
    ``max_retries``: how often a job whose worker process died (killed, out of memory, its node
    lost) is submitted again; an exception raised by the job itself is never retried. A retried
    job must be safe to run again: MAST runs resume from their last checkpoint under their lock.
    ``runtime_env`` goes to ``ray.init``; ``init_kwargs`` too (with ``address=local``: size of the
    private instance, e.g. ``{num_cpus: 8, num_gpus: 1}``). ``log_to_driver`` streams every
    worker's output to this console; off by default, each job's log is in its own folder.
    ``validator``: dotted path of a function ``f(job_config)`` that raises on bad input; it runs
    on the driver for every job before Ray starts, so one bad job stops the sweep before any work.
    ``job_info``: dotted path of ``f(task_config) -> dict`` (see ``_plan.JobInfo``): jobs with the
    same run key run once, the others are reported as ``same run as [j]``; its progress files feed
    the live sweep display (redrawn every ``poll_s`` on a terminal, logged every
    ``progress_log_every_s`` otherwise). ``dry_run``: list the jobs, their runs and their state
    (new / partial / finished), start nothing. ``summary_keys``: entries of each job's returned
    dict shown in the final table.
    """

    _target_: str = "hydra_plugins.mast_ray_launcher.mast_ray_launcher.MastRayLauncher"
    address: str = LOCAL_ADDRESS
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_concurrent: int | None = None
    max_retries: int = 2
    runtime_env: dict[str, Any] = field(default_factory=dict)
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    include_dashboard: bool = False
    log_to_driver: bool = False
    validator: str | None = None
    job_info: str | None = None
    dry_run: bool = False
    poll_s: float = 2.0
    progress_log_every_s: float = 60.0
    summary_keys: list[str] = field(default_factory=lambda: ["final_win_rate", "final_return"])


ConfigStore.instance().store(group="hydra/launcher", name="mast_ray", node=MastRayLauncherConf)
