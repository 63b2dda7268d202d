"""Driver side of ``hydra/launcher=mast_ray``: start or join Ray, check the request fits,
submit one task per job, report each job as it ends, fail the multirun if any job failed."""

import hashlib
import importlib
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.errors import CompactHydraException
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.mast_ray_launcher._plan import (
    Plan,
    plan_jobs,
    print_dry_run,
    report_duplicates,
)
from hydra_plugins.mast_ray_launcher._progress import SweepProgress, log_table, with_attempts
from hydra_plugins.mast_ray_launcher._worker import (
    ERROR_FILE,
    JobOutcome,
    RemoteJobError,
    execute_job,
    write_error,
)
from hydra_plugins.mast_ray_launcher.config import LOCAL_ADDRESS, MastRayLauncherConf
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from ray import cloudpickle

log = logging.getLogger(__name__)
_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"

DONE, SKIPPED, DIVERGED, FAILED = "done", "skipped", "diverged", "FAILED"
# ``status`` key of the dict a task returns -> how the job is reported; anything else is "done".
_RETURNED_STATUS = {"skipped": SKIPPED, "diverged": DIVERGED, "failed": FAILED}


class ResourceRequestError(CompactHydraException):
    """The per-job request fits on no node of the cluster; nothing was submitted."""


class JobConfigError(CompactHydraException):
    """A job's config failed ``hydra.launcher.validator``; nothing was submitted."""


class JobsFailedError(CompactHydraException):
    """Some jobs failed; raised after every job ended so that the multirun exits non-zero."""


@dataclass
class Job:
    idx: int
    label: str  # the job's overrides, as reported
    config: DictConfig
    job_dir: Path


@dataclass
class Result:
    job: Job
    status: str  # DONE | SKIPPED | DIVERGED | FAILED
    elapsed_s: float
    job_return: JobReturn
    error_file: Path | None = None
    reason: str = ""
    worker_died: bool = False  # the process running it died: the job may be retried
    attempts: int = 1  # elapsed_s sums them: a retried job's wall time is all it cost


def launch(
    *,
    conf: MastRayLauncherConf,
    config: DictConfig,
    hydra_context: HydraContext,
    task_function: TaskFunction,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> list[JobReturn]:
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = absolute_sweep_dir(config)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        compose_job(config, hydra_context, list(overrides), initial_job_idx + i, sweep_dir)
        for i, overrides in enumerate(job_overrides)
    ]
    validate_jobs(conf.validator, jobs)
    plan = plan_jobs(conf.job_info, jobs)
    if conf.dry_run:
        print_dry_run(plan, jobs)
        return []
    report_duplicates(plan, jobs)
    shared = cloudpickle.dumps((hydra_context, Singleton.get_state(), task_function))
    start = time.perf_counter()
    with ray_session(conf):
        fit = check_resources(conf)
        at_once = int(min(fit, conf.max_concurrent or math.inf, len(plan.unique)))
        runs = f"{_jobs(len(jobs))} -> {len(plan.unique)} runs" if plan.same_as else _jobs(len(jobs))
        log.info(
            f"mast_ray: {runs}, {_fmt(conf.num_cpus)} CPU + {_fmt(conf.num_gpus)} GPU "
            f"each, {at_once:g} at a time, in {sweep_dir}"
        )
        results = run_jobs(conf, plan, ray.put(shared), at_once)
    return summarise(results, plan, jobs, conf.summary_keys, time.perf_counter() - start)


def validate_jobs(validator: str | None, jobs: list[Job]) -> None:
    """Run the app's validator on every composed job config, on the driver, before Ray starts."""
    if not validator:
        return
    module, _, name = validator.rpartition(".")
    check = getattr(importlib.import_module(module), name)
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    try:
        for job in jobs:
            hydra_config.set_config(job.config)
            try:
                check(job.config)
            except Exception as error:
                raise JobConfigError(
                    f"job {job.idx} ({job.label}): {error}. No job was started."
                ) from None
    finally:
        hydra_config.cfg = previous


def absolute_sweep_dir(config: DictConfig) -> Path:
    """``hydra.sweep.dir``, made absolute from ``hydra.runtime.cwd``: workers write there."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    return sweep_dir if sweep_dir.is_absolute() else Path(config.hydra.runtime.cwd) / sweep_dir


MAX_NAME = 160  # file systems refuse path components over 255 bytes


def bounded_path(path: str) -> str:
    """Shorten each over-long component (many overrides in ``override_dirname``) to a readable
    prefix plus a hash of the whole, so distinct jobs keep distinct folders."""
    parts = []
    for part in path.split("/"):
        if len(part.encode()) > MAX_NAME:
            digest = hashlib.sha1(part.encode()).hexdigest()[:10]
            part = f"{part.encode()[: MAX_NAME - 12].decode(errors='ignore')}_{digest}"
        parts.append(part)
    return "/".join(parts)


def compose_job(
    config: DictConfig,
    hydra_context: HydraContext,
    overrides: list[str],
    idx: int,
    sweep_dir: Path,
) -> Job:
    """Compose the job's config on the driver (bad overrides fail before anything runs)."""
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with read_write(sweep_config.hydra), open_dict(sweep_config.hydra):
        sweep_config.hydra.job.id = idx
        sweep_config.hydra.job.num = idx
        sweep_config.hydra.sweep.dir = str(sweep_dir)
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(sweep_config)  # the subdir may use ${hydra:...}
    try:
        subdir = str(OmegaConf.select(sweep_config, "hydra.sweep.subdir"))
    finally:
        hydra_config.cfg = previous
    if subdir != (short := bounded_path(subdir)):
        subdir = short
        with read_write(sweep_config.hydra):
            sweep_config.hydra.sweep.subdir = short  # the worker's run_job creates this folder
    label = " ".join(filter_overrides(overrides))
    return Job(idx=idx, label=label, config=sweep_config, job_dir=sweep_dir / subdir)


def _drop_auth_notice(record: logging.LogRecord) -> bool:
    """Ray logs a warning on every init about token auth being on (its default) or off."""
    return "Token authentication is" not in record.getMessage()


def _use_token_if_available() -> None:
    """Send the local Ray token (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN[_PATH]``) when joining.

    ``ray start --head`` turns token auth on when a token exists (any earlier local Ray run
    writes one) and Ray picks the token up for ``address=auto`` but not for an explicit
    ``host:port``, which then fails with InvalidAuthToken. An explicit ``RAY_AUTH_MODE`` wins.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # moved in another Ray version: RAY_AUTH_MODE=token does the same
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


@contextmanager
def ray_session(conf: MastRayLauncherConf) -> Iterator[None]:
    """Start a private instance (``local``) or join a cluster; ``ray.shutdown`` at the end stops
    the private instance and only disconnects from a joined cluster."""
    if ray.is_initialized():
        log.info("mast_ray: using the Ray instance this process already initialised")
        yield
        return
    kwargs: dict[str, Any] = {
        "address": conf.address,
        "runtime_env": conf.runtime_env or None,
        "log_to_driver": conf.log_to_driver,
    }
    if conf.address == LOCAL_ADDRESS:
        kwargs.update(include_dashboard=conf.include_dashboard, **conf.init_kwargs)
    elif conf.init_kwargs:
        log.info(f"mast_ray: joining {conf.address}, so hydra.launcher.init_kwargs is unused")
    auth_log = logging.getLogger(_RAY_AUTH_LOGGER)
    auth_log.addFilter(_drop_auth_notice)
    try:
        if conf.address != LOCAL_ADDRESS:
            _use_token_if_available()
        ray.init(**kwargs)
    finally:
        auth_log.removeFilter(_drop_auth_notice)
    try:
        yield
    finally:
        ray.shutdown()


def _fmt(amount: float) -> str:
    return f"{amount:g}"


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


def _fits(resources: Mapping[str, float], conf: MastRayLauncherConf) -> float:
    """Jobs a node runs at once: min over requested resources of capacity / request."""
    counts = [
        math.floor(resources.get(name, 0.0) / need + 1e-6)
        for name, need in (("CPU", conf.num_cpus), ("GPU", conf.num_gpus))
        if need > 0
    ]
    return min(counts, default=math.inf)


def check_resources(conf: MastRayLauncherConf) -> float:
    """Fail at once, naming the key, if no node can run one job (Ray would wait forever).
    Returns how many jobs the cluster runs at once."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    total = ray.cluster_resources()
    have = (
        f"the Ray cluster ({conf.address}) has {_fmt(total.get('CPU', 0))} CPU and "
        f"{_fmt(total.get('GPU', 0))} GPU over {len(nodes)} node(s), at most "
        f"{_fmt(max((n.get('CPU', 0) for n in nodes), default=0))} CPU and "
        f"{_fmt(max((n.get('GPU', 0) for n in nodes), default=0))} GPU on one node"
    )
    if not any(n.get("GPU", 0) >= conf.num_gpus for n in nodes):
        raise ResourceRequestError(
            f"hydra.launcher.num_gpus={_fmt(conf.num_gpus)} asks for {_fmt(conf.num_gpus)} GPU "
            f"per job, but {have}. Use "
            "hydra.launcher.num_gpus=0 to run on CPU, or join a cluster with GPUs "
            "(hydra.launcher.address=auto). No job was started."
        )
    if not any(n.get("CPU", 0) >= conf.num_cpus for n in nodes):
        raise ResourceRequestError(
            f"hydra.launcher.num_cpus={_fmt(conf.num_cpus)} asks for {_fmt(conf.num_cpus)} CPU "
            f"per job, but {have}. "
            "Lower hydra.launcher.num_cpus. No job was started."
        )
    fit = sum(_fits(node, conf) for node in nodes)
    if fit < 1:
        raise ResourceRequestError(
            f"hydra.launcher.num_cpus={_fmt(conf.num_cpus)} with hydra.launcher.num_gpus="
            f"{_fmt(conf.num_gpus)} fits on no single node: {have}. No job was started."
        )
    if conf.num_gpus == 0 and total.get("GPU", 0) > 0:
        log.warning(
            "mast_ray: the cluster has GPUs but hydra.launcher.num_gpus=0, so jobs run on CPU "
            "(e.g. hydra.launcher.num_gpus=0.25 shares each GPU between 4 jobs)"
        )
    return fit


def run_jobs(conf: MastRayLauncherConf, plan: Plan, shared_ref: Any, at_once: int) -> list[Result]:
    """Keep at most ``at_once`` jobs in flight (so "running" means running); report each as it
    ends and keep one live progress display for the sweep."""
    remote = ray.remote(
        num_cpus=conf.num_cpus,
        num_gpus=conf.num_gpus,
        max_retries=0,  # the driver retries dead workers itself (conf.max_retries), and says so
        max_calls=1,  # a fresh process per job: clean env, GPU memory freed at exit
    )(execute_job)
    jobs = plan.unique
    progress = SweepProgress(
        work={j.idx: plan.infos[j.idx].work for j in jobs},
        progress_files={j.idx: plan.infos[j.idx].progress_file for j in jobs},
        log_every_s=conf.progress_log_every_s,
    )
    pending, in_flight, results = deque(jobs), {}, []
    retries = dict.fromkeys((j.idx for j in jobs), 0)
    dead_s = dict.fromkeys((j.idx for j in jobs), 0.0)  # wall time of each job's dead attempts
    try:
        while pending or in_flight:
            while pending and len(in_flight) < at_once:
                job = pending.popleft()
                blob = cloudpickle.dumps((job.config, str(job.job_dir)))
                attempt = retries[job.idx] + 1
                ref = remote.remote(blob, shared_ref, conf.num_cpus, conf.num_gpus, attempt)
                in_flight[ref] = (job, time.perf_counter())
                progress.started(job.idx)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=conf.poll_s)
            for ref in ready:
                job, submitted = in_flight.pop(ref)
                result = collect(ref, job, submitted, retries[job.idx] + 1)
                if result.worker_died and retries[job.idx] < conf.max_retries:
                    retries[job.idx] += 1
                    dead_s[job.idx] += result.elapsed_s
                    retry(result, retries[job.idx], conf.max_retries)
                    pending.appendleft(job)
                    continue
                results.append(replace(result, elapsed_s=result.elapsed_s + dead_s[job.idx],
                                       attempts=retries[job.idx] + 1))
                progress.finished(job.idx, failed=results[-1].status == FAILED)
                progress.clear()
                report(results[-1], len(results), len(jobs))
            progress.show(force=bool(ready) and not progress.tty)
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    finally:
        progress.clear()
    return results


# Ray's errors for a task whose process or node went away (not an exception the job raised).
_WORKER_DIED = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.OutOfMemoryError,
    ray.exceptions.ObjectLostError,
)


def collect(ref: Any, job: Job, submitted: float, attempt: int = 1) -> Result:
    """Turn a finished task into a Result; failures get ``error.txt`` in the job folder."""
    try:
        outcome: JobOutcome = ray.get(ref)
    except Exception as error:  # the worker died or failed outside run_job
        text = f"{type(error).__name__}: {error}\n"
        hint = (f"{text}\n(attempt {attempt}) Ray's worker logs: session_latest/logs under the "
                "node's Ray temp dir\n")
        ret = JobReturn(overrides=job.config.hydra.overrides.task, status=JobStatus.FAILED)
        ret.return_value = RemoteJobError(text)
        elapsed = time.perf_counter() - submitted
        died = isinstance(error, _WORKER_DIED)
        reason = f"worker died: {type(error).__name__}" if died else _last_line(text)
        return Result(job, FAILED, elapsed, ret, write_error(job.job_dir, hint), reason, died)
    ret = outcome.job_return
    if outcome.traceback is not None:
        reason = _last_line(outcome.traceback)
        return Result(job, FAILED, outcome.elapsed_s, ret, job.job_dir / ERROR_FILE, reason)
    value = ret._return_value
    returned = value.get("status") if isinstance(value, Mapping) else None
    status = _RETURNED_STATUS.get(returned, DONE)
    if status != FAILED:
        return Result(job, status, outcome.elapsed_s, ret)
    text = f"the task returned status=failed and raised nothing; it returned:\n{value}\n"
    error_file = write_error(job.job_dir, text)
    return Result(job, FAILED, outcome.elapsed_s, ret, error_file, "returned status=failed")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def retry(result: Result, k: int, n: int) -> None:
    """Keep the dead attempt's error beside the job and say that the job runs again."""
    assert result.error_file is not None  # collect() writes one for every dead worker
    kept = result.error_file.rename(result.error_file.with_name(f"error.attempt{k}.txt"))
    log.warning(
        f"[retry {k}/{n}] {result.job.label}: {result.reason} after "
        f"{result.elapsed_s:.1f}s; submitted again ({kept.name} in its job folder)"
    )


def report(result: Result, k: int, n: int) -> None:
    wall = with_attempts(f"{result.elapsed_s:.1f}s", result.attempts)
    line = f"[{k}/{n}] {result.status} {result.job.label} {wall}"
    if result.status == FAILED:
        log.error(f"{line}: {result.reason} (traceback: {result.error_file})")
    else:
        log.info(line)


def summarise(
    results: list[Result], plan: Plan, jobs: list[Job], keys: Sequence[str], elapsed_s: float
) -> list[JobReturn]:
    """Log the final table and totals; raise if any job failed, else return one JobReturn per
    job in job order (a job that was the same run as another gets that run's)."""
    log_table(results, keys)
    counts = {s: sum(r.status == s for r in results) for s in (DONE, SKIPPED, DIVERGED, FAILED)}
    parts = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    same = f"; {len(plan.same_as)} same run as another" if plan.same_as else ""
    log.info(f"mast_ray: {_jobs(len(results))} in {elapsed_s:.1f}s: {parts}{same}")
    failed = sorted((r for r in results if r.status == FAILED), key=lambda r: r.job.idx)
    if failed:
        listing = "\n".join(f"  {r.job.label}  ->  {r.error_file}" for r in failed)
        raise JobsFailedError(f"mast_ray: {len(failed)} of {len(results)} jobs failed:\n{listing}")
    by_idx = {r.job.idx: r.job_return for r in results}
    return [by_idx[plan.same_as.get(job.idx, job.idx)] for job in jobs]
