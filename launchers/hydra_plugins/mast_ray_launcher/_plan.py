"""What a sweep will run, decided on the driver before Ray starts.

The app tells the launcher what each job *is* through ``hydra.launcher.job_info`` (a dotted path
to ``f(task_config) -> dict``): its run key (jobs with the same key are the same run and run
once), the file where the running job reports progress, how much work it is, and whether it has
already been done. Without a ``job_info`` every job is its own run.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger(__name__)


@dataclass
class JobInfo:
    """What the app says about one job (all optional except the key)."""

    key: str
    progress_file: str | None = None  # JSON {"t": done, "total": work, "rate": per second}
    work: float | None = None  # e.g. environment steps
    state: str = "new"  # new | partial | finished (as the app's store sees it)
    detail: str = ""  # e.g. "resumes at t_env=200000"


@dataclass
class Plan:
    """Unique jobs to submit, and for each duplicate the index of the job it shares a run with."""

    unique: list[Any]
    infos: dict[int, JobInfo]
    same_as: dict[int, int] = field(default_factory=dict)


def task_config(job_config: DictConfig) -> DictConfig:
    """The config the task function receives: the job's config without the ``hydra`` node."""
    task = job_config.copy()
    with read_write(task), open_dict(task):
        task.pop("hydra", None)
    return task


def load_callable(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def describe_jobs(job_info: str | None, jobs: list[Any]) -> dict[int, JobInfo]:
    """``JobInfo`` of every job, computed with the job's Hydra config set (``${hydra:...}``
    interpolations such as a results folder under ``hydra.runtime.cwd`` resolve as in the job)."""
    if not job_info:
        return {job.idx: JobInfo(key=f"job-{job.idx}") for job in jobs}
    describe = load_callable(job_info)
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    infos = {}
    try:
        for job in jobs:
            hydra_config.set_config(job.config)
            infos[job.idx] = JobInfo(**describe(task_config(job.config)))
    finally:
        hydra_config.cfg = previous
    return infos


def plan_jobs(job_info: str | None, jobs: list[Any]) -> Plan:
    infos = describe_jobs(job_info, jobs)
    first_of: dict[str, int] = {}
    plan = Plan(unique=[], infos=infos)
    for job in jobs:
        key = infos[job.idx].key
        if key in first_of:
            plan.same_as[job.idx] = first_of[key]
        else:
            first_of[key] = job.idx
            plan.unique.append(job)
    return plan


def report_duplicates(plan: Plan, jobs: list[Any]) -> None:
    """One line per job that is the same run as an earlier job of the sweep."""
    n = len(jobs)
    for job in jobs:
        if job.idx in plan.same_as:
            log.info(f"[{job.idx}/{n}] same run as [{plan.same_as[job.idx]}] {job.label}")


def print_dry_run(plan: Plan, jobs: list[Any]) -> None:
    """``hydra.launcher.dry_run=true``: the job list with each run's state; nothing starts."""
    n = len(jobs)
    states = {"new": 0, "partial": 0, "finished": 0}
    for job in jobs:
        info = plan.infos[job.idx]
        if job.idx in plan.same_as:
            log.info(f"[{job.idx}/{n}] same run as [{plan.same_as[job.idx]}] {job.label}")
            continue
        states[info.state] = states.get(info.state, 0) + 1
        detail = f" ({info.detail})" if info.detail else ""
        log.info(f"[{job.idx}/{n}] {info.state}{detail} {job.label} -> {info.key}")
    todo = [plan.infos[j.idx].work or 0 for j in plan.unique if plan.infos[j.idx].state != "finished"]
    log.info(
        f"mast_ray dry run: {n} jobs -> {len(plan.unique)} runs ({len(plan.same_as)} same run "
        f"as another): {states['new']} new, {states['partial']} partial, {states['finished']} "
        f"finished; {sum(todo):,.0f} units of work left (env steps for MAST). Nothing was started."
    )
